//! The GPU layer on wgpu.

/// A GPU operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("{0}")]
    Other(String),
}
