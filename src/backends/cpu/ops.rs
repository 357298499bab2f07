//! The CPU backend's other operations over NHWC samples: layout changes, per-channel
//! affine maps, additions, option-A shortcuts, pooling, linear layers and the IF scan.
//! Each sums in the order of its [`crate::reference::ops`] counterpart where the order is
//! observable (pooling, linear layers, the IF update), so those match it bit for bit.

use multiversion::multiversion;
use rayon::prelude::*;

use crate::convert::neuron::Neuron;
use crate::model::graph::{Linear, Pool2d, Shape};

/// Samples at or below which element-wise work stays on the calling thread.
const PARALLEL_MIN_VALUES: usize = 1 << 14;

/// NCHW images (`samples × shape`) to NHWC.
pub fn to_nhwc(input: &[f32], shape: Shape, samples: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; input.len()];
    let plane = shape.plane();
    for (image, target) in
        input.chunks_exact(shape.len().max(1)).zip(out.chunks_exact_mut(shape.len().max(1))).take(samples)
    {
        for (c, channel) in image.chunks_exact(plane.max(1)).enumerate() {
            for (p, &v) in channel.iter().enumerate() {
                target[p * shape.channels + c] = v;
            }
        }
    }
    out
}

/// NHWC values (`samples × shape`) to NCHW.
pub fn to_nchw(input: &[f32], shape: Shape, samples: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; input.len()];
    let plane = shape.plane();
    for (image, target) in
        input.chunks_exact(shape.len().max(1)).zip(out.chunks_exact_mut(shape.len().max(1))).take(samples)
    {
        for (p, pixel) in image.chunks_exact(shape.channels.max(1)).enumerate() {
            for (c, &v) in pixel.iter().enumerate() {
                target[c * plane + p] = v;
            }
        }
    }
    out
}

/// `scale[c] · x + shift[c]` for every value of channel `c` (NHWC: channel innermost).
pub fn affine(scale: &[f32], shift: &[f32], input: &[f32]) -> Vec<f32> {
    let channels = scale.len();
    let mut out = vec![0.0f32; input.len()];
    out.par_chunks_mut(channels * 1024).zip(input.par_chunks(channels * 1024)).for_each(|(out, input)| {
        for (out, input) in out.chunks_exact_mut(channels).zip(input.chunks_exact(channels)) {
            for c in 0..channels {
                out[c] = input[c] * scale[c] + shift[c];
            }
        }
    });
    out
}

/// In place ReLU.
pub fn relu(values: &mut [f32]) {
    values.par_chunks_mut(PARALLEL_MIN_VALUES).for_each(|chunk| chunk.iter_mut().for_each(|v| *v = v.max(0.0)));
}

/// `a + b` element-wise, where `b` may hold one sample for every `repeat` samples of `a`
/// (a value constant over timesteps added to one that is not: `a` is `[images][T][len]`,
/// `b` `[images][len]`); `repeat = 1` for equal lengths.
pub fn add(a: &[f32], b: &[f32], len: usize, repeat: usize) -> Vec<f32> {
    assert_eq!(a.len(), b.len() * repeat, "add operand lengths");
    let mut out = vec![0.0f32; a.len()];
    out.par_chunks_mut(len.max(1)).zip(a.par_chunks(len.max(1))).enumerate().for_each(|(sample, (out, a))| {
        let b = &b[(sample / repeat) * len..][..len];
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x + y;
        }
    });
    out
}

/// Option-A shortcut per sample: every `stride`-th pixel, its channels placed after
/// `pad_before` zero channels.
pub fn shortcut_a(
    input: &[f32],
    in_shape: Shape,
    samples: usize,
    stride: usize,
    pad_before: usize,
    out_shape: Shape,
) -> Vec<f32> {
    let mut out = vec![0.0f32; samples * out_shape.len()];
    let cin = in_shape.channels;
    out.par_chunks_mut(out_shape.len().max(1)).zip(input.par_chunks(in_shape.len().max(1))).for_each(|(out, input)| {
        for y in 0..out_shape.height {
            for x in 0..out_shape.width {
                let src = &input[((y * stride) * in_shape.width + x * stride) * cin..][..cin];
                out[(y * out_shape.width + x) * out_shape.channels + pad_before..][..cin].copy_from_slice(src);
            }
        }
    });
    out
}

/// Mean of each channel over the plane, per sample (`samples × channels`); sums each
/// channel's values in row-major pixel order, as the reference does.
pub fn global_avg_pool(input: &[f32], shape: Shape, samples: usize) -> Vec<f32> {
    let channels = shape.channels;
    let mut out = vec![0.0f32; samples * channels];
    out.par_chunks_mut(channels.max(1)).zip(input.par_chunks(shape.len().max(1))).for_each(|(out, input)| {
        out.fill(0.0);
        for pixel in input.chunks_exact(channels) {
            for (sum, &v) in out.iter_mut().zip(pixel) {
                *sum += v;
            }
        }
        let plane = shape.plane() as f32;
        out.iter_mut().for_each(|v| *v /= plane);
    });
    out
}

/// Calls `visit(output pixel, input pixels of its window in (y, x) order)` for every
/// output pixel of `pool` over one NHWC sample of `in_shape` (pixel = `y · W + x`).
fn for_each_window(pool: &Pool2d, in_shape: Shape, out_shape: Shape, mut visit: impl FnMut(usize, &[usize])) {
    let mut window = Vec::with_capacity(pool.kernel * pool.kernel);
    for oy in 0..out_shape.height {
        for ox in 0..out_shape.width {
            window.clear();
            for y in pool.window(oy, in_shape.height) {
                window.extend(pool.window(ox, in_shape.width).map(|x| y * in_shape.width + x));
            }
            visit(oy * out_shape.width + ox, &window);
        }
    }
}

/// Max pooling of `samples` NHWC samples: the largest value of each window (padding never
/// counts), as [`crate::reference::ops::max_pool2d`].
pub fn max_pool(pool: &Pool2d, input: &[f32], in_shape: Shape, out_shape: Shape, samples: usize) -> Vec<f32> {
    let channels = in_shape.channels;
    let mut out = vec![0.0f32; samples * out_shape.len()];
    out.par_chunks_mut(out_shape.len().max(1)).zip(input.par_chunks(in_shape.len().max(1))).for_each(|(out, input)| {
        for_each_window(pool, in_shape, out_shape, |o, window| {
            let out = &mut out[o * channels..(o + 1) * channels];
            out.fill(f32::NEG_INFINITY);
            for &pixel in window {
                for (max, &v) in out.iter_mut().zip(&input[pixel * channels..(pixel + 1) * channels]) {
                    *max = max.max(v);
                }
            }
        });
    });
    out
}

/// Average pooling of `samples` NHWC samples: each window's sum in `(y, x)` order from 0,
/// divided by `kernel²` (padding counts as zeros), as [`crate::reference::ops::avg_pool2d`].
pub fn avg_pool(pool: &Pool2d, input: &[f32], in_shape: Shape, out_shape: Shape, samples: usize) -> Vec<f32> {
    let channels = in_shape.channels;
    let divisor = (pool.kernel * pool.kernel) as f32;
    let mut out = vec![0.0f32; samples * out_shape.len()];
    out.par_chunks_mut(out_shape.len().max(1)).zip(input.par_chunks(in_shape.len().max(1))).for_each(|(out, input)| {
        for_each_window(pool, in_shape, out_shape, |o, window| {
            let out = &mut out[o * channels..(o + 1) * channels];
            out.fill(0.0);
            for &pixel in window {
                for (sum, &v) in out.iter_mut().zip(&input[pixel * channels..(pixel + 1) * channels]) {
                    *sum += v;
                }
            }
            out.iter_mut().for_each(|v| *v /= divisor);
        });
    });
    out
}

/// The spiking network's gated max pool over all timesteps of `images` images: `input` is
/// `[images][T][in_shape]` NHWC; every input's value is summed over the steps (f32, step
/// order), and at each step each window passes the current value of its input with the
/// largest sum so far (the first in `(y, x)` order on ties), as
/// [`crate::reference::ops::gated_max_pool2d_step`] step after step. Returns
/// `[images][T][out_shape]`.
pub fn gated_max_pool(
    pool: &Pool2d,
    input: &[f32],
    in_shape: Shape,
    out_shape: Shape,
    images: usize,
    timesteps: usize,
) -> Vec<f32> {
    let channels = in_shape.channels;
    let (in_len, out_len) = (in_shape.len(), out_shape.len());
    assert_eq!(input.len(), images * timesteps * in_len, "gated max pool input length");
    let mut out = vec![0.0f32; images * timesteps * out_len];
    out.par_chunks_mut((timesteps * out_len).max(1)).zip(input.par_chunks((timesteps * in_len).max(1))).for_each(
        |(out, input)| {
            let mut sums = vec![0.0f32; in_len];
            for (out, input) in out.chunks_exact_mut(out_len.max(1)).zip(input.chunks_exact(in_len.max(1))) {
                for (sum, &v) in sums.iter_mut().zip(input) {
                    *sum += v;
                }
                for_each_window(pool, in_shape, out_shape, |o, window| {
                    for c in 0..channels {
                        let mut best = window[0] * channels + c;
                        for &pixel in &window[1..] {
                            let i = pixel * channels + c;
                            if sums[i] > sums[best] {
                                best = i;
                            }
                        }
                        out[o * channels + c] = input[best];
                    }
                });
            }
        },
    );
    out
}

/// A linear layer lowered for NHWC input: its weight columns permuted from PyTorch's
/// `C·H·W` flattening to the NHWC order (the identity after global pooling).
#[derive(Clone, Debug)]
pub struct LinearWeights {
    pub in_features: usize,
    pub out_features: usize,
    /// `out_features × in_features`, columns in NHWC order.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl LinearWeights {
    pub fn new(layer: &Linear, in_shape: Shape) -> Self {
        let (plane, channels) = (in_shape.plane(), in_shape.channels);
        let mut weight = vec![0.0f32; layer.weight.len()];
        for o in 0..layer.out_features {
            for c in 0..channels {
                for p in 0..plane {
                    weight[o * layer.in_features + p * channels + c] =
                        layer.weight[o * layer.in_features + c * plane + p];
                }
            }
        }
        Self { in_features: layer.in_features, out_features: layer.out_features, weight, bias: layer.bias.clone() }
    }
}

/// Linear layer per sample (`samples × out_features`): each output a dot product summed
/// in input order, each product rounded, then the bias: the reference's arithmetic.
pub fn linear(layer: &LinearWeights, input: &[f32], samples: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; samples * layer.out_features];
    out.par_chunks_mut(layer.out_features.max(1)).zip(input.par_chunks(layer.in_features.max(1))).for_each(
        |(out, x)| {
            for (o, value) in out.iter_mut().enumerate() {
                let w = &layer.weight[o * layer.in_features..(o + 1) * layer.in_features];
                let dot: f32 = w.iter().zip(x).map(|(a, b)| a * b).sum();
                *value = dot + layer.bias[o];
            }
        },
    );
    out
}

/// One IF layer's parameters per channel, as the scan reads them.
#[derive(Clone, Debug)]
pub struct IfParams {
    /// Threshold of every channel.
    pub thresholds: Vec<f32>,
    /// Constant current of every channel, added to the input every step.
    pub bias_current: Vec<f32>,
    /// Initial membrane as a fraction of the threshold.
    pub v_init: f32,
    /// The neuron: a signed one also fires −1 ([`Neuron::SignedIf`]).
    pub neuron: Neuron,
}

/// Runs an IF layer over all timesteps of `images` images at once: `current` is
/// `[images][T][neurons]` (or `[images][neurons]` when `constant_current`, the same current
/// every step), NHWC within a sample; writes the spikes as values to `out`
/// (`[images][T][neurons]`, the spike times the threshold: θ, −θ or 0) and returns the
/// number of spikes (of either sign).
///
/// Each neuron runs [`crate::reference::snn::neuron_step`]'s update in the same f32 order:
/// `membrane += current + bias`, spike when `membrane >= threshold`, then subtract it (a
/// signed neuron: else −1 when `membrane < 0` and its net count is positive, then add it).
pub fn if_scan(
    params: &IfParams,
    current: &[f32],
    constant_current: bool,
    images: usize,
    timesteps: usize,
    neurons: usize,
    out: &mut [f32],
) -> u64 {
    let per_image_in = if constant_current { neurons } else { timesteps * neurons };
    assert_eq!(current.len(), images * per_image_in, "IF current length");
    assert_eq!(out.len(), images * timesteps * neurons, "IF output length");
    out.par_chunks_mut((timesteps * neurons).max(1))
        .zip(current.par_chunks(per_image_in.max(1)))
        .map(|(out, current)| scan_image(params, current, constant_current, timesteps, neurons, out))
        .sum()
}

/// `into[i] += other[i]`, where `other` may hold one sample for every `repeat` samples of
/// `into` (see [`add`]): the sum written over an operand nothing reads afterwards.
pub fn add_into(into: &mut [f32], other: &[f32], len: usize, repeat: usize) {
    assert_eq!(into.len(), other.len() * repeat, "add operand lengths");
    into.par_chunks_mut(len.max(1)).enumerate().for_each(|(sample, into)| {
        let other = &other[(sample / repeat) * len..][..len];
        for (x, &y) in into.iter_mut().zip(other) {
            *x += y;
        }
    });
}

/// A neuron's update once its input is integrated (`potential = membrane + current`), as
/// [`crate::reference::snn::neuron_step`] does it: the new membrane and the spike, 1, −1
/// (a signed neuron whose net count `net` is positive, below 0) or 0, as f32. Written
/// without branches on data, so the scans that inline it vectorize.
#[inline(always)]
pub(super) fn fire<const SIGNED: bool>(potential: f32, threshold: f32, net: f32) -> (f32, f32) {
    let fired = potential >= threshold;
    let back = SIGNED & !fired & (potential < 0.0) & (net > 0.0);
    let membrane = if fired {
        potential - threshold
    } else if back {
        potential + threshold
    } else {
        potential
    };
    (
        membrane,
        if fired {
            1.0
        } else if back {
            -1.0
        } else {
            0.0
        },
    )
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn scan_image(
    params: &IfParams,
    current: &[f32],
    constant_current: bool,
    timesteps: usize,
    neurons: usize,
    out: &mut [f32],
) -> u64 {
    // One loop per neuron kind, each compiled for the targets above (inlined into them).
    if params.neuron.signed() {
        scan_image_of::<true>(params, current, constant_current, timesteps, neurons, out)
    } else {
        scan_image_of::<false>(params, current, constant_current, timesteps, neurons, out)
    }
}

#[inline(always)]
fn scan_image_of<const SIGNED: bool>(
    params: &IfParams,
    current: &[f32],
    constant_current: bool,
    timesteps: usize,
    neurons: usize,
    out: &mut [f32],
) -> u64 {
    let channels = params.thresholds.len();
    let thresholds = &params.thresholds[..];
    let bias = &params.bias_current[..];
    let mut membranes: Vec<f32> = (0..neurons).map(|i| params.v_init * thresholds[i % channels]).collect();
    // A signed neuron's positive minus negative spikes so far (exact in f32 up to 2^24 steps).
    let mut net = vec![0.0f32; if SIGNED { neurons } else { 0 }];
    let mut spikes = 0u64;
    for t in 0..timesteps {
        let current = if constant_current { current } else { &current[t * neurons..(t + 1) * neurons] };
        let out = &mut out[t * neurons..(t + 1) * neurons];
        let mut step_spikes = 0u32;
        if SIGNED {
            let state = membranes.chunks_exact_mut(channels).zip(net.chunks_exact_mut(channels));
            for ((membranes, net), (current, out)) in
                state.zip(current.chunks_exact(channels).zip(out.chunks_exact_mut(channels)))
            {
                let lanes =
                    membranes.iter_mut().zip(net.iter_mut()).zip(current).zip(out.iter_mut()).zip(thresholds).zip(bias);
                for (((((membrane, net), &current), out), &threshold), &bias) in lanes {
                    let spike;
                    (*membrane, spike) = fire::<true>(*membrane + (current + bias), threshold, *net);
                    *out = spike * threshold;
                    *net += spike;
                    step_spikes += u32::from(spike != 0.0);
                }
            }
        } else {
            for ((membranes, current), out) in membranes
                .chunks_exact_mut(channels)
                .zip(current.chunks_exact(channels))
                .zip(out.chunks_exact_mut(channels))
            {
                let lanes = membranes.iter_mut().zip(current).zip(out.iter_mut()).zip(thresholds).zip(bias);
                for ((((membrane, &current), out), &threshold), &bias) in lanes {
                    let spike;
                    (*membrane, spike) = fire::<false>(*membrane + (current + bias), threshold, 0.0);
                    *out = spike * threshold;
                    step_spikes += u32::from(spike != 0.0);
                }
            }
        }
        spikes += u64::from(step_spikes);
    }
    spikes
}
