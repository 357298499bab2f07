//! Dataset readers.

/// A dataset file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}
