//! Conversion stages: small, pure passes over the network [`Graph`](crate::model::graph::Graph).
//! Each takes a graph and returns a new one (or statistics about it), and is tested alone.
//!
//! ANN→SNN conversion runs: [`fold_bn`] (merge BatchNorm into convolutions) → calibration
//! ([`stats`], computed by [`crate::reference::calibration`] or a GPU kernel) → threshold
//! choice ([`threshold`]) → [`snn::convert`] (every ReLU becomes a layer of integrate-and-fire
//! neurons) → optionally threshold tuning ([`ttrbr`]: the candidate grid and the choice;
//! the measurements run in [`crate::tuning::tune`](mod@crate::tuning::tune)), with optional
//! [`bias_correction`] of each tuned layer's mean error → [`snn_file`]
//! (write the converted network to disk).

pub mod bias_correction;
pub mod energy;
pub mod fold_bn;
pub mod neuron;
pub mod pooling;
pub mod snn;
pub mod snn_file;
pub mod stats;
pub mod threshold;
pub mod ttrbr;

pub use fold_bn::fold_batch_norm;
pub use neuron::Neuron;
pub use pooling::MaxPoolStrategy;
pub use snn::{convert, IfLayer, SpikingNetwork};
pub use stats::{Histogram, LayerRange, LayerStats};
pub use threshold::{choose, ThresholdMethod, Thresholds};

/// Valid threshold method names, for error messages and help text.
pub const THRESHOLD_METHOD_NAMES: &str =
    "max, percentile:P, channel-max, channel-percentile:P, trained, ttrbr[:P|:trained], channel-ttrbr[:P|:trained] (P in (0, 100], e.g. percentile:99.9)";

/// A conversion stage could not proceed: bad option, statistics that do not fit, a
/// threshold that is not usable, or an invalid converted-SNN file.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConvertError {
    #[error("unknown threshold method `{name}`; valid methods: {}", THRESHOLD_METHOD_NAMES)]
    UnknownThresholdMethod { name: String },
    #[error("threshold method `{method}`: percentile `{value}` is not a number in (0, 100], e.g. percentile:99.9")]
    BadPercentile { method: String, value: String },
    #[error("IF layer `{layer}` (node {node}) has no threshold; give one threshold per ReLU node")]
    MissingThreshold { layer: String, node: usize },
    #[error("node {node} (`{name}`, {kind}) got a threshold but only ReLU nodes become IF layers")]
    NotIfLayer { node: usize, name: String, kind: &'static str },
    #[error("IF layer `{layer}` got thresholds twice")]
    DuplicateThreshold { layer: String },
    #[error("IF layer `{layer}` has {found} per-channel thresholds, its input has {expected} channels")]
    ThresholdCount { layer: String, expected: usize, found: usize },
    #[error("IF layer `{layer}` has threshold {value}{}; thresholds must be positive and finite",
        channel.map(|c| format!(" (channel {c})")).unwrap_or_default())]
    BadThreshold { layer: String, channel: Option<usize>, value: f32 },
    #[error("IF layer `{layer}` has {found} bias currents, its input has {expected} channels")]
    BiasCurrentCount { layer: String, expected: usize, found: usize },
    #[error("IF layer `{layer}` has bias current {value} (channel {channel}); bias currents must be finite")]
    BadBiasCurrent { layer: String, channel: usize, value: f32 },
    #[error("initial membrane fraction v_init = {0} is outside [0, 1]")]
    BadVInit(f32),
    #[error("IF layer `{layer}`: initial membrane fraction v_init = {value} is outside [0, 1]")]
    BadLayerVInit { layer: String, value: f32 },
    #[error("calibration statistics do not fit together: {0}")]
    StatsMismatch(String),
    #[error("{path}: {message}")]
    SnnFile { path: String, message: String },
    #[error("trained thresholds: {0}")]
    TrainedThresholds(String),
}
