//! What threshold tuning, bias correction and `analyze` measure at one IF layer, on the
//! CPU: every neuron's conversion errors and its tracking error under candidate
//! thresholds, from the layer's input current at every step and the ANN's activation.
//! Per neuron the f32 arithmetic is [`crate::reference::layerwise`]'s, in its order; the
//! per-channel sums are f64. Neurons are processed a pixel at a time with the channels as
//! SIMD lanes (NHWC), images in parallel.

use rayon::prelude::*;

use crate::gpu::layerwise_layers::ERROR_STATS;
use crate::model::graph::Shape;

/// One IF layer's input as a walk reached it.
#[derive(Clone, Copy, Debug)]
pub struct LayerInput<'a> {
    /// The input current without the layer's bias current: `[images][T][neurons]`, or
    /// `[images][neurons]` when `constant` (the same every step), NHWC per sample.
    pub current: &'a [f32],
    pub constant: bool,
    /// The ANN's activation of the layer, `[images][neurons]`.
    pub reference: &'a [f32],
    pub shape: Shape,
    pub images: usize,
    pub timesteps: usize,
}

impl LayerInput<'_> {
    fn per_image(&self) -> usize {
        if self.constant {
            self.shape.len()
        } else {
            self.timesteps * self.shape.len()
        }
    }

    /// Sums `per_pixel`'s per-channel values (`channels × width`) over every pixel of every
    /// image; `per_pixel(image current, activations, t stride, out)` adds one pixel's.
    fn sum_over_pixels(
        &self,
        width: usize,
        per_pixel: impl Fn(&[f32], &[f32], usize, &mut [f64], &mut Scratch) + Sync,
    ) -> Vec<f64> {
        let (neurons, channels) = (self.shape.len(), self.shape.channels);
        let stride = if self.constant { 0 } else { neurons };
        self.current
            .par_chunks(self.per_image().max(1))
            .zip(self.reference.par_chunks(neurons.max(1)))
            .fold(
                || (vec![0.0f64; channels * width], Scratch::new(channels)),
                |(mut sums, mut scratch), (current, reference)| {
                    for pixel in 0..self.shape.plane() {
                        let offset = pixel * channels;
                        per_pixel(
                            &current[offset..],
                            &reference[offset..offset + channels],
                            stride,
                            &mut sums,
                            &mut scratch,
                        );
                    }
                    (sums, scratch)
                },
            )
            .map(|(sums, _)| sums)
            .reduce(
                || vec![0.0f64; channels * width],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                },
            )
    }
}

/// Per-lane state of one pixel's scans.
struct Scratch {
    membrane: Vec<f32>,
    spikes: Vec<u32>,
    tracking: Vec<f32>,
    first: Vec<f32>,
    shifted_sum: Vec<f32>,
    shifted_squares: Vec<f32>,
    mean: Vec<f32>,
    thresholds: Vec<f32>,
}

impl Scratch {
    fn new(channels: usize) -> Self {
        let lanes = || vec![0.0f32; channels];
        Self {
            membrane: lanes(),
            spikes: vec![0; channels],
            tracking: lanes(),
            first: lanes(),
            shifted_sum: lanes(),
            shifted_squares: lanes(),
            mean: lanes(),
            thresholds: lanes(),
        }
    }
}

/// Current of step `t` at one pixel, bias current added (`x + b`, as every IF kernel).
#[inline(always)]
fn step_current(current: &[f32], stride: usize, t: usize, channels: usize) -> &[f32] {
    &current[t * stride..t * stride + channels]
}

/// Runs one pixel's neurons (lanes) for T steps under `thresholds` from `v_init`: leaves
/// spike counts in `spikes` and the tracking error sums `Σ_t (S_t θ − t a)²` in `tracking`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn track(
    current: &[f32],
    stride: usize,
    timesteps: usize,
    bias: &[f32],
    activation: &[f32],
    v_init: f32,
    s: &mut Scratch,
) {
    let channels = bias.len();
    let (membrane, spikes, tracking, thresholds) = (
        &mut s.membrane[..channels],
        &mut s.spikes[..channels],
        &mut s.tracking[..channels],
        &s.thresholds[..channels],
    );
    for c in 0..channels {
        membrane[c] = v_init * thresholds[c];
        spikes[c] = 0;
        tracking[c] = 0.0;
    }
    for t in 0..timesteps {
        let input = step_current(current, stride, t, channels);
        let steps = (t + 1) as f32;
        for c in 0..channels {
            let potential = membrane[c] + (input[c] + bias[c]);
            let fired = potential >= thresholds[c];
            membrane[c] = if fired { potential - thresholds[c] } else { potential };
            spikes[c] += u32::from(fired);
            let lag = spikes[c] as f32 * thresholds[c] - steps * activation[c];
            tracking[c] += lag * lag;
        }
    }
}

/// Per channel, the [`ERROR_STATS`] sums of [`crate::reference::layerwise::neuron_errors`]
/// over the layer's neurons and images, under `thresholds` (one per channel), membranes
/// from `v_init` × the threshold and `bias` (one per channel) added to the current:
/// `channels × ERROR_STATS`, in the order of [`crate::gpu::layerwise_layers::ERROR_STATS`].
pub fn error_sums(input: &LayerInput<'_>, thresholds: &[f32], v_init: f32, bias: &[f32]) -> Vec<f64> {
    let channels = input.shape.channels;
    assert_eq!(thresholds.len(), channels, "one threshold per channel");
    assert_eq!(bias.len(), channels, "one bias current per channel");
    let timesteps = input.timesteps;
    let steps = timesteps as f32;
    let cube = steps * steps * steps;
    input.sum_over_pixels(ERROR_STATS, |current, activation, stride, sums, s| {
        s.thresholds[..channels].copy_from_slice(thresholds);
        // Mean and variance of the biased current, shifted by its first value (the
        // reference's numerically safer form).
        for c in 0..channels {
            s.first[c] = current[c] + bias[c];
            s.shifted_sum[c] = 0.0;
            s.shifted_squares[c] = 0.0;
        }
        if !input.constant {
            for t in 0..timesteps {
                let step = step_current(current, stride, t, channels);
                for c in 0..channels {
                    let shifted = (step[c] + bias[c]) - s.first[c];
                    s.shifted_sum[c] += shifted;
                    s.shifted_squares[c] += shifted * shifted;
                }
            }
        }
        let mut variance = vec![0.0f32; channels];
        for (c, variance) in variance.iter_mut().enumerate() {
            if input.constant {
                s.mean[c] = s.first[c];
            } else {
                let shifted_mean = s.shifted_sum[c] / steps;
                s.mean[c] = s.first[c] + shifted_mean;
                *variance = (s.shifted_squares[c] / steps - shifted_mean * shifted_mean).max(0.0);
            }
        }
        // Spikes under the mean current held constant.
        let mut constant_spikes = vec![0u32; channels];
        for c in 0..channels {
            let mut membrane = v_init * thresholds[c];
            for _ in 0..timesteps {
                membrane += s.mean[c];
                if membrane >= thresholds[c] {
                    membrane -= thresholds[c];
                    constant_spikes[c] += 1;
                }
            }
        }
        track(current, stride, timesteps, bias, activation, v_init, s);
        for c in 0..channels {
            let threshold = thresholds[c];
            let value = s.spikes[c] as f32 * threshold / steps;
            let constant = constant_spikes[c] as f32 * threshold / steps;
            let quantization = constant - activation[c].clamp(0.0, threshold);
            let deviation = value - constant;
            let total = value - activation[c];
            let tracking = s.tracking[c] / cube;
            let stats = [
                quantization.abs(),
                deviation.abs(),
                total.abs(),
                total * total,
                variance[c],
                s.spikes[c] as f32,
                deviation,
                quantization,
                tracking,
                total,
            ];
            for (sum, value) in sums[c * ERROR_STATS..(c + 1) * ERROR_STATS].iter_mut().zip(stats) {
                *sum += f64::from(value);
            }
        }
    })
}

/// Per channel and candidate, the tracking error (see [`crate::reference::layerwise`])
/// summed over the channel's neurons and images: `candidates` holds `per_channel`
/// thresholds for every channel (channel-major), the result `channels × per_channel`.
pub fn candidate_sums(
    input: &LayerInput<'_>,
    candidates: &[f32],
    per_channel: usize,
    v_init: f32,
    bias: &[f32],
) -> Vec<f64> {
    let channels = input.shape.channels;
    assert_eq!(candidates.len(), channels * per_channel, "per_channel candidates for every channel");
    assert_eq!(bias.len(), channels, "one bias current per channel");
    let steps = input.timesteps as f32;
    let cube = steps * steps * steps;
    input.sum_over_pixels(per_channel, |current, activation, stride, sums, s| {
        for k in 0..per_channel {
            for c in 0..channels {
                s.thresholds[c] = candidates[c * per_channel + k];
            }
            track(current, stride, input.timesteps, bias, activation, v_init, s);
            for c in 0..channels {
                sums[c * per_channel + k] += f64::from(s.tracking[c] / cube);
            }
        }
    })
}
