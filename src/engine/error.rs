//! What the engine reports when a backend fails under it: each backend keeps its own error
//! type ([`crate::backends::cpu::CpuError`], [`crate::backends::wgpu::GpuError`]) and
//! converts it here, at the boundary, where backend-neutral code (walks, tuning, analysis)
//! sees it.

/// An error of backend-neutral engine code or of the backend under it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The caller passed data that does not fit the network or the walk.
    #[error("{0}")]
    InvalidInput(String),
    /// The backend failed; its own error, with its own message.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl EngineError {
    /// A backend's own error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }
}
