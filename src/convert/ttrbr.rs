//! Threshold tuning (the "TT" of TTRBR): the candidate thresholds a layer is scored on and
//! the choice among them. The scores (squared errors of the layer's SNN output against the
//! ANN, over calibration images, given the real spiking input of the layers before it) are
//! measured on the GPU by [`crate::sim::tune`](mod@crate::sim::tune); this module is the
//! pure part, so the search itself is tested without a GPU. docs/METHOD.md explains the
//! objective and why it covers both quantization and deviation error.
//!
//! Search: two rounds of scale factors applied to the starting (percentile) thresholds.
//! - coarse: `2^((k − 20) / 8)` for k = 0..31, from 0.18× to 2.6× in eighth-octave steps;
//! - fine: `best × 2^((j − 8) / 64)` for j = 0..16 around the coarse winner.
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

/// What a round chose: one threshold per channel (all equal for a layer-wide choice) and
/// the objective (sum of squared errors over the layer) before and after.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub thresholds: Vec<f32>,
    pub incumbent_objective: f64,
    pub objective: f64,
}

/// Picks from a round's scores (`sums`: `channels × per_channel` sums of squared errors):
/// per channel the lowest sum, or, layer-wide, the candidate index with the lowest total
/// (candidates of a layer-wide round are the same in every channel). Ties keep the
/// incumbent, then the lower index.
pub fn pick(round: &Round, sums: &[f64], per_channel_thresholds: bool) -> Choice {
    let k = round.per_channel;
    assert_eq!(sums.len(), round.candidates.len(), "one score per candidate");
    let channels = sums.len() / k;
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
    let incumbent_objective: f64 = (0..channels).map(|c| sums[c * k + round.incumbent]).sum();
    if per_channel_thresholds {
        let picks: Vec<usize> = (0..channels).map(|c| best_of(&sums[c * k..(c + 1) * k])).collect();
        Choice {
            thresholds: picks.iter().enumerate().map(|(c, &i)| round.candidates[c * k + i]).collect(),
            incumbent_objective,
            objective: picks.iter().enumerate().map(|(c, &i)| sums[c * k + i]).sum(),
        }
    } else {
        let totals: Vec<f64> = (0..k).map(|i| (0..channels).map(|c| sums[c * k + i]).sum()).collect();
        let best = best_of(&totals);
        Choice {
            thresholds: (0..channels).map(|c| round.candidates[c * k + best]).collect(),
            incumbent_objective,
            objective: totals[best],
        }
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
    fn layer_choice_minimizes_the_total_and_keeps_ties() {
        let round = Round { per_channel: 3, candidates: vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0], incumbent: 1 };
        // Channel 0 prefers 1.0, channel 1 prefers 3.0; the totals are 5, 4, 4.5.
        let choice = pick(&round, &[1.0, 2.0, 4.0, 4.0, 2.0, 0.5], false);
        assert_eq!(choice.thresholds, [2.0, 2.0]);
        assert_eq!((choice.incumbent_objective, choice.objective), (4.0, 4.0));
        let choice = pick(&round, &[1.0, 2.0, 4.0, 4.0, 2.0, 0.5], true);
        assert_eq!(choice.thresholds, [1.0, 3.0]);
        assert_eq!(choice.objective, 1.5);
        // A tie with the incumbent keeps it.
        let choice = pick(&round, &[2.0, 2.0, 2.0, 2.0, 2.0, 2.0], true);
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
            for per_channel_thresholds in [false, true] {
                let choice = pick(&round, &sums, per_channel_thresholds);
                assert!(choice.objective <= choice.incumbent_objective);
                assert!(choice.thresholds.iter().all(|t| t.is_finite() && *t > 0.0));
            }
        }
    }
}
