//! Threshold tuning (the "TT" of TTRBR): the candidate thresholds a layer is scored on and
//! the choice among them. The scores (squared errors of the layer's SNN output against the
//! ANN, over calibration images, given the real spiking input of the layers before it) are
//! measured on the GPU by [`crate::tuning::tune`](mod@crate::tuning::tune); this module is the
//! pure part, so the search itself is tested without a GPU. docs/METHOD.md explains the
//! objective and why it covers both quantization and deviation error.
//!
//! Search: two rounds of scale factors applied to the starting (percentile) thresholds.
//! - coarse: `2^((k − 20) / 8)` for k = 0..31, from 0.18× to 2.6× in eighth-octave steps;
//! - fine: `best × 2^((j − 8) / 64)` for j = 0..16 around the coarse winner.
//!
//! With `--tune-v-init` both rounds run once per initial membrane fraction of
//! [`v_init_candidates`], and the layer takes the pair (threshold, `v_init`) of lowest
//! objective, its starting `v_init` on ties.
//!
//! Both rounds contain the current best exactly (scale 1 in the coarse round, the coarse
//! winner in the fine one), and ties keep the lower index, so the chosen thresholds never
//! score worse than the starting ones on the objective. Everything is deterministic.

use super::threshold::Thresholds;

/// Candidates of the coarse round.
pub const COARSE_CANDIDATES: usize = 32;
/// Index of scale 1 (the starting threshold) in the coarse round.
const COARSE_ONE: usize = 20;
/// Coarse steps per octave.
const COARSE_STEPS_PER_OCTAVE: f64 = 8.0;
/// Candidates of the fine round.
pub const FINE_CANDIDATES: usize = 17;
/// Index of the coarse winner in the fine round.
const FINE_ONE: usize = 8;
const FINE_STEPS_PER_OCTAVE: f64 = 64.0;

/// The scale factors of a round: `2^((k − one) / steps_per_octave)`, exactly 1 at `one`.
fn scales(count: usize, one: usize, steps_per_octave: f64) -> Vec<f64> {
    (0..count).map(|k| ((k as f64 - one as f64) / steps_per_octave).exp2()).collect()
}

/// Initial membrane fractions a layer's `v_init` is chosen from when it is tuned with the
/// threshold (docs/METHOD.md: inner layers that over-fire take low values, late ones high).
pub const V_INIT_CANDIDATES: [f32; 6] = [0.5, 0.25, 0.375, 0.625, 0.75, 0.875];

/// The initial membrane fractions a layer is scored under: its starting one first (so a
/// tie keeps it), then, when `tune_v_init`, the other [`V_INIT_CANDIDATES`].
pub fn v_init_candidates(start: f32, tune_v_init: bool) -> Vec<f32> {
    let mut values = vec![start];
    if tune_v_init {
        values.extend(V_INIT_CANDIDATES.into_iter().filter(|&v| v != start));
    }
    values
}

/// One search round: for each channel, `per_channel` candidate thresholds, channel-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Round {
    pub per_channel: usize,
    /// `channels × per_channel` thresholds.
    pub candidates: Vec<f32>,
    /// Index, within each channel's candidates, of the current best (kept on ties).
    pub incumbent: usize,
}

impl Round {
    fn around(centres: &[f32], scales: &[f64], incumbent: usize) -> Round {
        let candidates = centres
            .iter()
            .flat_map(|&centre| {
                scales
                    .iter()
                    .enumerate()
                    .map(move |(k, &s)| if k == incumbent { centre } else { (centre as f64 * s) as f32 })
            })
            .collect();
        Round { per_channel: scales.len(), candidates, incumbent }
    }

    /// The coarse round around the starting thresholds (one per channel).
    pub fn coarse(start: &[f32]) -> Round {
        Round::around(start, &scales(COARSE_CANDIDATES, COARSE_ONE, COARSE_STEPS_PER_OCTAVE), COARSE_ONE)
    }

    /// The fine round around the thresholds a previous round chose (one per channel).
    pub fn fine(best: &[f32]) -> Round {
        Round::around(best, &scales(FINE_CANDIDATES, FINE_ONE, FINE_STEPS_PER_OCTAVE), FINE_ONE)
    }
}

/// What a round chose: one threshold per channel (all equal for a layer-wide choice), the
/// objective (weighted sum of squared errors over the layer, see [`pick`]) before and after,
/// and the unweighted sum after.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub thresholds: Vec<f32>,
    pub incumbent_objective: f64,
    pub objective: f64,
    pub error: f64,
}

/// Smallest weight denominator of [`relative_weights`], as a fraction of the mean start
/// error: a channel the start thresholds already reproduce (almost) exactly, such as one
/// that is zero on every tuning image, must not take over the layer's objective.
const RELATIVE_FLOOR: f64 = 1e-3;

/// Channel weights of a layer-wide choice: `1 / e_c`, `e_c` the channel's error under the
/// starting thresholds (floored at [`RELATIVE_FLOOR`] × the channels' mean), so the
/// objective is the sum over channels of each channel's error relative to its start. With
/// plain sums a layer-wide threshold trades channels against each other by their squared
/// size: a few channels of large activations outweigh many small ones, and the threshold
/// they choose can silence the rest (measured: results/earlier-subset-experiments/README.md, docs/METHOD.md).
pub fn relative_weights(start_errors: &[f64]) -> Vec<f64> {
    let mean = start_errors.iter().sum::<f64>() / start_errors.len().max(1) as f64;
    let floor = (RELATIVE_FLOOR * mean).max(f64::MIN_POSITIVE);
    start_errors.iter().map(|&e| 1.0 / e.max(floor)).collect()
}

/// The incumbent's score in every channel of a round.
pub fn incumbent_scores(round: &Round, sums: &[f64]) -> Vec<f64> {
    sums.chunks_exact(round.per_channel).map(|scores| scores[round.incumbent]).collect()
}

/// Picks from a round's scores (`sums`: `channels × per_channel` sums of squared errors):
/// per channel the lowest sum, or, layer-wide, the candidate index with the lowest total
/// weighted by `weights` (one per channel; candidates of a layer-wide round are the same in
/// every channel). Ties keep the incumbent, then the lower index. Weights do not change a
/// per-channel choice, only the objective it reports.
pub fn pick(round: &Round, sums: &[f64], weights: &[f64], per_channel_thresholds: bool) -> Choice {
    let k = round.per_channel;
    assert_eq!(sums.len(), round.candidates.len(), "one score per candidate");
    let channels = sums.len() / k;
    assert_eq!(weights.len(), channels, "one weight per channel");
    let better = |a: f64, b: f64| a < b || (a.is_finite() && b.is_nan());
    let best_of = |scores: &[f64]| {
        let mut best = round.incumbent;
        for (index, &score) in scores.iter().enumerate() {
            if better(score, scores[best]) {
                best = index;
            }
        }
        best
    };
    let picks: Vec<usize> = if per_channel_thresholds {
        (0..channels).map(|c| best_of(&sums[c * k..(c + 1) * k])).collect()
    } else {
        let totals: Vec<f64> = (0..k).map(|i| (0..channels).map(|c| weights[c] * sums[c * k + i]).sum()).collect();
        vec![best_of(&totals); channels]
    };
    let chosen = |c: usize| sums[c * k + picks[c]];
    Choice {
        thresholds: picks.iter().enumerate().map(|(c, &i)| round.candidates[c * k + i]).collect(),
        incumbent_objective: (0..channels).map(|c| weights[c] * sums[c * k + round.incumbent]).sum(),
        objective: (0..channels).map(|c| weights[c] * chosen(c)).sum(),
        error: (0..channels).map(chosen).sum(),
    }
}

/// The starting thresholds broadcast to one per channel.
pub fn per_channel(start: &Thresholds, channels: usize) -> Vec<f32> {
    (0..channels).map(|c| start.for_channel(c)).collect()
}

/// Thresholds of the chosen form from one value per channel.
pub fn thresholds_from(values: Vec<f32>, per_channel_thresholds: bool) -> Thresholds {
    if per_channel_thresholds {
        Thresholds::Channel(values)
    } else {
        Thresholds::Layer(values[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_contain_the_incumbent_exactly() {
        let start = [0.7f32, 1.3];
        let coarse = Round::coarse(&start);
        assert_eq!(coarse.per_channel, COARSE_CANDIDATES);
        assert_eq!(coarse.candidates[COARSE_ONE], 0.7);
        assert_eq!(coarse.candidates[COARSE_CANDIDATES + COARSE_ONE], 1.3);
        assert!((coarse.candidates[0] / 0.7 - 2f32.powf(-2.5)).abs() < 1e-6);
        assert!(coarse.candidates.windows(2).take(COARSE_CANDIDATES - 1).all(|w| w[0] < w[1]));
        let fine = Round::fine(&[0.9]);
        assert_eq!(fine.candidates[FINE_ONE], 0.9);
        assert!(fine.candidates.iter().all(|&t| t > 0.9 * 0.9 && t < 0.9 * 1.1));
    }

    #[test]
    fn v_init_candidates_start_with_the_start_and_repeat_none() {
        assert_eq!(v_init_candidates(0.5, false), [0.5]);
        assert_eq!(v_init_candidates(0.35, false), [0.35]);
        assert_eq!(v_init_candidates(0.5, true), V_INIT_CANDIDATES);
        let other = v_init_candidates(0.35, true);
        assert_eq!(other[0], 0.35);
        assert_eq!(other.len(), V_INIT_CANDIDATES.len() + 1);
        assert!(other.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn layer_choice_minimizes_the_total_and_keeps_ties() {
        let round = Round { per_channel: 3, candidates: vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0], incumbent: 1 };
        // Channel 0 prefers 1.0, channel 1 prefers 3.0; the totals are 5, 4, 4.5.
        let ones = [1.0, 1.0];
        let choice = pick(&round, &[1.0, 2.0, 4.0, 4.0, 2.0, 0.5], &ones, false);
        assert_eq!(choice.thresholds, [2.0, 2.0]);
        assert_eq!((choice.incumbent_objective, choice.objective, choice.error), (4.0, 4.0, 4.0));
        let choice = pick(&round, &[1.0, 2.0, 4.0, 4.0, 2.0, 0.5], &ones, true);
        assert_eq!(choice.thresholds, [1.0, 3.0]);
        assert_eq!((choice.objective, choice.error), (1.5, 1.5));
        // Weights move a layer-wide choice (channel 1 now counts 4×: totals 17, 10, 6)
        // but not a per-channel one.
        let choice = pick(&round, &[1.0, 2.0, 4.0, 4.0, 2.0, 0.5], &[1.0, 4.0], false);
        assert_eq!(choice.thresholds, [3.0, 3.0]);
        assert_eq!((choice.incumbent_objective, choice.objective, choice.error), (10.0, 6.0, 4.5));
        let choice = pick(&round, &[1.0, 2.0, 4.0, 4.0, 2.0, 0.5], &[1.0, 4.0], true);
        assert_eq!(choice.thresholds, [1.0, 3.0]);
        assert_eq!((choice.objective, choice.error), (3.0, 1.5));
        // A tie with the incumbent keeps it.
        let choice = pick(&round, &[2.0, 2.0, 2.0, 2.0, 2.0, 2.0], &ones, true);
        assert_eq!(choice.thresholds, [2.0, 2.0]);
    }

    #[test]
    fn never_worse_than_the_incumbent() {
        // Random scores: whatever they are, the choice scores at most the incumbent's.
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as f64 / (1u64 << 31) as f64
        };
        for trial in 0..200 {
            let start: Vec<f32> = (0..4).map(|_| 0.1 + next() as f32).collect();
            let round = if trial % 2 == 0 { Round::coarse(&start) } else { Round::fine(&start) };
            let sums: Vec<f64> = round.candidates.iter().map(|_| next()).collect();
            let weights = relative_weights(&incumbent_scores(&round, &sums));
            for per_channel_thresholds in [false, true] {
                let choice = pick(&round, &sums, &weights, per_channel_thresholds);
                assert!(choice.objective <= choice.incumbent_objective);
                assert!(choice.thresholds.iter().all(|t| t.is_finite() && *t > 0.0));
            }
        }
    }

    #[test]
    fn relative_weights_make_a_layer_choice_blind_to_channel_scale() {
        // Channel 1's errors are channel 0's shape times 1000: with plain sums it decides
        // alone; relative to their starts both count alike.
        let round = Round { per_channel: 3, candidates: vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0], incumbent: 1 };
        let sums = [1.0, 4.0, 6.0, 9000.0, 4000.0, 3000.0];
        assert_eq!(pick(&round, &sums, &[1.0, 1.0], false).thresholds, [3.0, 3.0]);
        let weights = relative_weights(&incumbent_scores(&round, &sums));
        assert_eq!(weights, [0.25, 0.00025]);
        let choice = pick(&round, &sums, &weights, false);
        // Relative totals: 0.25 + 2.25 = 2.5, 1 + 1 = 2, 1.5 + 0.75 = 2.25.
        assert_eq!(choice.thresholds, [2.0, 2.0]);
        assert_eq!(choice.incumbent_objective, 2.0);
        // A channel its start reproduces exactly is floored, not divided by zero.
        let weights = relative_weights(&[0.0, 2.0, 4.0]);
        assert!(weights.iter().all(|w| w.is_finite() && *w > 0.0));
        assert_eq!(weights[0], 1.0 / (1e-3 * 2.0));
    }
}
