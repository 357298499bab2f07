//! CPU reference of the layer-major IF kernels (shaders/layerwise.wgsl): one neuron over
//! all its timesteps, its conversion errors against the ANN, and its squared error under
//! candidate thresholds. Definitions (also in docs/METHOD.md), for a neuron with ANN
//! activation `a`, threshold `θ`, input currents `I_1..I_T` and `n` spikes in T steps (net:
//! positive minus negative spikes, for a signed neuron):
//!
//! - SNN value `n θ / T` (the activation the spikes stand for);
//! - constant-current value `m θ / T`, `m` the spikes of the same neuron fed its mean
//!   current `μ = ΣI / T` every step (a signed neuron fires no negative spike then);
//! - quantization error `m θ / T − clamp(a, 0, θ)`: what discretizing into at most T
//!   spikes costs even with a perfectly steady input;
//! - deviation error `n θ / T − m θ / T`: what the input's variation over time costs;
//! - total error `n θ / T − a` (the sum of the two minus the clipping `a − clamp(a, 0, θ)`);
//! - tracking error `(1/T) Σ_{t=1..T} ((S_t θ − t a) / T)²`, `S_t` the spikes up to step
//!   t: how far the layer's cumulative output strays from the steady `t a` the ANN stands
//!   for, at every step. Its last term is the squared total error; the others are what the
//!   next IF layer integrates, so an output that arrives in bursts (the source of the next
//!   layer's deviation error) scores badly even when its final count is right. Threshold
//!   tuning minimizes it.

use super::snn::neuron_step;
use crate::convert::neuron::Neuron;

/// Spike train of one neuron: `currents[t]` integrated from `v_init × threshold`; the
/// value of each step (the spike times the threshold: θ, −θ or 0), as [`neuron_step`] gives.
pub fn if_scan(neuron: Neuron, currents: &[f32], threshold: f32, v_init: f32) -> Vec<f32> {
    let (mut membrane, mut net) = (v_init * threshold, 0);
    currents
        .iter()
        .map(|&current| neuron_step(neuron, &mut membrane, &mut net, current, threshold) as f32 * threshold)
        .collect()
}

/// Net spikes (positive minus negative) of one neuron over `currents`, and its spikes of
/// either sign.
pub fn spike_count(neuron: Neuron, currents: &[f32], threshold: f32, v_init: f32) -> (i32, u32) {
    let values = if_scan(neuron, currents, threshold, v_init);
    let net = values.iter().map(|&v| (v > 0.0) as i32 - (v < 0.0) as i32).sum();
    (net, values.iter().filter(|&&v| v != 0.0).count() as u32)
}

/// One neuron's conversion errors (see the module documentation), in activation units.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NeuronErrors {
    /// Spikes of either sign.
    pub spikes: u32,
    /// Positive minus negative spikes (`spikes` for a plain IF neuron).
    pub net_spikes: i32,
    /// Spikes under the constant mean current.
    pub constant_spikes: u32,
    pub quantization: f32,
    pub deviation: f32,
    pub total: f32,
    /// Variance of the input current over the T steps (population variance).
    pub variance: f32,
    pub tracking: f32,
}

/// The errors of one neuron with ANN activation `activation`. `constant_input` says the
/// current is the same every step by construction (a layer fed by the direct input): its
/// mean is then that value exactly and its variance 0, as the GPU kernel takes it.
pub fn neuron_errors(
    neuron: Neuron,
    currents: &[f32],
    activation: f32,
    threshold: f32,
    v_init: f32,
    constant_input: bool,
) -> NeuronErrors {
    assert!(!currents.is_empty(), "at least one timestep");
    let steps = currents.len() as f32;
    let first = currents[0];
    let (mut shifted_sum, mut shifted_squares) = (0.0f32, 0.0f32);
    for &current in currents {
        shifted_sum += current - first;
        shifted_squares += (current - first) * (current - first);
    }
    let (mean, variance) = if constant_input {
        (first, 0.0)
    } else {
        let shifted_mean = shifted_sum / steps;
        (first + shifted_mean, (shifted_squares / steps - shifted_mean * shifted_mean).max(0.0))
    };
    let (net_spikes, spikes) = spike_count(neuron, currents, threshold, v_init);
    let (constant_spikes, _) = spike_count(Neuron::If, &vec![mean; currents.len()], threshold, v_init);
    let constant_spikes = constant_spikes as u32;
    let value = net_spikes as f32 * threshold / steps;
    let constant = constant_spikes as f32 * threshold / steps;
    NeuronErrors {
        spikes,
        net_spikes,
        constant_spikes,
        quantization: constant - activation.clamp(0.0, threshold),
        deviation: value - constant,
        total: value - activation,
        variance,
        tracking: tracking_error(neuron, currents, activation, threshold, v_init),
    }
}

/// The tracking error of one neuron with `threshold` (see the module documentation), in
/// the kernel's f32 order.
pub fn tracking_error(neuron: Neuron, currents: &[f32], activation: f32, threshold: f32, v_init: f32) -> f32 {
    let steps = currents.len() as f32;
    let mut sum = 0.0f32;
    let mut spikes = 0i32;
    for (t, value) in if_scan(neuron, currents, threshold, v_init).into_iter().enumerate() {
        spikes += (value > 0.0) as i32 - (value < 0.0) as i32;
        let lag = spikes as f32 * threshold - (t + 1) as f32 * activation;
        sum += lag * lag;
    }
    sum / (steps * steps * steps)
}

/// The tracking error of one neuron under each candidate threshold `θ_k`.
pub fn candidate_errors(
    neuron: Neuron,
    currents: &[f32],
    activation: f32,
    candidates: &[f32],
    v_init: f32,
) -> Vec<f32> {
    candidates.iter().map(|&threshold| tracking_error(neuron, currents, activation, threshold, v_init)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_current_has_no_deviation_error() {
        // 0.375 per step for 8 steps from v_init 0.5: v = 0.875, 1.25 s, 0.625, 1.0 s, 0.375,
        // 0.75, 1.125 s, 0.5 → 3 spikes, value 0.375.
        let currents = [0.375f32; 8];
        for constant_input in [false, true] {
            let errors = neuron_errors(Neuron::If, &currents, 0.3125, 1.0, 0.5, constant_input);
            assert_eq!((errors.spikes, errors.constant_spikes), (3, 3));
            assert_eq!(errors.deviation, 0.0);
            assert_eq!(errors.variance, 0.0);
            // Against an ANN activation of 0.3125 the whole error is quantization.
            assert_eq!(errors.quantization, 0.0625);
            assert_eq!(errors.total, errors.quantization);
        }
    }

    #[test]
    fn alternating_current_by_hand() {
        // Mean 0.5, alternating 1.5, -0.5; threshold 1, v_init 0, 4 steps.
        // Actual: v = 1.5 → spike (0.5), 0.0, 1.5 → spike (0.5), 0.0: 2 spikes.
        // Constant 0.5: v = 0.5, 1.0 → spike (0), 0.5, 1.0 → spike: 2 spikes. Deviation 0.
        let errors = neuron_errors(Neuron::If, &[1.5, -0.5, 1.5, -0.5], 0.5, 1.0, 0.0, false);
        assert_eq!((errors.spikes, errors.constant_spikes), (2, 2));
        assert_eq!(errors.deviation, 0.0);
        assert_eq!(errors.variance, 1.0);
        // Starting low instead: -0.5, 1.5, ...: v = -0.5, 1.0 → spike (0), -0.5, 1.0 → spike:
        // 2 spikes again. With 3 steps (-0.5, 1.5, -0.5; mean 1/6): actual 1 spike,
        // constant 1/6 never reaches 1 in 3 steps: 0 spikes → deviation +1/3.
        let errors = neuron_errors(Neuron::If, &[-0.5, 1.5, -0.5], 1.0 / 6.0, 1.0, 0.0, false);
        assert_eq!((errors.spikes, errors.constant_spikes), (1, 0));
        assert!((errors.deviation - 1.0 / 3.0).abs() < 1e-6);
        // Quantization: 0 spikes for an activation of 1/6.
        assert!((errors.quantization + 1.0 / 6.0).abs() < 1e-6);
        // A current that arrives late: 0, 0, 0, 2 (mean 0.5), threshold 1, v_init 0.5.
        // Actual: 0.5, 0.5, 0.5, 2.5 → one spike (at most one per step) → value 0.25.
        // Constant 0.5: 1.0 s, 0.5, 1.0 s, 0.5 → 2 spikes → 0.5. Deviation −0.25.
        let errors = neuron_errors(Neuron::If, &[0.0, 0.0, 0.0, 2.0], 0.5, 1.0, 0.5, false);
        assert_eq!((errors.spikes, errors.constant_spikes), (1, 2));
        assert_eq!(errors.deviation, -0.25);
        assert_eq!(errors.quantization, 0.0);
        assert_eq!(errors.variance, 0.75);
    }

    #[test]
    fn a_signed_neuron_takes_back_what_a_burst_gave_too_early() {
        // 2.0 then -0.5 three times (mean 0.125), threshold 1, v_init 0.5, activation 0.125.
        // Plain: v 2.5 s (1.5), 1.0 s (0), -0.5, -1.0: 2 spikes, value 0.5.
        // Signed: 2.5 s, 1.0 s (0), -0.5 → -1 (0.5), 0.0: net 1, 3 spikes, value 0.25.
        // Constant 0.125: 0.625, 0.75, 0.875, 1.0 s: 1 spike, value 0.25 for both.
        let currents = [2.0, -0.5, -0.5, -0.5];
        let plain = neuron_errors(Neuron::If, &currents, 0.125, 1.0, 0.5, false);
        let signed = neuron_errors(Neuron::SignedIf, &currents, 0.125, 1.0, 0.5, false);
        assert_eq!((plain.spikes, plain.net_spikes, plain.constant_spikes), (2, 2, 1));
        assert_eq!((signed.spikes, signed.net_spikes, signed.constant_spikes), (3, 1, 1));
        assert_eq!((plain.deviation, signed.deviation), (0.25, 0.0));
        // Tracking: S = 1, 2, 2, 2 against t/8 (plain), 1, 2, 1, 1 (signed).
        let lag =
            |s: [f32; 4]| s.iter().enumerate().map(|(t, s)| (s - (t + 1) as f32 * 0.125).powi(2)).sum::<f32>() / 64.0;
        assert_eq!(plain.tracking, lag([1.0, 2.0, 2.0, 2.0]));
        assert_eq!(signed.tracking, lag([1.0, 2.0, 1.0, 1.0]));
    }

    #[test]
    fn candidates_score_the_tracking_of_each_threshold() {
        // 0.25 per step, 4 steps, v_init 0.5, ANN activation 0.25 (target t × 0.25).
        // Threshold 1: v 0.75, 1.0 s, 0.25, 0.5 → S = 0, 1, 1, 1; S θ − t a = −0.25, 0.5,
        // 0.25, 0 → Σ² = 0.375, / 4³ → 0.005859375 although the final count is exact.
        // Threshold 0.125 spikes every step: S θ − t a = −0.125 t → Σ² = 0.46875, / 64.
        let errors = candidate_errors(Neuron::If, &[0.25; 4], 0.25, &[1.0, 0.125], 0.5);
        assert_eq!(errors, [0.005859375, 0.0073242188]);
        // A steady output that matches at every step scores 0: threshold 0.25, v_init 0.
        assert_eq!(candidate_errors(Neuron::If, &[0.25; 4], 0.25, &[0.25], 0.0), [0.0]);
        let errors = neuron_errors(Neuron::If, &[0.25; 4], 0.25, 1.0, 0.5, false);
        assert_eq!(errors.tracking, 0.005859375);
        assert_eq!(errors.total, 0.0);
    }
}
