//! Conversion-error analysis on either backend: a layer-major walk ([`crate::engine::walk`]) that
//! measures, at every IF layer, the quantization and deviation errors of its neurons on
//! the layer's real spiking input (definitions in [`crate::reference::layerwise`] and
//! docs/METHOD.md), reduced per channel by the backend's probe (the `error_analysis` kernel on a GPU).

use crate::convert::bias_correction::mean_magnitude;
use crate::convert::snn::{firing_rate, SpikingNetwork};
use crate::engine::walk::{walk, Walker, ERROR_STATS, SIGNED_TOTAL_STAT};
use crate::engine::EngineError;

/// One IF layer's conversion errors, averaged over its neurons and the analysed images.
/// Errors are in activation units (the value a neuron's spikes stand for is
/// `spikes × threshold / T`); "mean |x|" columns average absolute values.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerErrors {
    pub layer: String,
    /// 1 for the first IF layer, in topological order.
    pub depth: usize,
    pub neurons: usize,
    /// Mean threshold over the layer's channels.
    pub threshold: f64,
    /// Mean |quantization error|: constant-current value minus the clipped ANN activation.
    pub quantization: f64,
    /// Mean |deviation error|: actual value minus constant-current value.
    pub deviation: f64,
    /// Mean |SNN value − ANN activation|.
    pub total: f64,
    /// Mean squared SNN value − ANN activation.
    pub squared: f64,
    /// Mean tracking error (the threshold-tuning objective, see
    /// [`crate::reference::layerwise::tracking_error`]).
    pub tracking: f64,
    /// Signed means of the deviation and quantization errors (a bias shows up here).
    pub mean_deviation: f64,
    pub mean_quantization: f64,
    /// Signed mean of SNN value − ANN activation over the layer (channels of opposite
    /// sign cancel here).
    pub mean_error: f64,
    /// Mean over channels of the magnitude of each channel's mean error: what a
    /// per-channel bias current can cancel (`--bias-correction`, docs/METHOD.md).
    pub channel_mean_error: f64,
    /// Mean over neurons of the input current's variance over the T steps.
    pub input_variance: f64,
    /// Spikes per neuron per timestep.
    pub firing_rate: f64,
}

/// Measures every IF layer of `snn` over `timesteps` steps on `count` normalized images
/// (`images`, NCHW), with the network's own thresholds. `progress` gets the layers done.
pub fn analyze(
    walker: &dyn Walker,
    snn: &SpikingNetwork,
    images: &[f32],
    count: usize,
    timesteps: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<LayerErrors>, EngineError> {
    let mut rows = Vec::with_capacity(snn.layers.len());
    walk(walker, snn, images, count, timesteps, |probe| {
        let layer = &snn.layers[probe.layer];
        let sums = probe.error_sums(&layer.thresholds)?;
        let mut totals = [0.0f64; ERROR_STATS];
        for channel in sums.chunks_exact(ERROR_STATS) {
            for (total, value) in totals.iter_mut().zip(channel) {
                *total += value;
            }
        }
        let per_image = probe.scan.shape.len();
        let neurons = (count * per_image) as f64;
        rows.push(LayerErrors {
            layer: layer.name.clone(),
            depth: probe.layer + 1,
            neurons: per_image,
            threshold: layer.thresholds.mean(),
            quantization: totals[0] / neurons,
            deviation: totals[1] / neurons,
            total: totals[2] / neurons,
            squared: totals[3] / neurons,
            tracking: totals[8] / neurons,
            input_variance: totals[4] / neurons,
            firing_rate: firing_rate(totals[5].round() as u64, per_image, timesteps, count),
            mean_deviation: totals[6] / neurons,
            mean_quantization: totals[7] / neurons,
            mean_error: totals[SIGNED_TOTAL_STAT] / neurons,
            channel_mean_error: mean_magnitude(&probe.channel_mean_errors(&sums)),
        });
        progress(rows.len());
        Ok(None)
    })?;
    Ok(rows)
}
