//! Threshold tuning on the GPU (TTRBR's threshold tuning): a layer-major walk
//! ([`super::layerwise`]) that stops at every IF layer, scores candidate thresholds on the
//! layer's real spiking input and the ANN's activation, and lets the layer spike with the
//! winner before moving on (with `tune_v_init`, also the layer's initial membrane fraction).
//! The candidates and the choice are [`crate::convert::ttrbr`].

use crate::convert::snn::SpikingNetwork;
use crate::convert::threshold::Thresholds;
use crate::convert::ttrbr::{
    incumbent_scores, per_channel, pick, relative_weights, thresholds_from, v_init_candidates, Choice, Round,
};
use crate::gpu::{GpuContext, GpuError, Kernels};

use super::layerwise::{walk, LayerSetting};

/// What tuning did to one IF layer, on the tuning images, given the tuned layers before it.
/// Errors are tracking errors ([`crate::reference::layerwise::tracking_error`]) of the
/// layer's spiking output against the ANN activation.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerTuning {
    pub layer: String,
    pub start: Thresholds,
    pub tuned: Thresholds,
    /// Initial membrane fraction before and after (equal unless `v_init` was tuned).
    pub start_v_init: f32,
    pub v_init: f32,
    /// The objective tuning minimized, under the start and the tuned thresholds: with
    /// per-channel thresholds the mean tracking error per neuron; with one threshold per
    /// layer the mean over channels of each channel's tracking error relative to its
    /// error under the start ([`relative_weights`]), so the start scores 1.
    pub start_objective: f64,
    pub objective: f64,
    /// Mean tracking error per neuron under the tuned thresholds.
    pub tracking: f64,
}

/// Tunes every IF layer of `snn` in topological order for `timesteps` steps on `count`
/// normalized calibration images (`images`, NCHW), starting from its thresholds: one
/// threshold per layer, or per channel when `per_channel_thresholds`; with `tune_v_init`
/// each layer's initial membrane fraction is chosen with its thresholds (from
/// [`v_init_candidates`]) and recorded in the network. Returns the tuned network
/// (`tuned_for_timesteps` set; the method name is the caller's) and a record per layer.
/// `progress` gets the number of layers done.
#[allow(clippy::too_many_arguments)]
pub fn tune(
    ctx: &GpuContext,
    kernels: &Kernels,
    snn: &SpikingNetwork,
    images: &[f32],
    count: usize,
    timesteps: usize,
    per_channel_thresholds: bool,
    tune_v_init: bool,
    mut progress: impl FnMut(usize),
) -> Result<(SpikingNetwork, Vec<LayerTuning>), GpuError> {
    let mut records = Vec::with_capacity(snn.layers.len());
    let tuned = walk(ctx, kernels, snn, images, count, timesteps, |probe| {
        let layer = &snn.layers[probe.layer];
        let channels = probe.scan.shape.channels;
        let neurons = (probe.scan.images * probe.scan.shape.len()) as f64;
        let coarse = Round::coarse(&per_channel(&layer.thresholds, channels));
        let v_inits = v_init_candidates(probe.scan.v_init, tune_v_init);
        let start_sums = probe.search(&coarse.candidates, coarse.per_channel, v_inits[0])?;
        // Per channel, each channel is its own choice and plain sums are the objective; one
        // threshold for the layer weighs each channel by its start (see `relative_weights`).
        let (weights, scale) = if per_channel_thresholds {
            (vec![1.0; channels], neurons)
        } else {
            (relative_weights(&incumbent_scores(&coarse, &start_sums)), channels as f64)
        };
        // Both rounds under every initial membrane fraction; the start's comes first (its
        // coarse sums are those above) and a later one must score strictly lower to replace it.
        let mut coarse_sums = start_sums;
        let mut start_objective = None;
        let mut best: Option<(Choice, f32)> = None;
        for (i, &v_init) in v_inits.iter().enumerate() {
            if i > 0 {
                coarse_sums = probe.search(&coarse.candidates, coarse.per_channel, v_init)?;
            }
            let first = pick(&coarse, &coarse_sums, &weights, per_channel_thresholds);
            start_objective.get_or_insert(first.incumbent_objective);
            let fine = Round::fine(&first.thresholds);
            let fine_sums = probe.search(&fine.candidates, fine.per_channel, v_init)?;
            let second = pick(&fine, &fine_sums, &weights, per_channel_thresholds);
            if best.as_ref().is_none_or(|(incumbent, _)| second.objective < incumbent.objective) {
                best = Some((second, v_init));
            }
        }
        let start_objective = start_objective.expect("the starting v_init is scored first");
        let (second, v_init) = best.expect("at least the starting v_init is scored");
        let thresholds = thresholds_from(second.thresholds, per_channel_thresholds);
        records.push(LayerTuning {
            layer: layer.name.clone(),
            start: layer.thresholds.clone(),
            tuned: thresholds.clone(),
            start_v_init: probe.scan.v_init,
            v_init,
            start_objective: start_objective / scale,
            objective: second.objective / scale,
            tracking: second.error / neurons,
        });
        progress(records.len());
        Ok(Some(LayerSetting { thresholds, v_init }))
    })?;
    let mut network = snn.clone();
    for (layer, setting) in network.layers.iter_mut().zip(tuned) {
        layer.thresholds = setting.thresholds;
        if tune_v_init {
            layer.v_init = Some(setting.v_init);
        }
    }
    network.tuned_for_timesteps = Some(timesteps);
    Ok((network, records))
}
