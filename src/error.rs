//! The crate's top-level error: one variant per layer, each carrying that layer's error.

#[cfg(feature = "wgpu")]
use crate::backends::wgpu::GpuError;
use crate::{data::DataError, model::graph::GraphError, model::LoadError};

/// Any error spikeconv reports; every message names the file or object at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[cfg(feature = "wgpu")]
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Cpu(#[from] crate::backends::cpu::CpuError),
    /// Backend-neutral engine code (a walk, tuning, analysis) or the backend under it.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    Convert(#[from] crate::convert::ConvertError),
    /// Invalid option or argument combination given by the user.
    #[error("{0}")]
    Usage(String),
    /// An error of a named stage (e.g. `tuning thresholds (ttrbr, T = 8) on the cpu backend`).
    #[error("{stage}: {source}")]
    During { stage: String, source: Box<Error> },
}

impl Error {
    /// This error as the failure of `stage`.
    pub fn during(self, stage: impl Into<String>) -> Error {
        Error::During { stage: stage.into(), source: Box::new(self) }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
