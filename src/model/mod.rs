//! Model loading: safetensors checkpoints ([`checkpoint`]), PyTorch tensor-name mapping to a
//! ResNet ([`resnet`]), input normalization ([`normalize`]) and the network [`graph`].

pub mod graph;

/// A checkpoint could not be turned into a network.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}
