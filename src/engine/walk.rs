//! The layer-major walk every backend offers: a network walked once in topological order,
//! each node computed for all T timesteps at once next to the ANN on the same images. At
//! every IF layer the walk stops with a [`LayerProbe`]: the layer's input current for every
//! timestep (the real spiking input of the layers already walked) and the ANN's activation,
//! so that the layer can be measured ([`crate::tuning::analyze`]) or its thresholds chosen
//! ([`crate::tuning::tune`]) before any later layer sees its spikes.
//!
//! Why it is exact: every node other than an IF layer is linear and time-independent, so a
//! node's values at all timesteps are that node applied to a batch of `T × images` inputs;
//! only the IF layers carry state across time, and each backend scans a neuron's T steps in
//! order with the update of the time-major reference.
//!
//! A backend implements [`Walker`] (the walk itself) and [`ProbeSource`] (the two
//! measurements at a layer); tuning and analysis see only this module.

use crate::convert::neuron::Neuron;
use crate::convert::snn::{validate_v_init, SpikingNetwork};
use crate::convert::threshold::Thresholds;
use crate::model::graph::Shape;

use super::EngineError;

/// Sums the error analysis gives per channel, in this order: `|quantization|, |deviation|,
/// |total|, total², variance, spikes, deviation, quantization, tracking, total` (see
/// [`crate::reference::layerwise`]).
pub const ERROR_STATS: usize = 10;
/// Index of the tracking error among the [`ERROR_STATS`].
pub const TRACKING_STAT: usize = 8;
/// Index of the signed total error `n θ / T − a` among the [`ERROR_STATS`].
pub const SIGNED_TOTAL_STAT: usize = 9;

/// One IF layer of `shape` over `images` images and `timesteps` steps, as a walk sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScanShape {
    pub shape: Shape,
    pub images: usize,
    pub timesteps: usize,
    /// The current is the same every step (stored for one step only).
    pub constant_current: bool,
    pub v_init: f32,
    /// The neuron every IF layer of the network is.
    pub neuron: Neuron,
}

/// What an IF layer spikes with in a walk: its thresholds, initial membrane fraction and
/// bias current (one per channel).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSetting {
    pub thresholds: Thresholds,
    pub v_init: f32,
    pub bias_current: Vec<f32>,
}

/// A backend's measurements of the layer a walk has reached (its current for every timestep
/// and the ANN's activation live in the backend's memory).
pub trait ProbeSource {
    /// Per channel, the [`ERROR_STATS`] sums over the layer's neurons and images with one
    /// threshold per channel, membranes starting at `scan.v_init` × the threshold and
    /// `bias_current` (one per channel) added every step (`channels × ERROR_STATS`).
    fn error_sums(&self, scan: &ScanShape, thresholds: &[f32], bias_current: &[f32]) -> Result<Vec<f64>, EngineError>;

    /// Tracking errors against the ANN under each candidate threshold: `candidates` holds
    /// `per_channel` thresholds for every channel (channel-major); the result is
    /// `channels × per_channel` sums over the channel's neurons and images.
    fn candidate_sums(
        &self,
        scan: &ScanShape,
        candidates: &[f32],
        per_channel: usize,
        bias_current: &[f32],
    ) -> Result<Vec<f64>, EngineError>;
}

/// The IF layer a walk has reached; [`LayerProbe::error_sums`] and [`LayerProbe::search`]
/// measure it.
pub struct LayerProbe<'a> {
    /// Index of the layer in [`SpikingNetwork::layers`].
    pub layer: usize,
    /// The layer, its images and timesteps.
    pub scan: ScanShape,
    /// The layer's bias current per channel in the network walked (zeros where it has none).
    pub bias_current: Vec<f32>,
    source: &'a dyn ProbeSource,
}

impl<'a> LayerProbe<'a> {
    pub fn new(layer: usize, scan: ScanShape, bias_current: Vec<f32>, source: &'a dyn ProbeSource) -> Self {
        Self { layer, scan, bias_current, source }
    }

    /// The layer's error statistics with `thresholds` (and the layer's `v_init` and bias
    /// current): per channel, the [`ERROR_STATS`] sums over its neurons and images.
    pub fn error_sums(&self, thresholds: &Thresholds) -> Result<Vec<f64>, EngineError> {
        self.error_sums_with(thresholds, self.scan.v_init, &self.bias_current)
    }

    /// [`Self::error_sums`] with membranes starting at `v_init` × the threshold and
    /// `bias_current` (one value per channel) added to the current every step.
    pub fn error_sums_with(
        &self,
        thresholds: &Thresholds,
        v_init: f32,
        bias_current: &[f32],
    ) -> Result<Vec<f64>, EngineError> {
        let channels = self.scan.shape.channels;
        validate_v_init(v_init).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
        check_bias(bias_current, channels)?;
        self.source.error_sums(&ScanShape { v_init, ..self.scan }, &thresholds.per_channel(channels), bias_current)
    }

    /// Each channel's mean signed error `n θ / T − a` over its neurons and images, from
    /// the sums of [`Self::error_sums`] or [`Self::error_sums_with`].
    pub fn channel_mean_errors(&self, sums: &[f64]) -> Vec<f64> {
        let signed: Vec<f64> = sums.chunks_exact(ERROR_STATS).map(|channel| channel[SIGNED_TOTAL_STAT]).collect();
        crate::convert::bias_correction::mean_errors(&signed, self.scan.images * self.scan.shape.plane())
    }

    /// Tracking errors against the ANN under each candidate threshold, every membrane
    /// starting at `v_init` × its threshold and `bias_current` (one per channel) added every
    /// step: `candidates` holds `per_channel` thresholds for every channel (channel-major);
    /// the result is `channels × per_channel` sums over the channel's neurons and images.
    pub fn search(
        &self,
        candidates: &[f32],
        per_channel: usize,
        v_init: f32,
        bias_current: &[f32],
    ) -> Result<Vec<f64>, EngineError> {
        let channels = self.scan.shape.channels;
        if candidates.len() != channels * per_channel {
            return Err(EngineError::InvalidInput(format!(
                "{} candidate thresholds for {channels} channels × {per_channel}",
                candidates.len()
            )));
        }
        validate_v_init(v_init).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
        check_bias(bias_current, channels)?;
        self.source.candidate_sums(&ScanShape { v_init, ..self.scan }, candidates, per_channel, bias_current)
    }
}

/// A bias current must have one value per channel.
pub fn check_bias(bias_current: &[f32], channels: usize) -> Result<(), EngineError> {
    if bias_current.len() == channels {
        Ok(())
    } else {
        Err(EngineError::InvalidInput(format!("{} bias currents for {channels} channels", bias_current.len())))
    }
}

/// What a walk calls at every IF layer: it may return a new setting for the layer (`None`
/// keeps the network's).
pub type AtLayer<'a> = dyn FnMut(&LayerProbe<'_>) -> Result<Option<LayerSetting>, EngineError> + 'a;

/// A backend that can walk a network layer by layer.
pub trait Walker {
    /// The most images one walk of `snn` over `timesteps` steps can hold.
    fn max_images(&self, snn: &SpikingNetwork, timesteps: usize) -> usize;

    /// The walk itself, on inputs [`walk`] has checked: calls `at_layer` at every IF layer
    /// and returns the setting every layer spiked with.
    fn walk_layers(
        &self,
        snn: &SpikingNetwork,
        images: &[f32],
        count: usize,
        timesteps: usize,
        at_layer: &mut AtLayer<'_>,
    ) -> Result<Vec<LayerSetting>, EngineError>;
}

/// Walks `snn` layer by layer on `walker` over `count` normalized images (`images`, NCHW)
/// for `timesteps` steps. At every IF layer, `at_layer` gets a [`LayerProbe`] and may
/// return a new setting for that layer (`None` keeps the network's); the layer then spikes
/// with it for all later layers. Returns the setting every layer spiked with, in
/// [`SpikingNetwork::layers`] order.
pub fn walk(
    walker: &dyn Walker,
    snn: &SpikingNetwork,
    images: &[f32],
    count: usize,
    timesteps: usize,
    mut at_layer: impl FnMut(&LayerProbe<'_>) -> Result<Option<LayerSetting>, EngineError>,
) -> Result<Vec<LayerSetting>, EngineError> {
    let input_len = snn.graph.input_shape().len();
    if images.len() != count * input_len {
        return Err(EngineError::InvalidInput(format!(
            "expected {count} images of {input_len} values ({} values), got {} values",
            count * input_len,
            images.len()
        )));
    }
    if count == 0 || timesteps == 0 {
        return Err(EngineError::InvalidInput("a layer-major walk needs at least one image and one timestep".into()));
    }
    let fits = walker.max_images(snn, timesteps);
    if count > fits {
        return Err(EngineError::InvalidInput(format!(
            "{count} images × {timesteps} timesteps do not fit one walk; at most {fits} images"
        )));
    }
    walker.walk_layers(snn, images, count, timesteps, &mut at_layer)
}

/// A layer's setting when the hook keeps the network's.
pub fn network_setting(snn: &SpikingNetwork, layer: usize) -> LayerSetting {
    LayerSetting {
        thresholds: snn.layers[layer].thresholds.clone(),
        v_init: snn.layer_v_init(layer),
        bias_current: snn.layer_bias_current(layer),
    }
}

/// Every layer's setting from a walk, or an error naming a layer it never reached.
pub fn settings_of(chosen: Vec<Option<LayerSetting>>, snn: &SpikingNetwork) -> Result<Vec<LayerSetting>, EngineError> {
    chosen
        .into_iter()
        .zip(&snn.layers)
        .map(|(setting, layer)| {
            setting.ok_or_else(|| EngineError::InvalidInput(format!("IF layer `{}` is never reached", layer.name)))
        })
        .collect()
}
