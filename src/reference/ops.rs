//! Plain CPU versions of each network operation over a batch of NCHW `f32` activations.
//! Sums run in `f32`, each product rounded before it is added; convolutions sum in the
//! canonical order the backends share (bias first, taps in `(ky, kx)` order, input
//! channels innermost), so a backend equals the reference bit for bit wherever its
//! products are exact (spikes times θ-scaled weights, powers of two) or unfused (lavapipe).

use crate::model::graph::{BatchNorm, Conv2d, Linear, Pool2d, Shape};

/// Index of the largest value in each row of `batch × classes` scores (first on ties): the
/// readout rule every backend uses.
pub use crate::engine::argmax_rows;

/// Convolution of a batch: `input` is `batch × in_shape`, returns `batch × out_shape`.
/// Starts from the bias when present; then, in this order, adds `residual` (same shape as
/// the output) and applies ReLU when asked: the fused epilogue the GPU conv kernel implements.
pub fn conv2d(
    conv: &Conv2d,
    input: &[f32],
    in_shape: Shape,
    batch: usize,
    residual: Option<&[f32]>,
    relu: bool,
) -> (Vec<f32>, Shape) {
    let out_h = conv.output_size(in_shape.height).expect("conv output height");
    let out_w = conv.output_size(in_shape.width).expect("conv output width");
    let out_shape = Shape::new(conv.out_channels, out_h, out_w);
    let k = conv.kernel;
    let mut out = vec![0.0f32; batch * out_shape.len()];
    for n in 0..batch {
        let x = &input[n * in_shape.len()..(n + 1) * in_shape.len()];
        for oc in 0..conv.out_channels {
            let bias = conv.bias.as_ref().map_or(0.0, |b| b[oc]);
            for oy in 0..out_h {
                for ox in 0..out_w {
                    // The canonical order of every backend: from the bias, taps in (ky, kx)
                    // order, input channels innermost (each product rounded, then added).
                    let mut acc = bias;
                    for ky in 0..k {
                        let iy = (oy * conv.stride + ky) as isize - conv.padding as isize;
                        if iy < 0 || iy >= in_shape.height as isize {
                            continue;
                        }
                        for kx in 0..k {
                            let ix = (ox * conv.stride + kx) as isize - conv.padding as isize;
                            if ix < 0 || ix >= in_shape.width as isize {
                                continue;
                            }
                            for ic in 0..conv.in_channels {
                                let w = conv.weight[((oc * conv.in_channels + ic) * k + ky) * k + kx];
                                acc += w * x[(ic * in_shape.height + iy as usize) * in_shape.width + ix as usize];
                            }
                        }
                    }
                    let idx = n * out_shape.len() + (oc * out_h + oy) * out_w + ox;
                    let mut v = acc;
                    if let Some(r) = residual {
                        v += r[idx];
                    }
                    out[idx] = if relu { v.max(0.0) } else { v };
                }
            }
        }
    }
    (out, out_shape)
}

/// Inference batch norm applied per channel.
pub fn batch_norm(bn: &BatchNorm, input: &[f32], shape: Shape, batch: usize) -> Vec<f32> {
    let (scale, shift) = bn.scale_shift();
    affine(&scale, &shift, input, shape, batch)
}

/// Per-channel `y = scale[c] * x + shift[c]`.
pub fn affine(scale: &[f32], shift: &[f32], input: &[f32], shape: Shape, batch: usize) -> Vec<f32> {
    let mut out = input.to_vec();
    for n in 0..batch {
        for c in 0..shape.channels {
            let start = n * shape.len() + c * shape.plane();
            for v in &mut out[start..start + shape.plane()] {
                *v = *v * scale[c] + shift[c];
            }
        }
    }
    out
}

pub fn relu(input: &[f32]) -> Vec<f32> {
    input.iter().map(|v| v.max(0.0)).collect()
}

pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// Option-A shortcut: spatial subsampling by `stride`, then zero channels before and after.
pub fn shortcut_a(
    input: &[f32],
    in_shape: Shape,
    batch: usize,
    stride: usize,
    pad_before: usize,
    pad_after: usize,
) -> (Vec<f32>, Shape) {
    let out_shape = Shape::new(
        in_shape.channels + pad_before + pad_after,
        in_shape.height.div_ceil(stride),
        in_shape.width.div_ceil(stride),
    );
    let mut out = vec![0.0f32; batch * out_shape.len()];
    for n in 0..batch {
        for c in 0..in_shape.channels {
            for y in 0..out_shape.height {
                for x in 0..out_shape.width {
                    let src = n * in_shape.len() + (c * in_shape.height + y * stride) * in_shape.width + x * stride;
                    let dst = n * out_shape.len() + ((c + pad_before) * out_shape.height + y) * out_shape.width + x;
                    out[dst] = input[src];
                }
            }
        }
    }
    (out, out_shape)
}

/// Output shape of `pool` over `shape` (the graph checked that it fits).
fn pool_shape(pool: &Pool2d, shape: Shape) -> Shape {
    let out = |size| pool.output_size(size).expect("the graph checked the pool fits");
    Shape::new(shape.channels, out(shape.height), out(shape.width))
}

/// Calls `visit(output index, input indices of its window in (y, x) order)` for every
/// output of `pool` over a batch of NCHW `shape` values.
fn for_each_window(pool: &Pool2d, shape: Shape, batch: usize, mut visit: impl FnMut(usize, &[usize])) {
    let out = pool_shape(pool, shape);
    let mut window = Vec::with_capacity(pool.kernel * pool.kernel);
    for plane in 0..batch * shape.channels {
        for oy in 0..out.height {
            for ox in 0..out.width {
                window.clear();
                for y in pool.window(oy, shape.height) {
                    for x in pool.window(ox, shape.width) {
                        window.push(plane * shape.plane() + y * shape.width + x);
                    }
                }
                visit(plane * out.plane() + oy * out.width + ox, &window);
            }
        }
    }
}

/// Max pooling: the largest value of each window (padding never counts); returns
/// `batch × out_shape`.
pub fn max_pool2d(pool: &Pool2d, input: &[f32], shape: Shape, batch: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; batch * pool_shape(pool, shape).len()];
    for_each_window(pool, shape, batch, |o, window| {
        out[o] = window.iter().map(|&i| input[i]).fold(f32::NEG_INFINITY, f32::max);
    });
    out
}

/// Average pooling: each window's sum (in `(y, x)` order, from 0) divided by `kernel²`,
/// padding counted as zeros; returns `batch × out_shape`.
pub fn avg_pool2d(pool: &Pool2d, input: &[f32], shape: Shape, batch: usize) -> Vec<f32> {
    let divisor = (pool.kernel * pool.kernel) as f32;
    let mut out = vec![0.0f32; batch * pool_shape(pool, shape).len()];
    for_each_window(pool, shape, batch, |o, window| {
        out[o] = window.iter().fold(0.0f32, |sum, &i| sum + input[i]) / divisor;
    });
    out
}

/// One timestep of the spiking network's gated max pooling: adds `input` to `accumulated`
/// (`batch × shape`, every input's sum over the steps so far, this one included), then
/// each window passes the current value of its input with the largest accumulated value
/// (the first in `(y, x)` order on ties). Over spikes this is the gate of Rueckauer et al.
/// (2017): the neuron that has fired most so far passes its spikes. Returns
/// `batch × out_shape`.
pub fn gated_max_pool2d_step(
    pool: &Pool2d,
    input: &[f32],
    accumulated: &mut [f32],
    shape: Shape,
    batch: usize,
) -> Vec<f32> {
    assert_eq!(input.len(), accumulated.len(), "input and accumulator lengths");
    for (sum, &v) in accumulated.iter_mut().zip(input) {
        *sum += v;
    }
    let mut out = vec![0.0f32; batch * pool_shape(pool, shape).len()];
    for_each_window(pool, shape, batch, |o, window| {
        let mut best = window[0];
        for &i in &window[1..] {
            if accumulated[i] > accumulated[best] {
                best = i;
            }
        }
        out[o] = input[best];
    });
    out
}

/// Mean of each channel plane; returns `batch × channels`.
pub fn global_avg_pool(input: &[f32], shape: Shape, batch: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; batch * shape.channels];
    for n in 0..batch {
        for c in 0..shape.channels {
            let start = n * shape.len() + c * shape.plane();
            let sum: f32 = input[start..start + shape.plane()].iter().sum();
            out[n * shape.channels + c] = sum / shape.plane() as f32;
        }
    }
    out
}

/// Fully connected layer over each image's flattened input; returns `batch × out_features`.
pub fn linear(layer: &Linear, input: &[f32], batch: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; batch * layer.out_features];
    for n in 0..batch {
        let x = &input[n * layer.in_features..(n + 1) * layer.in_features];
        for o in 0..layer.out_features {
            let w = &layer.weight[o * layer.in_features..(o + 1) * layer.in_features];
            let dot: f32 = w.iter().zip(x).map(|(a, b)| a * b).sum();
            out[n * layer.out_features + o] = dot + layer.bias[o];
        }
    }
    out
}
