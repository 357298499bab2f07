//! Bias correction (`--bias-correction`): after an IF layer's thresholds are tuned, give
//! each of its channels a constant input current (the IF layer's bias current) that cancels
//! the channel's mean error `n θ / T − a` on the tuning images. The deviation error makes
//! neurons over-fire on average (docs/METHOD.md), and every later layer integrates that
//! surplus as if it were signal; a per-channel offset of the current removes the part of it
//! that is the same on every image. The errors are measured on the GPU by
//! [`crate::tuning::tune`](mod@crate::tuning::tune); this module is the pure part.
//!
//! A shift `b` of the current moves the output of a neuron that fires by about `b` (one
//! step's current adds `b T / θ` spikes worth `θ / T` each), of a silent one not at all, so
//! the correction is repeated: each round proposes `b − mean error` and a channel takes it
//! only when its mean error gets strictly smaller in magnitude. Channels of one IF layer do
//! not interact, so the rounds never leave a channel's mean error larger than it started.

/// Correction rounds per IF layer unless `--bias-rounds` says otherwise.
pub const BIAS_CORRECTION_ROUNDS: usize = 3;

/// Mean signed error per channel from per-channel sums of `n θ / T − a` over
/// `neurons_per_channel` neurons (every image's plane of the channel).
pub fn mean_errors(signed_sums: &[f64], neurons_per_channel: usize) -> Vec<f64> {
    let count = neurons_per_channel.max(1) as f64;
    signed_sums.iter().map(|sum| sum / count).collect()
}

/// The next bias currents to try: each channel's current bias minus its mean error.
pub fn proposal(bias: &[f32], mean_error: &[f64]) -> Vec<f32> {
    bias.iter().zip(mean_error).map(|(&b, &e)| (f64::from(b) - e) as f32).collect()
}

/// Keeps, per channel, the proposed bias where its mean error is strictly smaller in
/// magnitude than the current one's (and finite); updates `bias` and `mean_error` in place.
/// Returns how many channels moved.
pub fn keep_improvements(bias: &mut [f32], mean_error: &mut [f64], proposed: &[f32], proposed_error: &[f64]) -> usize {
    let mut moved = 0;
    for c in 0..bias.len() {
        if proposed[c].is_finite() && proposed_error[c].abs() < mean_error[c].abs() {
            bias[c] = proposed[c];
            mean_error[c] = proposed_error[c];
            moved += 1;
        }
    }
    moved
}

/// Mean over channels of the magnitude of each channel's mean error.
pub fn mean_magnitude(mean_error: &[f64]) -> f64 {
    if mean_error.is_empty() {
        return 0.0;
    }
    mean_error.iter().map(|e| e.abs()).sum::<f64>() / mean_error.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposal_subtracts_the_mean_error() {
        assert_eq!(mean_errors(&[4.0, -2.0], 8), [0.5, -0.25]);
        assert_eq!(proposal(&[0.0, 0.125], &[0.5, -0.25]), [-0.5, 0.375]);
    }

    #[test]
    fn only_channels_that_improve_move() {
        let mut bias = vec![0.0, 0.0, 0.0];
        let mut error = vec![0.5, -0.25, 0.1];
        let proposed = [-0.5, 0.25, f32::NAN];
        // Channel 0 improves, channel 1 overshoots to a larger error, channel 2 is not finite.
        let moved = keep_improvements(&mut bias, &mut error, &proposed, &[0.125, 0.5, 0.0]);
        assert_eq!(moved, 1);
        assert_eq!(bias, [-0.5, 0.0, 0.0]);
        assert_eq!(error, [0.125, -0.25, 0.1]);
        // A tie does not move either.
        assert_eq!(keep_improvements(&mut bias, &mut error, &[-1.0, 1.0, 1.0], &[-0.125, 0.25, -0.1]), 0);
        assert!((mean_magnitude(&error) - (0.125 + 0.25 + 0.1) / 3.0).abs() < 1e-12);
    }
}
