//! What threshold tuning, bias correction and `analyze` measure at one IF layer, on the
//! CPU: every neuron's conversion errors and its tracking error under candidate
//! thresholds, from the layer's input current at every step and the ANN's activation.
//! Per neuron the f32 arithmetic is [`crate::reference::layerwise`]'s, in its order; the
//! per-channel sums are f64. Neurons are processed a pixel at a time with the channels as
//! SIMD lanes (NHWC), images in parallel.

use multiversion::multiversion;
use rayon::prelude::*;

use super::ops::fire;
use crate::convert::neuron::Neuron;
use crate::engine::walk::ERROR_STATS;
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
    /// image; `per_pixel(image current, activations, t stride, out)` adds those of a block
    /// of consecutive pixels (their neurons are consecutive lanes, [`LANES_PER_BLOCK`] or
    /// fewer: lane `l` is channel `l % channels`).
    fn sum_over_pixels(
        &self,
        width: usize,
        per_pixel: impl Fn(&[f32], &[f32], usize, &mut [f64], &mut Scratch) + Sync,
    ) -> Vec<f64> {
        let (neurons, channels) = (self.shape.len(), self.shape.channels);
        let stride = if self.constant { 0 } else { neurons };
        let block = (LANES_PER_BLOCK / channels.max(1)).max(1);
        self.current
            .par_chunks(self.per_image().max(1))
            .zip(self.reference.par_chunks(neurons.max(1)))
            .fold(
                || (vec![0.0f64; channels * width], Scratch::new(block * channels)),
                |(mut sums, mut scratch), (current, reference)| {
                    for first in (0..self.shape.plane()).step_by(block) {
                        let (offset, lanes) = (first * channels, block.min(self.shape.plane() - first) * channels);
                        per_pixel(
                            &current[offset..],
                            &reference[offset..offset + lanes],
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

/// Neurons scanned side by side: whole pixels (all their channels) up to this many lanes,
/// so a scan step is several SIMD registers of work, not one.
const LANES_PER_BLOCK: usize = 256;

/// Per-lane state of one block's scans.
struct Scratch {
    membrane: Vec<f32>,
    /// Net spike counts, positive minus negative (whole numbers, exact in f32 far beyond any T).
    spikes: Vec<f32>,
    /// Spikes of either sign (signed neurons only; for plain ones they are `spikes`).
    events: Vec<f32>,
    tracking: Vec<f32>,
    /// `[T][lanes]`: each step's current with the bias current added, and `(t + 1) a`, the
    /// tracking target; shared by every candidate threshold of a block.
    biased: Vec<f32>,
    targets: Vec<f32>,
    first: Vec<f32>,
    shifted_sum: Vec<f32>,
    shifted_squares: Vec<f32>,
    mean: Vec<f32>,
    thresholds: Vec<f32>,
    bias: Vec<f32>,
}

impl Scratch {
    fn new(channels: usize) -> Self {
        let lanes = || vec![0.0f32; channels];
        Self {
            membrane: lanes(),
            spikes: lanes(),
            events: lanes(),
            biased: Vec::new(),
            targets: Vec::new(),
            tracking: lanes(),
            first: lanes(),
            shifted_sum: lanes(),
            shifted_squares: lanes(),
            mean: lanes(),
            thresholds: lanes(),
            bias: lanes(),
        }
    }
}

/// Current of step `t` at one pixel, bias current added (`x + b`, as every IF kernel).
#[inline(always)]
fn step_current(current: &[f32], stride: usize, t: usize, channels: usize) -> &[f32] {
    &current[t * stride..t * stride + channels]
}

/// Repeats one value per channel over a block's lanes (whole pixels).
fn tile(lanes: &mut [f32], per_channel: &[f32]) {
    for pixel in lanes.chunks_exact_mut(per_channel.len()) {
        pixel.copy_from_slice(per_channel);
    }
}

/// Fills `s.biased` and `s.targets` for a block (see [`Scratch`]): what every scan of the
/// block under any thresholds reads, computed once.
fn prepare(current: &[f32], stride: usize, timesteps: usize, activation: &[f32], s: &mut Scratch) {
    let lanes = activation.len();
    s.biased.clear();
    s.targets.clear();
    for t in 0..timesteps {
        let input = step_current(current, stride, t, lanes);
        s.biased.extend(input.iter().zip(&s.bias).map(|(&input, &bias)| input + bias));
        let steps = (t + 1) as f32;
        s.targets.extend(activation.iter().map(|&activation| steps * activation));
    }
}

/// Runs a prepared block's `lanes` neurons for T steps under `s.thresholds` from `v_init`:
/// leaves net spike counts in `spikes` (and, for signed neurons, spikes of either sign in
/// `events`) and the tracking error sums `Σ_t (S_t θ − t a)²` in `tracking`, each neuron in
/// [`crate::reference::layerwise::tracking_error`]'s f32 order.
/// The hot loop of tuning: compiled for AVX-512 and AVX2 too, chosen at run time.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn track(lanes: usize, timesteps: usize, v_init: f32, neuron: Neuron, s: &mut Scratch) {
    if neuron.signed() {
        track_of::<true>(lanes, timesteps, v_init, s);
    } else {
        track_of::<false>(lanes, timesteps, v_init, s);
    }
}

#[inline(always)]
fn track_of<const SIGNED: bool>(lanes: usize, timesteps: usize, v_init: f32, s: &mut Scratch) {
    let (membrane, spikes, events, tracking, thresholds) = (
        &mut s.membrane[..lanes],
        &mut s.spikes[..lanes],
        &mut s.events[..lanes],
        &mut s.tracking[..lanes],
        &s.thresholds[..lanes],
    );
    for ((membrane, spikes), ((events, tracking), &threshold)) in
        membrane.iter_mut().zip(spikes.iter_mut()).zip(events.iter_mut().zip(tracking.iter_mut()).zip(thresholds))
    {
        *membrane = v_init * threshold;
        *spikes = 0.0;
        *events = 0.0;
        *tracking = 0.0;
    }
    for (biased, targets) in s.biased.chunks_exact(lanes).zip(s.targets.chunks_exact(lanes)).take(timesteps) {
        // Zipped, not indexed: no bounds tests, so the lanes vectorize.
        let state = membrane.iter_mut().zip(spikes.iter_mut()).zip(events.iter_mut()).zip(tracking.iter_mut());
        for ((((membrane, spikes), events), tracking), ((&threshold, &current), &target)) in
            state.zip(thresholds.iter().zip(biased).zip(targets))
        {
            let spike;
            (*membrane, spike) = fire::<SIGNED>(*membrane + current, threshold, *spikes);
            *spikes += spike;
            if SIGNED {
                *events += spike.abs();
            }
            let lag = *spikes * threshold - target;
            *tracking += lag * lag;
        }
    }
}

/// Spikes of each lane's neuron fed its `mean` current every step for `timesteps` steps
/// (the reference's `spike_count` of a constant current), lanes side by side.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn constant_spikes(mean: &[f32], thresholds: &[f32], v_init: f32, timesteps: usize) -> Vec<u32> {
    let mut membranes: Vec<f32> = thresholds.iter().map(|&t| v_init * t).collect();
    let mut spikes = vec![0u32; mean.len()];
    for _ in 0..timesteps {
        for (((membrane, spikes), &mean), &threshold) in membranes.iter_mut().zip(&mut spikes).zip(mean).zip(thresholds)
        {
            let potential = *membrane + mean;
            let fired = potential >= threshold;
            *membrane = if fired { potential - threshold } else { potential };
            *spikes += u32::from(fired);
        }
    }
    spikes
}

/// Per channel, the [`ERROR_STATS`] sums of [`crate::reference::layerwise::neuron_errors`]
/// over the layer's neurons and images, under `thresholds` (one per channel), membranes
/// from `v_init` × the threshold and `bias` (one per channel) added to the current:
/// `channels × ERROR_STATS`, in the order of [`crate::engine::walk::ERROR_STATS`].
pub fn error_sums(input: &LayerInput<'_>, thresholds: &[f32], v_init: f32, neuron: Neuron, bias: &[f32]) -> Vec<f64> {
    let channels = input.shape.channels;
    assert_eq!(thresholds.len(), channels, "one threshold per channel");
    assert_eq!(bias.len(), channels, "one bias current per channel");
    let timesteps = input.timesteps;
    let steps = timesteps as f32;
    let cube = steps * steps * steps;
    input.sum_over_pixels(ERROR_STATS, |current, activation, stride, sums, s| {
        let lanes = activation.len();
        tile(&mut s.thresholds[..lanes], thresholds);
        tile(&mut s.bias[..lanes], bias);
        // Mean and variance of the biased current, shifted by its first value (the
        // reference's numerically safer form).
        for ((first, &current), &bias) in s.first[..lanes].iter_mut().zip(current).zip(&s.bias) {
            *first = current + bias;
        }
        s.shifted_sum[..lanes].fill(0.0);
        s.shifted_squares[..lanes].fill(0.0);
        if !input.constant {
            for t in 0..timesteps {
                let step = step_current(current, stride, t, lanes);
                let sums = s.shifted_sum.iter_mut().zip(s.shifted_squares.iter_mut());
                for (((sum, squares), (&current, &bias)), &first) in sums.zip(step.iter().zip(&s.bias)).zip(&s.first) {
                    let shifted = (current + bias) - first;
                    *sum += shifted;
                    *squares += shifted * shifted;
                }
            }
        }
        let mut variance = vec![0.0f32; lanes];
        for (l, variance) in variance.iter_mut().enumerate() {
            if input.constant {
                s.mean[l] = s.first[l];
            } else {
                let shifted_mean = s.shifted_sum[l] / steps;
                s.mean[l] = s.first[l] + shifted_mean;
                *variance = (s.shifted_squares[l] / steps - shifted_mean * shifted_mean).max(0.0);
            }
        }
        // Spikes under the mean current held constant.
        let constant_spikes = constant_spikes(&s.mean[..lanes], &s.thresholds[..lanes], v_init, timesteps);
        prepare(current, stride, timesteps, activation, s);
        track(lanes, timesteps, v_init, neuron, s);
        for l in 0..lanes {
            let threshold = s.thresholds[l];
            let value = s.spikes[l] * threshold / steps;
            let constant = constant_spikes[l] as f32 * threshold / steps;
            let quantization = constant - activation[l].clamp(0.0, threshold);
            let deviation = value - constant;
            let total = value - activation[l];
            let tracking = s.tracking[l] / cube;
            let stats = [
                quantization.abs(),
                deviation.abs(),
                total.abs(),
                total * total,
                variance[l],
                if neuron.signed() { s.events[l] } else { s.spikes[l] },
                deviation,
                quantization,
                tracking,
                total,
            ];
            let c = l % channels;
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
    neuron: Neuron,
    bias: &[f32],
) -> Vec<f64> {
    let channels = input.shape.channels;
    assert_eq!(candidates.len(), channels * per_channel, "per_channel candidates for every channel");
    assert_eq!(bias.len(), channels, "one bias current per channel");
    let steps = input.timesteps as f32;
    let cube = steps * steps * steps;
    // Candidate k of every channel side by side: `by_candidate[k × channels + c]`.
    let by_candidate: Vec<f32> =
        (0..per_channel).flat_map(|k| (0..channels).map(move |c| candidates[c * per_channel + k])).collect();
    input.sum_over_pixels(per_channel, |current, activation, stride, sums, s| {
        let lanes = activation.len();
        tile(&mut s.bias[..lanes], bias);
        prepare(current, stride, input.timesteps, activation, s);
        for (k, thresholds) in by_candidate.chunks_exact(channels).enumerate() {
            tile(&mut s.thresholds[..lanes], thresholds);
            track(lanes, input.timesteps, v_init, neuron, s);
            for pixel in s.tracking[..lanes].chunks_exact(channels) {
                for (c, &tracking) in pixel.iter().enumerate() {
                    sums[c * per_channel + k] += f64::from(tracking / cube);
                }
            }
        }
    })
}
