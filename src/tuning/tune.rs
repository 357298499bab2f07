//! Threshold tuning (TTRBR's threshold tuning) on either backend: a layer-major walk
//! ([`crate::engine::walk`]) that stops at every IF layer, scores candidate thresholds on the
//! layer's real spiking input and the ANN's activation, and lets the layer spike with the
//! winner before moving on (with `tune_v_init`, also the layer's initial membrane fraction;
//! with `correct_bias`, then a bias current that cancels each channel's mean error). The
//! candidates and the choice are [`crate::convert::ttrbr`], the bias rounds
//! [`crate::convert::bias_correction`].

use crate::convert::bias_correction::{keep_improvements, mean_magnitude, proposal, BIAS_CORRECTION_ROUNDS};
use crate::convert::snn::SpikingNetwork;
use crate::convert::threshold::Thresholds;
use crate::convert::ttrbr::{
    incumbent_scores, per_channel, pick, relative_weights, thresholds_from, v_init_candidates, Choice, Round,
};
use crate::engine::walk::{walk, LayerProbe, LayerSetting, Walker, ERROR_STATS, TRACKING_STAT};
use crate::engine::EngineError;

/// What a tuning walk chooses besides the thresholds, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TuneOptions {
    /// One threshold per channel instead of one per layer.
    pub per_channel_thresholds: bool,
    /// Also choose each layer's initial membrane fraction ([`v_init_candidates`]).
    pub tune_v_init: bool,
    /// Then give each layer a bias current that cancels its channels' mean errors
    /// ([`crate::convert::bias_correction`]).
    pub correct_bias: bool,
    /// With `correct_bias`: search each layer's thresholds once more under the bias
    /// current the correction chose, then correct again from it (thresholds chosen before
    /// the correction partly compensate the mean error the correction then removes).
    pub refit_thresholds: bool,
    /// Rounds of each bias correction ([`BIAS_CORRECTION_ROUNDS`] by default); a round
    /// that moves no channel ends it early.
    pub bias_rounds: usize,
}

impl Default for TuneOptions {
    fn default() -> Self {
        Self {
            per_channel_thresholds: false,
            tune_v_init: false,
            correct_bias: false,
            refit_thresholds: false,
            bias_rounds: BIAS_CORRECTION_ROUNDS,
        }
    }
}

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
    /// The objective of the layer's last threshold search, under its incumbent and its
    /// chosen thresholds (the incumbent: the start, or with `refit_thresholds` the first
    /// search's choice under the corrected bias current): with per-channel thresholds the
    /// mean tracking error per neuron; with one threshold per layer the mean over channels
    /// of each channel's tracking error relative to its error under the start
    /// ([`relative_weights`]), so the start scores 1 in the first search.
    pub start_objective: f64,
    pub objective: f64,
    /// Mean tracking error per neuron under the chosen thresholds, with the bias current
    /// the last search ran under (none on the first).
    pub tracking: f64,
    /// Mean over channels of the magnitude of each channel's mean error `n θ / T − a`,
    /// under the first search's thresholds before bias correction, and with the final
    /// thresholds and bias current (equal without correction).
    pub start_mean_error: f64,
    pub mean_error: f64,
    /// Mean over channels of `|bias current| / threshold` (0 without bias correction).
    pub bias_current: f64,
}

/// Tunes every IF layer of `snn` in topological order for `timesteps` steps on `count`
/// normalized calibration images (`images`, NCHW), starting from its thresholds: one
/// threshold per layer, or per channel, as `options` say; with `tune_v_init` each layer's
/// initial membrane fraction is chosen with its thresholds (from [`v_init_candidates`]),
/// with `correct_bias` each layer then gets a bias current (and with `refit_thresholds`
/// its thresholds are searched again under it, then corrected again); all are recorded in
/// the network. Returns the tuned network (`tuned_for_timesteps` set; the method name is
/// the caller's) and a record per layer. `progress` gets the number of layers done.
pub fn tune(
    walker: &dyn Walker,
    snn: &SpikingNetwork,
    images: &[f32],
    count: usize,
    timesteps: usize,
    options: TuneOptions,
    mut progress: impl FnMut(usize),
) -> Result<(SpikingNetwork, Vec<LayerTuning>), EngineError> {
    let TuneOptions { per_channel_thresholds, tune_v_init, correct_bias, refit_thresholds, bias_rounds } = options;
    let searches = if correct_bias && refit_thresholds { 2 } else { 1 };
    let mut records = Vec::with_capacity(snn.layers.len());
    let tuned = walk(walker, snn, images, count, timesteps, |probe| {
        let layer = &snn.layers[probe.layer];
        let neurons = (probe.scan.images * probe.scan.shape.len()) as f64;
        let mut thresholds = layer.thresholds.clone();
        let mut v_inits = v_init_candidates(probe.scan.v_init, tune_v_init);
        let mut bias_current = probe.bias_current.clone();
        let mut weights = None;
        let mut start_mean_error = None;
        let mut mean_error = 0.0;
        let mut last = None;
        for _ in 0..searches {
            let search =
                search_thresholds(probe, &thresholds, &v_inits, &bias_current, &mut weights, per_channel_thresholds)?;
            thresholds = thresholds_from(search.choice.thresholds.clone(), per_channel_thresholds);
            v_inits = vec![search.v_init];
            let sums = probe.error_sums_with(&thresholds, search.v_init, &bias_current)?;
            if correct_bias {
                let (corrected, before, after) =
                    corrected_bias(probe, &thresholds, search.v_init, &bias_current, &sums, bias_rounds)?;
                bias_current = corrected;
                start_mean_error.get_or_insert(before);
                mean_error = after;
            } else {
                mean_error = mean_magnitude(&probe.channel_mean_errors(&sums));
                start_mean_error.get_or_insert(mean_error);
            }
            last = Some(search);
        }
        let search = last.expect("at least one threshold search");
        let v_init = search.v_init;
        records.push(LayerTuning {
            layer: layer.name.clone(),
            start: layer.thresholds.clone(),
            tuned: thresholds.clone(),
            start_v_init: probe.scan.v_init,
            v_init,
            start_objective: search.start_objective / search.scale,
            objective: search.choice.objective / search.scale,
            tracking: search.choice.error / neurons,
            start_mean_error: start_mean_error.expect("at least one threshold search"),
            mean_error,
            bias_current: mean_bias_ratio(&bias_current, &thresholds),
        });
        progress(records.len());
        Ok(Some(LayerSetting { thresholds, v_init, bias_current }))
    })?;
    let mut network = snn.clone();
    for (layer, setting) in network.layers.iter_mut().zip(tuned) {
        layer.thresholds = setting.thresholds;
        if tune_v_init {
            layer.v_init = Some(setting.v_init);
        }
        if correct_bias {
            layer.bias_current = Some(setting.bias_current);
        }
    }
    network.tuned_for_timesteps = Some(timesteps);
    Ok((network, records))
}

/// One threshold search of a layer: what it chose, under which initial membrane fraction,
/// the incumbent's objective, and the divisor that makes objectives per neuron (per
/// channel) or per channel (one threshold per layer).
struct Search {
    choice: Choice,
    v_init: f32,
    start_objective: f64,
    scale: f64,
}

/// Searches the layer at `probe` from `incumbent` (coarse then fine round) under every
/// initial membrane fraction of `v_inits` (the first is the incumbent's: a later one must
/// score strictly lower to replace it), with `bias_current` added every step. A layer-wide
/// choice weighs channels by `weights`, set from the first search's incumbent scores
/// ([`relative_weights`]) when `None`.
fn search_thresholds(
    probe: &LayerProbe<'_>,
    incumbent: &Thresholds,
    v_inits: &[f32],
    bias_current: &[f32],
    weights: &mut Option<Vec<f64>>,
    per_channel_thresholds: bool,
) -> Result<Search, EngineError> {
    let channels = probe.scan.shape.channels;
    let coarse = Round::coarse(&per_channel(incumbent, channels));
    let mut start_objective = None;
    let mut best: Option<(Choice, f32)> = None;
    for &v_init in v_inits {
        let coarse_sums = probe.search(&coarse.candidates, coarse.per_channel, v_init, bias_current)?;
        // Per channel, each channel is its own choice and plain sums are the objective; one
        // threshold for the layer weighs each channel by its start (see `relative_weights`).
        let weights = weights.get_or_insert_with(|| {
            if per_channel_thresholds {
                vec![1.0; channels]
            } else {
                relative_weights(&incumbent_scores(&coarse, &coarse_sums))
            }
        });
        let first = pick(&coarse, &coarse_sums, weights, per_channel_thresholds);
        start_objective.get_or_insert(first.incumbent_objective);
        let fine = Round::fine(&first.thresholds);
        let fine_sums = probe.search(&fine.candidates, fine.per_channel, v_init, bias_current)?;
        let second = pick(&fine, &fine_sums, weights, per_channel_thresholds);
        if best.as_ref().is_none_or(|(incumbent, _)| second.objective < incumbent.objective) {
            best = Some((second, v_init));
        }
    }
    let (choice, v_init) = best.expect("at least the incumbent's v_init is scored");
    let scale =
        if per_channel_thresholds { (probe.scan.images * probe.scan.shape.len()) as f64 } else { channels as f64 };
    Ok(Search {
        choice,
        v_init,
        start_objective: start_objective.expect("the incumbent's v_init is scored first"),
        scale,
    })
}

/// Bias correction alone: walks `snn` for `timesteps` steps on `count` normalized
/// calibration images with its own thresholds and initial membranes, and gives every IF
/// layer, in topological order, the bias current that cancels its channels' mean errors
/// given the corrected layers before it, in at most `rounds` rounds per layer. Returns the
/// network (`tuned_for_timesteps` set: the currents depend on T) and a record per layer,
/// whose objectives are the tracking error per neuron under the layer's thresholds.
/// `progress` gets the layers done.
pub fn correct_bias(
    walker: &dyn Walker,
    snn: &SpikingNetwork,
    images: &[f32],
    count: usize,
    timesteps: usize,
    rounds: usize,
    mut progress: impl FnMut(usize),
) -> Result<(SpikingNetwork, Vec<LayerTuning>), EngineError> {
    let mut records = Vec::with_capacity(snn.layers.len());
    let corrected = walk(walker, snn, images, count, timesteps, |probe| {
        let layer = &snn.layers[probe.layer];
        let v_init = probe.scan.v_init;
        let sums = probe.error_sums(&layer.thresholds)?;
        let neurons = (probe.scan.images * probe.scan.shape.len()) as f64;
        let tracking = sums.chunks_exact(ERROR_STATS).map(|channel| channel[TRACKING_STAT]).sum::<f64>() / neurons;
        let (bias_current, start_mean_error, mean_error) =
            corrected_bias(probe, &layer.thresholds, v_init, &probe.bias_current, &sums, rounds)?;
        records.push(LayerTuning {
            layer: layer.name.clone(),
            start: layer.thresholds.clone(),
            tuned: layer.thresholds.clone(),
            start_v_init: v_init,
            v_init,
            start_objective: tracking,
            objective: tracking,
            tracking,
            start_mean_error,
            mean_error,
            bias_current: mean_bias_ratio(&bias_current, &layer.thresholds),
        });
        progress(records.len());
        Ok(Some(LayerSetting { thresholds: layer.thresholds.clone(), v_init, bias_current }))
    })?;
    let mut network = snn.clone();
    for (layer, setting) in network.layers.iter_mut().zip(corrected) {
        layer.bias_current = Some(setting.bias_current);
    }
    network.tuned_for_timesteps = Some(timesteps);
    Ok((network, records))
}

/// Mean over channels of `|bias current| / threshold`.
fn mean_bias_ratio(bias_current: &[f32], thresholds: &Thresholds) -> f64 {
    let ratios = bias_current.iter().enumerate().map(|(c, b)| f64::from(b.abs() / thresholds.for_channel(c)));
    ratios.sum::<f64>() / bias_current.len().max(1) as f64
}

/// Bias correction of the layer at `probe` with its chosen thresholds and `v_init`: up to
/// `rounds` rounds from the bias current `start`, each keeping a
/// channel's proposal only where it shrinks the channel's mean error; `start_sums` are the
/// layer's [`LayerProbe::error_sums_with`] under `start`, which the caller has measured
/// already. Returns the bias currents and the mean error magnitude before and after.
fn corrected_bias(
    probe: &LayerProbe<'_>,
    thresholds: &Thresholds,
    v_init: f32,
    start: &[f32],
    start_sums: &[f64],
    rounds: usize,
) -> Result<(Vec<f32>, f64, f64), EngineError> {
    let mut bias = start.to_vec();
    let mut error = probe.channel_mean_errors(start_sums);
    let before = mean_magnitude(&error);
    for _ in 0..rounds {
        let proposed = proposal(&bias, &error);
        let proposed_error = probe.channel_mean_errors(&probe.error_sums_with(thresholds, v_init, &proposed)?);
        if keep_improvements(&mut bias, &mut error, &proposed, &proposed_error) == 0 {
            break;
        }
    }
    Ok((bias, before, mean_magnitude(&error)))
}
