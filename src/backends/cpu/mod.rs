//! The native CPU backend: the ANN forward pass, calibration and the layer-major SNN
//! simulation in Rust, on all cores (rayon) with SIMD (the `gemm` crate's kernels for
//! dense convolutions, `multiversion`-compiled loops for the rest).
//!
//! - [`lower`]: a graph lowered once (NHWC weight layouts, last readers);
//! - [`conv`]: dense (im2col + GEMM) and event-driven convolutions;
//! - [`ops`]: layout changes, element-wise ops, pooling, linear layers, the IF scan;
//! - [`ann`]: the ANN forward pass; [`calibrate`](mod@calibrate): calibration statistics;
//! - [`snn`]: the layer-major spiking simulation; [`evaluate`]: whole datasets.
//!
//! Values are NHWC (channels innermost) so that a convolution's output channels, a
//! spike's weight row and an IF layer's per-channel parameters are contiguous. The plain
//! CPU reference ([`crate::reference`]) stays the oracle: tests compare every result here
//! against it, exactly on the dyadic networks.

pub mod ann;
pub mod calibrate;
pub mod constant_current;
pub mod conv;
pub mod evaluate;
pub mod lower;
pub mod ops;
pub mod probe;
pub mod snn;
pub mod walk;

pub use crate::engine::ConvStats;
pub use lower::CpuGraph;
pub use snn::CpuSnn;

/// What the CPU backend could not do; every message says what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    #[error(transparent)]
    Convert(#[from] crate::convert::ConvertError),
    /// The caller passed data that does not fit the network.
    #[error("{0}")]
    InvalidInput(String),
}

/// The CPU the backend runs on: threads and the SIMD instruction set its kernels use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuDevice {
    pub threads: usize,
    /// The widest SIMD set the kernels use here, e.g. `AVX-512`.
    pub simd: &'static str,
    /// f32 lanes of that set.
    pub lanes: usize,
}

impl CpuDevice {
    /// This machine: rayon's thread count (all cores unless RAYON_NUM_THREADS says fewer).
    pub fn detect() -> Self {
        let (simd, lanes) = simd_set();
        Self { threads: rayon::current_num_threads(), simd, lanes }
    }

    /// One line for reports, e.g. `cpu (2 threads, AVX-512)`.
    pub fn describe(&self) -> String {
        format!("cpu ({} threads, {} {}-lane f32)", self.threads, self.simd, self.lanes)
    }
}

#[cfg(target_arch = "x86_64")]
fn simd_set() -> (&'static str, usize) {
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl") {
        ("AVX-512", 16)
    } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        ("AVX2", 8)
    } else {
        ("SSE2", 4)
    }
}

#[cfg(target_arch = "aarch64")]
fn simd_set() -> (&'static str, usize) {
    ("NEON", 4)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn simd_set() -> (&'static str, usize) {
    ("scalar", 1)
}
