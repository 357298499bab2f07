//! The wgpu backend: WGSL compute kernels on any GPU adapter (Vulkan, Metal, DX12, GL).
//!
//! - the device: adapter and device choice ([`context`]), the limits it is opened with
//!   ([`limits`]), the kernel registry and pipeline cache ([`kernels`], shaders in
//!   `shaders/`), buffer creation plus the one readback path ([`buffers`]);
//! - per-operation steps and parameter layouts: [`layers`] (the ANN's operations),
//!   [`snn_layers`] (readout, calibration), [`layerwise_layers`] (the layer-major IF scans);
//! - compiled plans: [`ann`] runs the (non-spiking) network, [`calibrate`](mod@calibrate)
//!   gathers activation statistics through an observed ANN plan, [`snn`] simulates the
//!   converted network over timesteps, [`layerwise`] walks it layer by layer for tuning and
//!   analysis ([`crate::engine::walk`]), [`evaluate`] runs a plan over a whole dataset.
//!
//! wgpu's API changes between releases; every wgpu call of the crate lives in this folder.

pub mod ann;
pub mod buffers;
pub mod calibrate;
pub mod context;
pub mod evaluate;
pub mod kernels;
pub mod layers;
pub mod layerwise;
pub mod layerwise_layers;
pub mod limits;
pub mod snn;
pub mod snn_layers;

pub use ann::AnnPlan;
pub use buffers::{read_buffer, submit_and_read};
pub use calibrate::calibrate;
pub use context::{list_adapters, AdapterSummary, ConvKernels, GpuContext, KernelStrategy};
pub use evaluate::{evaluate_ann, evaluate_snn};
pub use kernels::{ConvParams, ElementwiseParams, GpuStep, Kernel, Kernels};
pub use snn::SnnPlan;

/// A GPU operation failed; every message says what was attempted and what to do.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter of any enabled backend was found.
    #[error(
        "no GPU adapter found (backends: {backends}); install a Vulkan driver \
         (for a CPU fallback: `apt install mesa-vulkan-drivers`, which provides lavapipe) \
         and set WGPU_BACKEND=vulkan"
    )]
    NoAdapter { backends: String },
    /// An adapter was asked for by name and none matched.
    #[error("no GPU adapter matches `{wanted}`; available adapters: {available}")]
    AdapterNotFound { wanted: String, available: String },
    /// The adapter refused to create a device.
    #[error("could not open a device on adapter `{adapter}`: {message}")]
    RequestDevice { adapter: String, message: String },
    /// wgpu reported a validation error (a bug in a kernel, a plan, or a limit exceeded).
    #[error("GPU validation error while {context}: {message}")]
    Validation { context: String, message: String },
    /// The device ran out of memory.
    #[error("GPU out of memory while {context}: {message}")]
    OutOfMemory { context: String, message: String },
    /// The device was lost (driver crash, reset, or the device was destroyed).
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// Waiting for the GPU or mapping a buffer for readback failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// A buffer or dispatch would exceed a limit of the adapter.
    #[error("{what} needs {needed} bytes, more than the adapter's limit of {limit} bytes; use a smaller batch")]
    TooLarge { what: String, needed: u64, limit: u64 },
    /// The caller passed data that does not fit the compiled plan.
    #[error("{0}")]
    InvalidInput(String),
}

/// An open wgpu backend: the device and its compiled kernels.
pub struct GpuBackend {
    pub ctx: GpuContext,
    pub kernels: Kernels,
}

impl GpuBackend {
    /// Compiles the kernels on an open device.
    pub fn new(ctx: GpuContext) -> Result<Self, GpuError> {
        let kernels = Kernels::new(&ctx)?;
        Ok(Self { ctx, kernels })
    }
}

/// Checks that `images` holds `count` images of `input_len` values and that `count` fits a
/// plan compiled for `batch` images.
pub(crate) fn check_batch_input(images: &[f32], count: usize, batch: usize, input_len: usize) -> Result<(), GpuError> {
    if count > batch {
        return Err(GpuError::InvalidInput(format!("{count} images given to a plan compiled for batches of {batch}")));
    }
    if images.len() != count * input_len {
        return Err(GpuError::InvalidInput(format!(
            "expected {count} images of {input_len} values ({} values), got {} values",
            count * input_len,
            images.len()
        )));
    }
    Ok(())
}
