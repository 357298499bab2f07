//! Convolutions on the CPU over NHWC samples, with one weight layout for both kernels:
//! row `(ky · k + kx) · C_in + c` of [`ConvWeights::matrix`] holds the weights of input
//! channel `c` at tap `(ky, kx)` for every output channel (contiguous).
//!
//! - [`conv_dense`]: for dense inputs (the image, the ANN forward pass for `ann` and
//!   calibration): a direct convolution whose micro-kernel keeps a block of output pixels ×
//!   all output channels in registers (for 16, 32, 48 or 64 output channels, every CIFAR
//!   ResNet layer), else im2col + GEMM (the `gemm` crate).
//! - [`conv_events`]: event-driven accumulation for sparse inputs (spikes): for every
//!   nonzero input value, add that value times its weight row to each output pixel it
//!   reaches. No work for silent neurons, no multiplies wasted on zeros; the inner loop is
//!   an axpy over the output channels, which `multiversion` compiles for AVX-512, AVX2 and
//!   the baseline and picks at run time.
//!
//! Both compute `bias + Σ w · x` in f32 in one canonical order, the reference's
//! ([`crate::reference::ops::conv2d`]) and the wgpu kernels': starting from the bias, taps
//! in `(ky, kx)` order, input channels innermost. Over spikes ([`ConvWeights::over_spikes`])
//! every term is an exact θ-scaled weight, and the result is the reference's bit for bit;
//! over dense values each term is a fused multiply-add (the ANN forward), or a rounded
//! product then an add as in the reference ([`ConvWeights::rounding_each_product`], the
//! SNN's first conv). (The `gemm` fallback, for other channel counts or CPUs without
//! AVX-512, sums in its own order.) ARCHITECTURE.md, "One arithmetic on every backend".

use std::sync::Arc;

use multiversion::multiversion;
use rayon::prelude::*;

use crate::model::graph::{Conv2d, Shape};

/// A convolution lowered for the CPU kernels, for inputs of one shape.
#[derive(Clone, Debug)]
pub struct ConvWeights {
    pub in_shape: Shape,
    pub out_shape: Shape,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// `kernel² · C_in` rows × `C_out` columns, see the module documentation.
    pub matrix: Vec<f32>,
    /// One value per output channel (zeros where the convolution has none).
    pub bias: Vec<f32>,
    /// Whether the input is spikes: read as 0 or 1, with `matrix` already multiplied by
    /// each input channel's threshold (see [`ConvWeights::over_spikes`]).
    pub spike_input: bool,
    /// Whether [`conv_dense`] fuses each multiply-add (fast; the ANN forward) or rounds
    /// each product before adding it, as the reference does (the SNN simulation, see
    /// [`ConvWeights::rounding_each_product`]).
    pub fused: bool,
    /// For every input pixel, the output pixels it reaches and through which tap:
    /// `(tap offset into matrix, output value offset)`, what the event kernels scatter to.
    reached: Arc<Vec<Vec<(u32, u32)>>>,
}

impl ConvWeights {
    /// Lowers `conv` (OIHW weights) for inputs of `in_shape` producing `out_shape`.
    pub fn new(conv: &Conv2d, in_shape: Shape, out_shape: Shape) -> Self {
        let (k, cin, cout) = (conv.kernel, conv.in_channels, conv.out_channels);
        let mut matrix = vec![0.0f32; k * k * cin * cout];
        for o in 0..cout {
            for c in 0..cin {
                for ky in 0..k {
                    for kx in 0..k {
                        matrix[((ky * k + kx) * cin + c) * cout + o] = conv.weight[((o * cin + c) * k + ky) * k + kx];
                    }
                }
            }
        }
        // Output o reads input o·stride + tap − padding: the (tap, output) pairs of input i.
        let reaching = |input: usize, output: usize| -> Vec<(usize, usize)> {
            (0..k)
                .filter_map(|tap| {
                    let shifted = (input + conv.padding).checked_sub(tap)?;
                    (shifted % conv.stride == 0 && shifted / conv.stride < output)
                        .then_some((tap, shifted / conv.stride))
                })
                .collect()
        };
        let mut reached = Vec::with_capacity(in_shape.plane());
        for iy in 0..in_shape.height {
            for ix in 0..in_shape.width {
                let mut pairs = Vec::new();
                for (ky, oy) in reaching(iy, out_shape.height) {
                    for (kx, ox) in reaching(ix, out_shape.width) {
                        let tap = ((ky * k + kx) * cin * cout) as u32;
                        pairs.push((tap, ((oy * out_shape.width + ox) * cout) as u32));
                    }
                }
                reached.push(pairs);
            }
        }
        Self {
            reached: Arc::new(reached),
            spike_input: false,
            fused: true,
            in_shape,
            out_shape,
            kernel: k,
            stride: conv.stride,
            padding: conv.padding,
            matrix,
            bias: conv.bias.clone().unwrap_or_else(|| vec![0.0; cout]),
        }
    }

    /// This convolution over the spikes of an IF layer with `thresholds` (one per input
    /// channel): every weight multiplied by its input channel's threshold, the value of a
    /// spike there, and the input read as 0 or 1. Each product `w · θ` is then formed once
    /// and every sum adds exact terms, so any summation that keeps the canonical order
    /// gives the same bits whether or not it fuses multiply-adds: the wgpu kernels pack
    /// the same products ([`crate::backends::wgpu::layers::pack_conv_weights`]) and equal these sums
    /// on every driver.
    pub fn over_spikes(&self, thresholds: &[f32]) -> Self {
        let cin = self.in_shape.channels;
        assert_eq!(thresholds.len(), cin, "one threshold per input channel");
        let cout = self.out_shape.channels;
        let mut matrix = self.matrix.clone();
        for (row, weights) in matrix.chunks_exact_mut(cout).enumerate() {
            let threshold = thresholds[row % cin];
            weights.iter_mut().for_each(|w| *w *= threshold);
        }
        Self { matrix, spike_input: true, ..self.clone() }
    }

    /// Copies input values into `dst` as this convolution reads them: spikes as 0, 1 or −1
    /// (their threshold is in the weights), anything else as it is.
    fn read_input(&self, dst: &mut [f32], src: &[f32]) {
        if self.spike_input {
            dst.iter_mut().zip(src).for_each(|(d, &v)| *d = f32::from(u8::from(v != 0.0)).copysign(v));
        } else {
            dst.copy_from_slice(src);
        }
    }

    /// This convolution with each product rounded before it is added, as the reference
    /// (`reference::ops::conv2d`) and a driver that does not fuse multiply-adds
    /// (lavapipe) compute it: what the SNN simulation uses over dense inputs (the image),
    /// so that its spikes are the reference's bit for bit.
    pub fn rounding_each_product(&self) -> Self {
        Self { fused: false, ..self.clone() }
    }

    /// Rows of the weight matrix: `kernel² · C_in`.
    fn depth(&self) -> usize {
        self.kernel * self.kernel * self.in_shape.channels
    }
}

/// Bytes of im2col matrix built at once; larger inputs are processed in groups of samples.
const IM2COL_BYTES: usize = 16 << 20;

/// Values per input and per output sample, after checking `input` and `out` hold `samples`.
fn sample_lengths(w: &ConvWeights, input: &[f32], samples: usize, out: &[f32]) -> (usize, usize) {
    let (in_len, out_len) = (w.in_shape.len(), w.out_shape.len());
    assert_eq!(input.len(), samples * in_len, "conv input length");
    assert_eq!(out.len(), samples * out_len, "conv output length");
    (in_len, out_len)
}

/// Whether [`conv_dense`] sums `w` in the canonical order (its direct kernels: AVX-512 and
/// 16, 32, 48 or 64 output channels), else `gemm` sums in its own. [`conv_events`] always
/// sums in the canonical order.
pub fn sums_in_canonical_order(w: &ConvWeights) -> bool {
    #[cfg(target_arch = "x86_64")]
    if direct::supports(w) {
        return true;
    }
    let _ = w;
    false
}

/// Dense convolution of `samples` NHWC inputs into `out` (`samples × out_shape`, NHWC).
pub fn conv_dense(w: &ConvWeights, input: &[f32], samples: usize, out: &mut [f32]) {
    let (in_len, out_len) = sample_lengths(w, input, samples, out);
    #[cfg(target_arch = "x86_64")]
    if direct::supports(w) {
        out.par_chunks_mut(out_len.max(1))
            .zip(input.par_chunks(in_len.max(1)))
            .for_each_init(Vec::new, |padded, (out, input)| direct::sample(w, input, out, padded));
        return;
    }
    conv_im2col(w, input, samples, out);
}

/// AVX-512 kernels for 16, 32, 48 or 64 output channels (every CIFAR ResNet layer).
///
/// The direct convolution: a micro-kernel that keeps `P` output pixels × all `16 N` output
/// channels in `P × N` registers; per tap and input channel it loads the `N` weight
/// registers once and multiply-adds each pixel's broadcast input value into them.
///
/// The event-driven convolution ([`events`]): [`super::events_sample`]'s loops with the
/// accumulation in `N` registers per output pixel and no bounds tests in the inner loop.
/// Written with `core::arch` intrinsics: no SIMD crate offers AVX-512 with run-time
/// detection on stable Rust (pulp's V4 needs nightly), and the auto-vectorizer turns this
/// loop nest into gathers. The dense kernel fuses its multiply-adds unless the weights
/// ask for one rounding per product (`ConvWeights::fused`); the event kernel's terms are
/// exact over spikes (multiplier 1.0), so fusing does not change them.
#[cfg(target_arch = "x86_64")]
mod direct {
    use std::arch::x86_64::*;

    use super::{ConvWeights, LANES};

    /// Event-driven convolution of one sample, see [`super::events_sample`].
    pub fn events(w: &ConvWeights, input: &[f32], out: &mut [f32], active: &mut Active) {
        // SAFETY: `supports` checked AVX-512F at run time.
        unsafe {
            match w.out_shape.channels / LANES {
                1 => events_n::<1>(w, input, out, active),
                2 => events_n::<2>(w, input, out, active),
                3 => events_n::<3>(w, input, out, active),
                _ => events_n::<4>(w, input, out, active),
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn events_n<const N: usize>(w: &ConvWeights, input: &[f32], out: &mut [f32], active: &mut Active) {
        let cin = w.in_shape.channels;
        let cout = N * LANES;
        let tap_len = cin * cout;
        assert!(w.bias.len() == cout && w.matrix.len() == w.kernel * w.kernel * tap_len);
        assert!(out.len() == w.out_shape.len() && input.len() == w.in_shape.len());
        let mut bias = [_mm512_setzero_ps(); N];
        for (n, lanes) in bias.iter_mut().enumerate() {
            // SAFETY: n·16 + 16 ≤ cout = bias.len() (asserted above).
            *lanes = unsafe { _mm512_loadu_ps(w.bias.as_ptr().add(n * LANES)) };
        }
        for pixel in out.chunks_exact_mut(cout) {
            for (n, lanes) in bias.iter().enumerate() {
                // SAFETY: a pixel holds cout = N·16 values.
                unsafe { _mm512_storeu_ps(pixel.as_mut_ptr().add(n * LANES), *lanes) };
            }
        }
        // Room for a whole register past the last channel: compaction stores 16 lanes.
        active.rows.clear();
        active.rows.extend((0..cin + LANES).map(|c| (c * cout) as u32));
        active.offsets.clear();
        active.offsets.extend((0..cin + LANES).map(|c| (c * cout) as u32));
        active.values.resize(cin + LANES, 0.0);
        let whole = cin / LANES * LANES;
        for iy in 0..w.in_shape.height {
            for ix in 0..w.in_shape.width {
                let values = &input[(iy * w.in_shape.width + ix) * cin..][..cin];
                // The pixel's nonzero channels, compacted 16 at a time in registers
                // (register-to-register compress: its memory form is microcoded on Zen 4).
                let mut count = 0;
                for start in (0..whole).step_by(LANES) {
                    // SAFETY: start + 16 ≤ whole ≤ cin; the stores land below count + 16 ≤ cin + 16.
                    unsafe {
                        let lanes = _mm512_loadu_ps(values.as_ptr().add(start));
                        let mask = _mm512_cmpneq_ps_mask(lanes, _mm512_setzero_ps());
                        let rows = _mm512_loadu_si512(active.offsets.as_ptr().add(start).cast());
                        // Over spikes every nonzero value reads as ±1 (the weights hold θ · w):
                        // 1.0 with the value's sign bit.
                        let values = if w.spike_input {
                            let sign = _mm512_and_si512(_mm512_castps_si512(lanes), _mm512_set1_epi32(i32::MIN));
                            _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_castps_si512(_mm512_set1_ps(1.0))))
                        } else {
                            lanes
                        };
                        _mm512_storeu_ps(active.values.as_mut_ptr().add(count), _mm512_maskz_compress_ps(mask, values));
                        _mm512_storeu_si512(
                            active.rows.as_mut_ptr().add(count).cast(),
                            _mm512_maskz_compress_epi32(mask, rows),
                        );
                        count += mask.count_ones() as usize;
                    }
                }
                for (c, &value) in values.iter().enumerate().skip(whole) {
                    active.values[count] = if w.spike_input { 1.0f32.copysign(value) } else { value };
                    active.rows[count] = (c * cout) as u32;
                    count += usize::from(value != 0.0);
                }
                if count == 0 {
                    continue;
                }
                let (rows, nonzero) = (&active.rows[..count], &active.values[..count]);
                for &(tap, target) in &w.reached[iy * w.in_shape.width + ix] {
                    let weights = w.matrix.as_ptr().add(tap as usize);
                    let target = out.as_mut_ptr().add(target as usize);
                    let mut acc = [_mm512_setzero_ps(); N];
                    for (n, lanes) in acc.iter_mut().enumerate() {
                        // SAFETY: `reached` names output pixels of this output (N·16 channels each)
                        // and taps of this matrix.
                        *lanes = unsafe { _mm512_loadu_ps(target.add(n * LANES)) };
                    }
                    for (&row, &value) in rows.iter().zip(nonzero) {
                        let value = _mm512_set1_ps(value);
                        for (n, lanes) in acc.iter_mut().enumerate() {
                            // SAFETY: row = c·cout with c < cin: inside this tap's cin × cout weights.
                            let weight = unsafe { _mm512_loadu_ps(weights.add(row as usize + n * LANES)) };
                            *lanes = _mm512_fmadd_ps(value, weight, *lanes);
                        }
                    }
                    for (n, lanes) in acc.iter().enumerate() {
                        // SAFETY: as the loads above.
                        unsafe { _mm512_storeu_ps(target.add(n * LANES), *lanes) };
                    }
                }
            }
        }
    }

    /// Scratch of [`events`]: one pixel's nonzero channels as weight-row offsets and values,
    /// and every channel's row offset.
    #[derive(Default)]
    pub struct Active {
        rows: Vec<u32>,
        values: Vec<f32>,
        offsets: Vec<u32>,
    }

    /// Whether the kernels cover `w` here: AVX-512 present, 16/32/48/64 output channels.
    pub fn supports(w: &ConvWeights) -> bool {
        matches!(w.out_shape.channels, 16 | 32 | 48 | 64) && std::arch::is_x86_feature_detected!("avx512f")
    }

    /// One sample: the input zero-padded once (so no tap needs a bounds test), then every
    /// output row in blocks of pixels.
    pub fn sample(w: &ConvWeights, input: &[f32], out: &mut [f32], padded: &mut Vec<f32>) {
        let cin = w.in_shape.channels;
        let (pad_h, pad_w) = (w.in_shape.height + 2 * w.padding, w.in_shape.width + 2 * w.padding);
        padded.clear();
        padded.resize(pad_h * pad_w * cin, 0.0);
        for y in 0..w.in_shape.height {
            let src = &input[y * w.in_shape.width * cin..(y + 1) * w.in_shape.width * cin];
            let start = ((y + w.padding) * pad_w + w.padding) * cin;
            w.read_input(&mut padded[start..start + src.len()], src);
        }
        // SAFETY: `supports` checked AVX-512F at run time.
        unsafe {
            match (w.out_shape.channels / LANES, w.fused) {
                (1, true) => rows::<8, 1, true>(w, padded, pad_w, out),
                (2, true) => rows::<6, 2, true>(w, padded, pad_w, out),
                (3, true) => rows::<4, 3, true>(w, padded, pad_w, out),
                (_, true) => rows::<4, 4, true>(w, padded, pad_w, out),
                (1, false) => rows::<8, 1, false>(w, padded, pad_w, out),
                (2, false) => rows::<6, 2, false>(w, padded, pad_w, out),
                (3, false) => rows::<4, 3, false>(w, padded, pad_w, out),
                (_, false) => rows::<4, 4, false>(w, padded, pad_w, out),
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn rows<const P: usize, const N: usize, const FUSED: bool>(
        w: &ConvWeights,
        padded: &[f32],
        pad_w: usize,
        out: &mut [f32],
    ) {
        let width = w.out_shape.width;
        for oy in 0..w.out_shape.height {
            let mut ox = 0;
            while ox + P <= width {
                block::<P, N, FUSED>(w, padded, pad_w, oy, ox, out);
                ox += P;
            }
            while ox < width {
                block::<1, N, FUSED>(w, padded, pad_w, oy, ox, out);
                ox += 1;
            }
        }
    }

    /// Output pixels `(oy, ox..ox + P)`, all channels.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block<const P: usize, const N: usize, const FUSED: bool>(
        w: &ConvWeights,
        padded: &[f32],
        pad_w: usize,
        oy: usize,
        ox: usize,
        out: &mut [f32],
    ) {
        let cin = w.in_shape.channels;
        let cout = N * LANES;
        let taps = w.kernel * w.kernel;
        assert!(w.bias.len() == cout && w.matrix.len() == taps * cin * cout);
        let last_read = ((oy * w.stride + w.kernel - 1) * pad_w + (ox + P - 1) * w.stride + w.kernel - 1) * cin + cin;
        assert!(last_read <= padded.len(), "padded input covers every tap");
        assert!((oy * w.out_shape.width + ox + P) * cout <= out.len(), "output block inside the sample");
        let mut acc = [[_mm512_setzero_ps(); N]; P];
        for pixel in acc.iter_mut() {
            for (n, lanes) in pixel.iter_mut().enumerate() {
                // SAFETY: n·16 + 16 ≤ cout = bias.len() (asserted above).
                *lanes = unsafe { _mm512_loadu_ps(w.bias.as_ptr().add(n * LANES)) };
            }
        }
        for ky in 0..w.kernel {
            for kx in 0..w.kernel {
                let weights = w.matrix.as_ptr().add((ky * w.kernel + kx) * cin * cout);
                let row = (oy * w.stride + ky) * pad_w;
                let mut bases = [0usize; P];
                for (p, base) in bases.iter_mut().enumerate() {
                    *base = (row + (ox + p) * w.stride + kx) * cin;
                }
                for c in 0..cin {
                    let mut weight = [_mm512_setzero_ps(); N];
                    for (n, lanes) in weight.iter_mut().enumerate() {
                        // SAFETY: tap · cin · cout + c · cout + n · 16 + 16 ≤ matrix.len().
                        *lanes = unsafe { _mm512_loadu_ps(weights.add(c * cout + n * LANES)) };
                    }
                    for (p, pixel) in acc.iter_mut().enumerate() {
                        // SAFETY: bases[p] + c < last_read ≤ padded.len() (asserted above).
                        let value = _mm512_set1_ps(unsafe { *padded.get_unchecked(bases[p] + c) });
                        for (n, lanes) in pixel.iter_mut().enumerate() {
                            *lanes = if FUSED {
                                _mm512_fmadd_ps(value, weight[n], *lanes)
                            } else {
                                _mm512_add_ps(*lanes, _mm512_mul_ps(value, weight[n]))
                            };
                        }
                    }
                }
            }
        }
        for (p, pixel) in acc.iter().enumerate() {
            let target = out.as_mut_ptr().add((oy * w.out_shape.width + ox + p) * cout);
            for (n, lanes) in pixel.iter().enumerate() {
                // SAFETY: inside the output block (asserted above).
                unsafe { _mm512_storeu_ps(target.add(n * LANES), *lanes) };
            }
        }
    }
}

/// Dense convolution as im2col + GEMM, for output channel counts the direct kernel does
/// not cover.
fn conv_im2col(w: &ConvWeights, input: &[f32], samples: usize, out: &mut [f32]) {
    let (in_len, out_len) = (w.in_shape.len(), w.out_shape.len());
    let pixels = w.out_shape.plane();
    let depth = w.depth();
    let cout = w.out_shape.channels;
    let group = (IM2COL_BYTES / (4 * pixels * depth).max(1)).clamp(1, samples.max(1));
    let mut columns = vec![0.0f32; group * pixels * depth];
    for first in (0..samples).step_by(group) {
        let count = group.min(samples - first);
        let rows = count * pixels;
        let columns = &mut columns[..rows * depth];
        columns.par_chunks_mut(depth).enumerate().for_each(|(row, column)| {
            let sample = first + row / pixels;
            im2col_row(w, &input[sample * in_len..(sample + 1) * in_len], row % pixels, column);
        });
        let dst = &mut out[first * out_len..(first + count) * out_len];
        dst.par_chunks_mut(cout).for_each(|pixel| pixel.copy_from_slice(&w.bias));
        // SAFETY: `dst` is rows × cout (row stride cout), `columns` rows × depth (row
        // stride depth), `matrix` depth × cout (row stride cout): every index gemm forms
        // from these sizes and strides lies inside its slice, and `dst` aliases neither.
        unsafe {
            gemm::gemm(
                rows,
                cout,
                depth,
                dst.as_mut_ptr(),
                1,
                cout as isize,
                true,
                columns.as_ptr(),
                1,
                depth as isize,
                w.matrix.as_ptr(),
                1,
                cout as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(rayon::current_num_threads()),
            );
        }
    }
}

/// Row `pixel` (output pixel index) of one sample's im2col matrix: the input values under
/// each tap, zeros in the padding, in the weight matrix's row order.
fn im2col_row(w: &ConvWeights, input: &[f32], pixel: usize, column: &mut [f32]) {
    let (cin, h, wd) = (w.in_shape.channels, w.in_shape.height, w.in_shape.width);
    let (oy, ox) = (pixel / w.out_shape.width, pixel % w.out_shape.width);
    for ky in 0..w.kernel {
        for kx in 0..w.kernel {
            let dst = &mut column[(ky * w.kernel + kx) * cin..][..cin];
            let iy = (oy * w.stride + ky).checked_sub(w.padding).filter(|&y| y < h);
            let ix = (ox * w.stride + kx).checked_sub(w.padding).filter(|&x| x < wd);
            match (iy, ix) {
                (Some(iy), Some(ix)) => w.read_input(dst, &input[(iy * wd + ix) * cin..][..cin]),
                _ => dst.fill(0.0),
            }
        }
    }
}

/// Event-driven convolution of `samples` NHWC inputs into `out`: work proportional to the
/// nonzero inputs (see the module documentation). Exact for any input, fast when sparse.
pub fn conv_events(w: &ConvWeights, input: &[f32], samples: usize, out: &mut [f32]) {
    let (in_len, out_len) = sample_lengths(w, input, samples, out);
    #[cfg(target_arch = "x86_64")]
    if direct::supports(w) {
        out.par_chunks_mut(out_len.max(1))
            .zip(input.par_chunks(in_len.max(1)))
            .for_each_init(direct::Active::default, |active, (out, input)| direct::events(w, input, out, active));
        return;
    }
    out.par_chunks_mut(out_len.max(1))
        .zip(input.par_chunks(in_len.max(1)))
        .for_each_init(Vec::new, |active, (out, input)| events_sample(w, input, out, active));
}

/// Output channels one accumulator holds: a 512-bit register of f32 (two on AVX2).
const LANES: usize = 16;

/// One sample of [`conv_events`], input-driven: for every input pixel, its nonzero
/// channels are listed once (compacted without branches: spikes are random, a branch per
/// value would mispredict); then for every output pixel the input pixel reaches (one per
/// valid tap), that output's channels are accumulated over the list in registers, `LANES`
/// channels at a time, and stored once per tap.
///
/// (An output-stationary variant — each output pixel gathering its taps' lists — ran
/// ResNet-20 about half as fast here, measured minutes apart (docs/PERFORMANCE.md): at
/// 5–10 % density most taps hold one or two spikes and the per-tap bookkeeping dominates.)
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn events_sample(w: &ConvWeights, input: &[f32], out: &mut [f32], active: &mut Vec<(usize, f32)>) {
    let cin = w.in_shape.channels;
    let cout = w.out_shape.channels;
    let tap_len = cin * cout;
    for pixel in out.chunks_exact_mut(cout) {
        fill_bias(pixel, &w.bias);
    }
    active.resize(cin, (0, 0.0));
    for iy in 0..w.in_shape.height {
        for ix in 0..w.in_shape.width {
            let values = &input[(iy * w.in_shape.width + ix) * cin..][..cin];
            let mut count = 0;
            for (c, &value) in values.iter().enumerate() {
                active[count] = (c * cout, if w.spike_input { 1.0f32.copysign(value) } else { value });
                count += usize::from(value != 0.0);
            }
            if count == 0 {
                continue;
            }
            let active = &active[..count];
            for &(tap, target) in &w.reached[iy * w.in_shape.width + ix] {
                let weights = &w.matrix[tap as usize..tap as usize + tap_len];
                accumulate(&mut out[target as usize..target as usize + cout], weights, active);
            }
        }
    }
}

/// Sets an output pixel to the bias, `LANES` channels at a time (a fixed-size copy the
/// compiler inlines, where a slice copy of run-time length would call `memcpy` per pixel).
#[inline(always)]
fn fill_bias(pixel: &mut [f32], bias: &[f32]) {
    let full = pixel.len() / LANES * LANES;
    for start in (0..full).step_by(LANES) {
        let chunk: &mut [f32; LANES] = (&mut pixel[start..start + LANES]).try_into().expect("LANES outputs");
        chunk.copy_from_slice(&bias[start..start + LANES]);
    }
    pixel[full..].copy_from_slice(&bias[full..]);
}

/// `target[o] += Σ (row, v) in active: v × weights[row + o]`, `LANES` outputs at a time in
/// a local array the compiler keeps in a register.
#[inline(always)]
fn accumulate(target: &mut [f32], weights: &[f32], active: &[(usize, f32)]) {
    let full = target.len() / LANES * LANES;
    for start in (0..full).step_by(LANES) {
        let mut acc = [0.0f32; LANES];
        acc.copy_from_slice(&target[start..start + LANES]);
        for &(row, value) in active {
            let row: &[f32; LANES] = weights[row + start..row + start + LANES].try_into().expect("LANES weights");
            for lane in 0..LANES {
                acc[lane] = value.mul_add(row[lane], acc[lane]);
            }
        }
        target[start..start + LANES].copy_from_slice(&acc);
    }
    for o in full..target.len() {
        let mut acc = target[o];
        for &(row, value) in active {
            acc = value.mul_add(weights[row + o], acc);
        }
        target[o] = acc;
    }
}

/// Fraction of nonzero values: what decides between [`conv_events`] and [`conv_dense`].
pub fn density(values: &[f32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let nonzero = values.par_chunks(1 << 16).map(|chunk| chunk.iter().filter(|&&v| v != 0.0).count()).sum::<usize>();
    nonzero as f64 / values.len() as f64
}
