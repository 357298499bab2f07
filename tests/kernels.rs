//! Every GPU kernel against its CPU reference in `reference::ops`, on random inputs of
//! awkward sizes (odd channel counts, batches that are no multiple of any workgroup size,
//! rows that end inside a pixel tile, stride 1 and 2, kernels 1, 3 and 5; pooling windows
//! clipped by padding and by the far edge).
//!
//! Tolerances: sums (conv, linear, pooling) may round differently from the reference's
//! loop order, so they must agree within 1e-4 relative + 1e-5 absolute (weights are scaled
//! by 1/sqrt(fan-in), as in trained networks, which keeps sums near 1). Element-wise kernels
//! that do no arithmetic (ReLU, shortcut) must agree exactly; add and affine within 1 ulp-ish
//! (1e-6 relative), since the GPU may fuse the affine's multiply-add.

mod common;

use common::{gpu, Rng};
use spikeconv::backends::cpu::conv as cpu_conv;
use spikeconv::backends::cpu::ops as cpu_ops;
use spikeconv::backends::wgpu::buffers::{storage_from_f32, storage_zeroed, submit_and_read};
use spikeconv::backends::wgpu::kernels::{record_steps, workgroups_for, MAX_WORKGROUPS_PER_DIMENSION};
use spikeconv::backends::wgpu::layers::{self, conv_kernel, ConvStep, ConvWeights, PoolKind, PoolWindow};
use spikeconv::backends::wgpu::{ConvKernels, GpuContext, GpuStep, Kernel, KernelStrategy, Kernels};
use spikeconv::model::graph::{BatchNorm, Conv2d, Linear, Pool2d, Shape};
use spikeconv::reference::ops;
use wgpu::DeviceType;

/// Runs one step and reads back `len` values of `output`.
fn run(ctx: &GpuContext, step: GpuStep, output: &wgpu::Buffer, len: usize) -> Vec<f32> {
    run_all(ctx, &[step], output, len)
}

/// Runs steps in order in one submission and reads back `len` values of `output`.
fn run_all(ctx: &GpuContext, steps: &[GpuStep], output: &wgpu::Buffer, len: usize) -> Vec<f32> {
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("test") });
    record_steps(&mut encoder, steps);
    submit_and_read(ctx, encoder, output, 0, len).expect("GPU run")
}

fn assert_close(what: &str, gpu: &[f32], reference: &[f32], relative: f32, absolute: f32) {
    assert_eq!(gpu.len(), reference.len(), "{what}: length");
    for (i, (&g, &r)) in gpu.iter().zip(reference).enumerate() {
        let tolerance = relative * r.abs() + absolute;
        assert!((g - r).abs() <= tolerance, "{what}: value {i}: GPU {g} vs reference {r} (tolerance {tolerance})");
    }
}

/// Bit-for-bit equality (`-0.0` and `0.0` count as equal).
fn assert_bits(what: &str, got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    let differing = got.iter().zip(expected).filter(|(g, e)| g != e).count();
    if let Some(i) = got.iter().zip(expected).position(|(g, e)| g != e) {
        panic!("{what}: {differing} of {} values differ, first at {i}: {} vs {}", got.len(), got[i], expected[i]);
    }
}

#[derive(Clone, Copy, Debug)]
struct ConvCase {
    in_channels: usize,
    out_channels: usize,
    height: usize,
    width: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    batch: usize,
    bias: bool,
    residual: bool,
    relu: bool,
}

fn random_conv(rng: &mut Rng, case: &ConvCase) -> Conv2d {
    let fan_in = case.in_channels * case.kernel * case.kernel;
    let bound = 1.0 / (fan_in as f32).sqrt();
    Conv2d {
        out_channels: case.out_channels,
        in_channels: case.in_channels,
        kernel: case.kernel,
        stride: case.stride,
        padding: case.padding,
        weight: rng.vec(case.out_channels * fan_in, -bound, bound),
        bias: case.bias.then(|| rng.vec(case.out_channels, -0.5, 0.5)),
    }
}

/// Checks one conv against the reference; returns the kernels of its steps (none without
/// an adapter).
fn check_conv(case: ConvCase, seed: u64) -> Vec<Kernel> {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return Vec::new() };
    let mut rng = Rng::new(seed);
    let conv = random_conv(&mut rng, &case);
    let in_shape = Shape::new(case.in_channels, case.height, case.width);
    let input = rng.vec(case.batch * in_shape.len(), -1.0, 1.0);
    let out_h = conv.output_size(case.height).unwrap();
    let out_w = conv.output_size(case.width).unwrap();
    let out_len = case.batch * case.out_channels * out_h * out_w;
    let residual = case.residual.then(|| rng.vec(out_len, -1.0, 1.0));
    let (expected, out_shape) = ops::conv2d(&conv, &input, in_shape, case.batch, residual.as_deref(), case.relu);
    assert_eq!(out_shape.len() * case.batch, out_len);

    // The adapter's own kernels, then every other family (a GPU's kernels run on a CPU
    // adapter too): each against the reference.
    let own = ctx.strategy;
    let input_buffer = storage_from_f32(ctx, "input", &input).unwrap();
    let residual_buffer = residual.as_ref().map(|r| storage_from_f32(ctx, "residual", r).unwrap());
    let mut own_kernels = Vec::new();
    for conv_kernels in [own.conv, ConvKernels::UniformWindows, ConvKernels::Direct, ConvKernels::Tiled] {
        let strategy = KernelStrategy { conv: conv_kernels };
        let weights = ConvWeights::upload_for(ctx, &conv, None, strategy).unwrap();
        assert_eq!(weights.output_shape(in_shape), out_shape);
        let output = storage_zeroed(ctx, "output", out_len).unwrap();
        let conv_step = ConvStep {
            in_shape,
            batch: case.batch,
            input: &input_buffer,
            residual: residual_buffer.as_ref(),
            relu: case.relu,
            output: &output,
        };
        let steps = weights.step(ctx, kernels, conv_step).unwrap();
        let got = run_all(ctx, &steps, &output, out_len);
        assert_close(&format!("{case:?}, {strategy:?}"), &got, &expected, 1e-4, 1e-5);
        if own_kernels.is_empty() {
            own_kernels = steps.iter().map(|step| step.kernel).collect();
        }
        if conv_kernels != ConvKernels::UniformWindows {
            // A GPU's families: one dispatch per conv.
            assert_eq!(steps.len(), 1, "{case:?}, {strategy:?}");
        }
    }
    own_kernels
}

/// Checks one conv over spikes (each input 0 or its channel's threshold) in every GPU
/// family against the CPU backend's event-driven and dense kernels and the reference: bit for bit, whether
/// or not the driver fuses multiply-adds (lavapipe does not), since every product is formed
/// once on the host and the sums run in the same order.
fn check_conv_over_spikes(case: ConvCase, seed: u64) {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(seed);
    let conv = random_conv(&mut rng, &case);
    let in_shape = Shape::new(case.in_channels, case.height, case.width);
    let thresholds = rng.vec(case.in_channels, 0.05, 3.0);
    let spikes: Vec<f32> = rng
        .vec(case.batch * in_shape.len(), 0.0, 1.0)
        .iter()
        .enumerate()
        .map(|(i, &u)| if u < 0.2 { thresholds[(i / in_shape.plane()) % case.in_channels] } else { 0.0 })
        .collect();
    let out_shape =
        Shape::new(case.out_channels, conv.output_size(case.height).unwrap(), conv.output_size(case.width).unwrap());
    let out_len = case.batch * out_shape.len();
    let residual = case.residual.then(|| rng.vec(out_len, -1.0, 1.0));

    let cpu_weights = cpu_conv::ConvWeights::new(&conv, in_shape, out_shape).over_spikes(&thresholds);
    let nhwc = cpu_ops::to_nhwc(&spikes, in_shape, case.batch);
    let mut events = vec![0.0f32; out_len];
    cpu_conv::conv_events(&cpu_weights, &nhwc, case.batch, &mut events);
    let mut dense = vec![0.0f32; out_len];
    cpu_conv::conv_dense(&cpu_weights, &nhwc, case.batch, &mut dense);
    let mut expected = cpu_ops::to_nchw(&events, out_shape, case.batch);
    if cpu_conv::sums_in_canonical_order(&cpu_weights) {
        assert_bits(
            &format!("{case:?}: CPU dense against CPU events"),
            &cpu_ops::to_nchw(&dense, out_shape, case.batch),
            &expected,
        );
    }
    for (i, value) in expected.iter_mut().enumerate() {
        if let Some(residual) = &residual {
            *value += residual[i];
        }
        if case.relu {
            *value = value.max(0.0);
        }
    }
    let (reference, _) = ops::conv2d(&conv, &spikes, in_shape, case.batch, residual.as_deref(), case.relu);
    // The reference rounds each product θ · w and sums in the same order: the same bits.
    assert_bits(&format!("{case:?}: CPU over spikes against the reference"), &expected, &reference);

    let input = storage_from_f32(ctx, "spikes", &spikes).unwrap();
    let residual_buffer = residual.as_ref().map(|r| storage_from_f32(ctx, "residual", r).unwrap());
    for family in [ConvKernels::UniformWindows, ConvKernels::Direct, ConvKernels::Tiled] {
        let strategy = KernelStrategy { conv: family };
        let weights = ConvWeights::upload_over_spikes(ctx, &conv, &thresholds, strategy).unwrap();
        let output = storage_zeroed(ctx, "output", out_len).unwrap();
        let conv_step = ConvStep {
            in_shape,
            batch: case.batch,
            input: &input,
            residual: residual_buffer.as_ref(),
            relu: case.relu,
            output: &output,
        };
        let steps = weights.step(ctx, kernels, conv_step).unwrap();
        let got = run_all(ctx, &steps, &output, out_len);
        assert_bits(&format!("{case:?}, {family:?} against the CPU backend"), &got, &expected);
    }
}

#[test]
fn convs_over_spikes_equal_the_cpu_backend_bit_for_bit() {
    let residual_relu = |c: ConvCase| ConvCase { bias: true, residual: true, relu: true, ..c };
    // ResNet shapes (16-64 channels: the CPU's AVX-512 kernels), then awkward ones.
    check_conv_over_spikes(ConvCase { batch: 3, ..residual_relu(case(16, 16, (32, 32), (3, 1, 1))) }, 21);
    check_conv_over_spikes(ConvCase { batch: 2, bias: true, ..case(16, 32, (32, 32), (3, 2, 1)) }, 22);
    check_conv_over_spikes(ConvCase { batch: 2, ..residual_relu(case(64, 64, (8, 8), (3, 1, 1))) }, 23);
    check_conv_over_spikes(ConvCase { batch: 5, ..residual_relu(case(3, 5, (10, 13), (3, 1, 1))) }, 24);
    check_conv_over_spikes(ConvCase { batch: 2, bias: true, ..case(7, 11, (9, 7), (5, 2, 2)) }, 25);
}

/// Asserts that a conv ran as `count` dispatches of the kernel the adapter's strategy picks
/// for a `kernel × kernel` conv of `stride` (nothing without an adapter).
fn assert_kernels(ran: Vec<Kernel>, (kernel, stride): (usize, usize), count: usize) {
    if let Some(common::GpuBackend { ctx, .. }) = gpu() {
        assert_eq!(ran, vec![conv_kernel(kernel, stride, ctx.strategy.conv); count]);
    }
}

fn case(in_channels: usize, out_channels: usize, size: (usize, usize), kernel: (usize, usize, usize)) -> ConvCase {
    ConvCase {
        in_channels,
        out_channels,
        height: size.0,
        width: size.1,
        kernel: kernel.0,
        stride: kernel.1,
        padding: kernel.2,
        batch: 1,
        bias: false,
        residual: false,
        relu: false,
    }
}

#[test]
fn conv3x3_stride1_matches_reference() {
    // Widths 9 and 6 end inside a 4-pixel tile; 17 and 5 channels leave a partial block of 8.
    check_conv(ConvCase { bias: true, ..case(3, 5, (7, 9), (3, 1, 1)) }, 1);
    check_conv(ConvCase { batch: 3, bias: true, residual: true, relu: true, ..case(5, 17, (8, 6), (3, 1, 1)) }, 2);
    check_conv(ConvCase { batch: 2, relu: true, ..case(17, 8, (5, 5), (3, 1, 0)) }, 3);
    check_conv(ConvCase { batch: 2, residual: true, ..case(4, 9, (3, 4), (3, 1, 2)) }, 4);
    // A CIFAR stage-1 layer, several workgroups per image.
    check_conv(ConvCase { batch: 2, bias: true, residual: true, relu: true, ..case(16, 16, (32, 32), (3, 1, 1)) }, 5);
}

#[test]
fn conv_generic_matches_reference() {
    // Stride 2 (the downsampling convs, 3x3 ones through the stride-2 tile kernel), 1x1 and
    // 5x5 kernels (the generic one).
    check_conv(ConvCase { batch: 2, residual: true, ..case(17, 9, (9, 7), (3, 2, 1)) }, 11);
    check_conv(ConvCase { batch: 7, bias: true, relu: true, ..case(4, 3, (5, 6), (1, 1, 0)) }, 12);
    check_conv(ConvCase { bias: true, residual: true, relu: true, ..case(3, 5, (9, 8), (5, 1, 2)) }, 13);
    check_conv(ConvCase { batch: 3, bias: true, ..case(16, 32, (32, 32), (3, 2, 1)) }, 14);
    check_conv(ConvCase { batch: 2, ..case(5, 3, (8, 8), (1, 2, 0)) }, 15);
}

#[test]
fn gpus_get_the_tiled_conv_and_cpu_adapters_uniform_weight_windows() {
    // The strategy chosen for each adapter type (no adapter needed).
    for device_type in [DeviceType::DiscreteGpu, DeviceType::IntegratedGpu, DeviceType::VirtualGpu, DeviceType::Other] {
        assert_eq!(KernelStrategy::for_device_type(device_type).conv, ConvKernels::Tiled, "{device_type:?}");
    }
    assert_eq!(KernelStrategy::for_device_type(DeviceType::Cpu).conv, ConvKernels::UniformWindows);
    // The tiled family runs every conv shape with one kernel; the direct ones by shape.
    assert_eq!(conv_kernel(3, 1, ConvKernels::Tiled), Kernel::ConvTiled);
    assert_eq!(conv_kernel(1, 2, ConvKernels::Tiled), Kernel::ConvTiled);
    assert_eq!(conv_kernel(3, 1, ConvKernels::Direct), Kernel::Conv3x3Stride1Large);
    assert_eq!(conv_kernel(3, 2, ConvKernels::Direct), Kernel::Conv2dLarge);
    assert_eq!(conv_kernel(3, 1, ConvKernels::UniformWindows), Kernel::Conv3x3Stride1);
    assert_eq!(conv_kernel(3, 2, ConvKernels::UniformWindows), Kernel::Conv3x3Stride2);
    assert_eq!("tiled".parse::<ConvKernels>(), Ok(ConvKernels::Tiled));
    assert!("fast".parse::<ConvKernels>().unwrap_err().contains("windows, direct or tiled"));
    // A big batch (over 64 KiB of input; 100 images x 120 pixels: 188 pixel tiles of the
    // tiled kernel, the last one partial) is one dispatch on every family.
    let big = ConvCase { batch: 100, bias: true, residual: true, relu: true, ..case(3, 5, (10, 12), (3, 1, 1)) };
    assert_kernels(check_conv(big, 31), (3, 1), 1);
    // More than 64 output channels and a depth that is not a multiple of 16 (17 x 9).
    check_conv(ConvCase { batch: 3, bias: true, residual: true, ..case(17, 70, (6, 5), (3, 1, 1)) }, 32);
}

#[test]
fn conv3x3_stride2_tiles_match_reference() {
    // Storage input (under 64 KiB): odd sizes, partial channel blocks, tiles over the row end.
    let cases = [
        ConvCase { batch: 7, bias: true, residual: true, relu: true, ..case(5, 17, (11, 13), (3, 2, 1)) },
        ConvCase { batch: 1, ..case(3, 8, (6, 5), (3, 2, 0)) },
        ConvCase { batch: 2, residual: true, ..case(17, 3, (9, 10), (3, 2, 2)) },
    ];
    for (i, case) in cases.into_iter().enumerate() {
        assert_kernels(check_conv(case, 40 + i as u64), (3, 2), 1);
    }
}

#[test]
fn conv_batch_spans_many_workgroups() {
    // 67 images of 5x5 x 2 tiles = 670 items: 11 workgroups of 64, the last one partial.
    check_conv(ConvCase { batch: 67, bias: true, residual: true, relu: true, ..case(3, 5, (5, 5), (3, 1, 1)) }, 21);
    check_conv(ConvCase { batch: 67, bias: true, ..case(3, 5, (5, 5), (3, 2, 1)) }, 22);
}

#[test]
fn conv_weights_beyond_one_uniform_window_match_reference() {
    // 64 x 3 x 3 inputs: 18 KiB per block of 8 channels, 3 blocks per 64 KiB window, so 40
    // output channels (5 blocks) take two dispatches.
    check_conv(ConvCase { batch: 2, bias: true, residual: true, relu: true, ..case(64, 40, (4, 5), (3, 1, 1)) }, 25);
    check_conv(ConvCase { batch: 2, bias: true, ..case(64, 40, (5, 5), (3, 2, 1)) }, 26);
    // 300 x 3 x 3 inputs: one block (84 KiB) exceeds a window, weights stay in storage.
    check_conv(ConvCase { batch: 2, relu: true, ..case(300, 9, (3, 4), (3, 1, 1)) }, 27);
    check_conv(ConvCase { batch: 2, bias: true, ..case(300, 9, (3, 4), (3, 2, 1)) }, 28);
}

#[test]
fn conv_epilogue_applies_batch_norm_before_residual_and_relu() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(31);
    let c = ConvCase { batch: 3, bias: true, residual: true, relu: true, ..case(6, 11, (6, 7), (3, 1, 1)) };
    let conv = random_conv(&mut rng, &c);
    let bn = BatchNorm {
        gamma: rng.vec(11, 0.5, 1.5),
        beta: rng.vec(11, -0.5, 0.5),
        mean: rng.vec(11, -0.5, 0.5),
        var: rng.vec(11, 0.5, 2.0),
        eps: 1e-5,
    };
    let in_shape = Shape::new(6, 6, 7);
    let input = rng.vec(c.batch * in_shape.len(), -1.0, 1.0);
    let (conv_out, out_shape) = ops::conv2d(&conv, &input, in_shape, c.batch, None, false);
    let residual = rng.vec(conv_out.len(), -1.0, 1.0);
    let expected = ops::relu(&ops::add(&ops::batch_norm(&bn, &conv_out, out_shape, c.batch), &residual));

    let (scale, shift) = bn.scale_shift();
    let weights = ConvWeights::upload(ctx, &conv, Some((&scale, &shift))).unwrap();
    let input_buffer = storage_from_f32(ctx, "input", &input).unwrap();
    let residual_buffer = storage_from_f32(ctx, "residual", &residual).unwrap();
    let output = storage_zeroed(ctx, "output", expected.len()).unwrap();
    let conv_step = ConvStep {
        in_shape,
        batch: c.batch,
        input: &input_buffer,
        residual: Some(&residual_buffer),
        relu: true,
        output: &output,
    };
    let steps = weights.step(ctx, kernels, conv_step).unwrap();
    assert_close("conv+bn+add+relu", &run_all(ctx, &steps, &output, expected.len()), &expected, 1e-4, 1e-5);
}

#[test]
fn affine_matches_batch_norm_reference() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(41);
    for (shape, batch, relu) in [(Shape::new(17, 5, 3), 7, false), (Shape::new(3, 1, 1), 1, true)] {
        let c = shape.channels;
        let bn = BatchNorm {
            gamma: rng.vec(c, 0.5, 1.5),
            beta: rng.vec(c, -0.5, 0.5),
            mean: rng.vec(c, -0.5, 0.5),
            var: rng.vec(c, 0.5, 2.0),
            eps: 1e-5,
        };
        let input = rng.vec(batch * shape.len(), -2.0, 2.0);
        let mut expected = ops::batch_norm(&bn, &input, shape, batch);
        if relu {
            expected = ops::relu(&expected);
        }
        let (scale, shift) = bn.scale_shift();
        let params: Vec<f32> = scale.into_iter().chain(shift).collect();
        let params = storage_from_f32(ctx, "scale/shift", &params).unwrap();
        let input = storage_from_f32(ctx, "input", &input).unwrap();
        let output = storage_zeroed(ctx, "output", expected.len()).unwrap();
        let affine = layers::Affine { scale_shift: &params, relu };
        let step = layers::affine_step(ctx, kernels, affine, shape, batch, &input, &output).unwrap();
        assert_close("affine", &run(ctx, step, &output, expected.len()), &expected, 1e-6, 1e-6);
    }
}

#[test]
fn relu_and_add_match_reference() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(51);
    let len = 3 * 257; // not a multiple of the workgroup size
    let a = rng.vec(len, -1.0, 1.0);
    let b = rng.vec(len, -1.0, 1.0);
    let a_buffer = storage_from_f32(ctx, "a", &a).unwrap();
    let b_buffer = storage_from_f32(ctx, "b", &b).unwrap();
    let output = storage_zeroed(ctx, "output", len).unwrap();

    let step = layers::relu_step(ctx, kernels, len, &a_buffer, &output).unwrap();
    assert_eq!(run(ctx, step, &output, len), ops::relu(&a));
    let step = layers::add_step(ctx, kernels, len, false, &a_buffer, &b_buffer, &output).unwrap();
    assert_eq!(run(ctx, step, &output, len), ops::add(&a, &b));
    let step = layers::add_step(ctx, kernels, len, true, &a_buffer, &b_buffer, &output).unwrap();
    assert_eq!(run(ctx, step, &output, len), ops::relu(&ops::add(&a, &b)));
}

#[test]
fn shortcut_a_matches_reference() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(61);
    // Odd sizes subsample to ceil(size / 2), as x[:, :, ::2, ::2] does.
    for (shape, batch, stride, before, after) in
        [(Shape::new(16, 32, 32), 3, 2, 8, 8), (Shape::new(5, 7, 9), 2, 2, 1, 3), (Shape::new(3, 4, 5), 5, 1, 0, 2)]
    {
        let input = rng.vec(batch * shape.len(), -1.0, 1.0);
        let (expected, _) = ops::shortcut_a(&input, shape, batch, stride, before, after);
        let input = storage_from_f32(ctx, "input", &input).unwrap();
        let output = storage_zeroed(ctx, "output", expected.len()).unwrap();
        let shortcut = layers::ShortcutA { stride, pad_before: before, pad_after: after };
        let step = layers::shortcut_a_step(ctx, kernels, shortcut, shape, batch, &input, &output).unwrap();
        assert_eq!(run(ctx, step, &output, expected.len()), expected, "{shape} stride {stride}");
    }
}

#[test]
fn global_avg_pool_and_linear_match_reference() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(71);
    let (shape, batch) = (Shape::new(17, 5, 7), 67);
    let input = rng.vec(batch * shape.len(), -1.0, 1.0);
    let pooled = ops::global_avg_pool(&input, shape, batch);
    let input_buffer = storage_from_f32(ctx, "input", &input).unwrap();
    let pooled_buffer = storage_zeroed(ctx, "pooled", pooled.len()).unwrap();
    let step = layers::global_avg_pool_step(ctx, kernels, shape, batch, &input_buffer, &pooled_buffer).unwrap();
    assert_close("global_avg_pool", &run(ctx, step, &pooled_buffer, pooled.len()), &pooled, 1e-5, 1e-6);

    let layer =
        Linear { in_features: 17, out_features: 10, weight: rng.vec(170, -0.3, 0.3), bias: rng.vec(10, -1.0, 1.0) };
    let expected = ops::linear(&layer, &pooled, batch);
    let weight_bias = layers::upload_linear(ctx, &layer).unwrap();
    let output = storage_zeroed(ctx, "logits", expected.len()).unwrap();
    let linear = layers::LinearShape { in_features: 17, out_features: 10 };
    let step = layers::linear_step(ctx, kernels, &weight_bias, linear, batch, &pooled_buffer, &output).unwrap();
    assert_close("linear", &run(ctx, step, &output, expected.len()), &expected, 1e-5, 1e-6);
}

#[test]
fn workgroup_counts_stay_within_the_dispatch_limit() {
    let max = MAX_WORKGROUPS_PER_DIMENSION as usize;
    assert_eq!(workgroups_for(1, 64, 3).unwrap(), [1, 3, 1]);
    assert_eq!(workgroups_for(0, 64, 1).unwrap(), [1, 1, 1]);
    assert_eq!(workgroups_for(64 * max, 64, 1).unwrap(), [max as u32, 1, 1]);
    let [x, _, z] = workgroups_for(64 * max + 1, 64, 1).unwrap();
    assert_eq!((x as usize, z), (max, 2));
    assert!(workgroups_for(usize::MAX / 2, 1, 1).is_err());
}

#[test]
fn elementwise_kernels_cover_dispatches_split_over_z() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    // More than 65535 workgroups of 256: the flat index continues along z.
    let len = 256 * MAX_WORKGROUPS_PER_DIMENSION as usize + 1000;
    let mut rng = Rng::new(81);
    let input = rng.vec(len, -1.0, 1.0);
    let input_buffer = storage_from_f32(ctx, "input", &input).unwrap();
    let output = storage_zeroed(ctx, "output", len).unwrap();
    let step = layers::relu_step(ctx, kernels, len, &input_buffer, &output).unwrap();
    assert_eq!(step.workgroups[2], 2);
    assert!(run(ctx, step, &output, len) == ops::relu(&input), "relu over a z-split dispatch");
}

/// Runs `kind` pooling of `pool` over `batch` samples of `shape` in `input`.
fn pooled(
    ctx: &GpuContext,
    kernels: &Kernels,
    window: PoolWindow,
    shape: Shape,
    batch: usize,
    input: &[f32],
) -> Vec<f32> {
    let out = |size| window.pool.output_size(size).unwrap();
    let len = batch * shape.channels * out(shape.height) * out(shape.width);
    let input = storage_from_f32(ctx, "pooling input", input).unwrap();
    let output = storage_zeroed(ctx, "pooled", len).unwrap();
    let step = layers::pool_step(ctx, kernels, window, shape, batch, &input, &output).unwrap();
    run(ctx, step, &output, len)
}

/// The reference's gated max over `timesteps` steps of `images` samples each (timestep-major).
fn gated_reference(pool: &Pool2d, input: &[f32], shape: Shape, images: usize, timesteps: usize) -> Vec<f32> {
    let mut sums = vec![0.0; images * shape.len()];
    (0..timesteps)
        .flat_map(|t| {
            let step = &input[t * images * shape.len()..][..images * shape.len()];
            ops::gated_max_pool2d_step(pool, step, &mut sums, shape, images)
        })
        .collect()
}

/// Max and gated max pass input values, so they equal the reference exactly; the average
/// divides the same f32 sum by kernel² (exact for even kernels, within a rounding of the
/// division otherwise). The gated max sees random floats and, for ties, values on a grid
/// of three (0, 0.5, 1: spike-like).
#[test]
fn pooling_windows_match_reference() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(91);
    for (shape, batch, (kernel, stride, padding)) in [
        (Shape::new(3, 8, 8), 5, (2, 2, 0)),
        (Shape::new(5, 7, 9), 3, (3, 2, 1)), // odd sizes: the last window is clipped too
        (Shape::new(2, 6, 5), 4, (3, 1, 1)),
        (Shape::new(4, 5, 5), 2, (5, 3, 2)),
        (Shape::new(1, 4, 4), 1, (4, 4, 0)),
        (Shape::new(3, 9, 9), 2, (8, 1, 4)), // the largest window the gated kernel keeps
    ] {
        let pool = Pool2d { kernel, stride, padding };
        let case = format!("{shape}, batch {batch}, {pool:?}");
        let input = rng.vec(batch * shape.len(), -1.0, 1.0);
        let window = |kind| PoolWindow { pool, kind };
        let max = pooled(ctx, kernels, window(PoolKind::Max), shape, batch, &input);
        assert_bits(&format!("max pool, {case}"), &max, &ops::max_pool2d(&pool, &input, shape, batch));
        let avg = pooled(ctx, kernels, window(PoolKind::Avg), shape, batch, &input);
        assert_close(&format!("avg pool, {case}"), &avg, &ops::avg_pool2d(&pool, &input, shape, batch), 1e-6, 0.0);

        for (timesteps, spike_like) in [(7, false), (13, true), (1, false)] {
            let values = timesteps * batch * shape.len();
            let input: Vec<f32> = if spike_like {
                (0..values).map(|_| rng.below(3) as f32 * 0.5).collect()
            } else {
                rng.vec(values, -1.0, 1.0)
            };
            let gated = PoolWindow { pool, kind: PoolKind::GatedMax { timesteps } };
            let got = pooled(ctx, kernels, gated, shape, timesteps * batch, &input);
            let expected = gated_reference(&pool, &input, shape, batch, timesteps);
            assert_bits(&format!("gated max pool, {case}, T = {timesteps}, spike-like {spike_like}"), &got, &expected);
        }
    }
}

#[test]
fn pooling_dispatches_split_over_z_and_refuse_what_they_cannot_run() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    // A 1x1 window copies its input: more than 65535 workgroups of 64 outputs continue along z.
    let shape = Shape::new(1, 1, 64 * MAX_WORKGROUPS_PER_DIMENSION as usize + 1000);
    let mut rng = Rng::new(92);
    let identity = Pool2d { kernel: 1, stride: 1, padding: 0 };
    for (kind, timesteps) in [(PoolKind::Max, 1), (PoolKind::GatedMax { timesteps: 2 }, 2)] {
        let input = rng.vec(timesteps * shape.len(), -1.0, 1.0);
        let input_buffer = storage_from_f32(ctx, "input", &input).unwrap();
        let output = storage_zeroed(ctx, "output", input.len()).unwrap();
        let window = PoolWindow { pool: identity, kind };
        let step = layers::pool_step(ctx, kernels, window, shape, timesteps, &input_buffer, &output).unwrap();
        assert_eq!(step.workgroups[2], 2, "{kind:?}");
        assert!(run(ctx, step, &output, input.len()) == input, "{kind:?} over a z-split dispatch");
    }

    let (input, output) = (storage_zeroed(ctx, "input", 6 * 81).unwrap(), storage_zeroed(ctx, "output", 6).unwrap());
    let shape = Shape::new(1, 9, 9);
    let refused = |pool, kind, batch| {
        let window = PoolWindow { pool, kind };
        layers::pool_step(ctx, kernels, window, shape, batch, &input, &output).unwrap_err().to_string()
    };
    let wide = Pool2d { kernel: 9, stride: 1, padding: 0 };
    let message = refused(wide, PoolKind::GatedMax { timesteps: 2 }, 2);
    assert!(message.contains("more than 64 inputs") && message.contains("--backend cpu"), "{message}");
    let message = refused(Pool2d { kernel: 2, stride: 2, padding: 0 }, PoolKind::GatedMax { timesteps: 4 }, 6);
    assert!(message.contains("batch of 6"), "{message}");
    let message = refused(Pool2d { kernel: 2, stride: 1, padding: 2 }, PoolKind::Max, 1);
    assert!(message.contains("does not fit"), "{message}");
}
