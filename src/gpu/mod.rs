//! The GPU layer on wgpu: adapter and device choice ([`context`]), the kernel registry and
//! pipeline cache ([`kernels`]), per-operation steps and parameter layouts ([`layers`]), and
//! buffer creation plus the one readback path ([`buffers`]).
//!
//! wgpu's API changes between releases; every wgpu call of the crate lives in this module
//! (and in the plans of [`crate::sim`], which only record the steps compiled here).

pub mod buffers;
pub mod context;
pub mod kernels;
pub mod layers;
pub mod layerwise_layers;
pub mod limits;
pub mod snn_layers;

pub use buffers::{read_buffer, submit_and_read};
pub use context::{list_adapters, AdapterSummary, ConvKernels, GpuContext, KernelStrategy};
pub use kernels::{ConvParams, ElementwiseParams, GpuStep, Kernel, Kernels};

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
