//! The compiled ANN plan against `reference::forward` on small random networks: residual
//! blocks with option-A shortcuts (stride 2, channel padding), unfolded and folded
//! BatchNorm, nodes that cannot be fused, and batches smaller than the plan's; then a
//! network with max and average pooling windows, exactly (dyadic), and its calibration.
//!
//! Tolerance: 1e-4 relative + 1e-4 absolute on the logits (sums of a few hundred terms
//! through several layers; the GPU may order and fuse them differently).

mod common;

use common::dyadic::{dyadic_conv, dyadic_images, dyadic_pooled_net, relu_nodes};
use common::{gpu, Rng};
use spikeconv::backends::wgpu::buffers::{read_buffer, storage_zeroed};
use spikeconv::backends::wgpu::layers::relu_step;
use spikeconv::backends::wgpu::AnnPlan;
use spikeconv::backends::wgpu::GpuError;
use spikeconv::data::{CifarFormat, Dataset};
use spikeconv::engine::EvaluationSet;
use spikeconv::model::graph::{BatchNorm, Conv2d, Graph, Linear, NodeId, Op, Pool2d, Shape};
use spikeconv::model::normalize::NormalizePreset;
use spikeconv::reference::forward::{forward, forward_all};

fn conv(rng: &mut Rng, in_channels: usize, out_channels: usize, stride: usize, bias: bool) -> Op {
    let bound = 1.0 / ((in_channels * 9) as f32).sqrt();
    Op::Conv2d(Conv2d {
        out_channels,
        in_channels,
        kernel: 3,
        stride,
        padding: 1,
        weight: rng.vec(out_channels * in_channels * 9, -bound, bound),
        bias: bias.then(|| rng.vec(out_channels, -0.2, 0.2)),
    })
}

fn batch_norm(rng: &mut Rng, channels: usize) -> Op {
    Op::BatchNorm(BatchNorm {
        gamma: rng.vec(channels, 0.5, 1.5),
        beta: rng.vec(channels, -0.3, 0.3),
        mean: rng.vec(channels, -0.3, 0.3),
        var: rng.vec(channels, 0.5, 2.0),
        eps: 1e-5,
    })
}

/// conv-BN-ReLU-conv-BN + shortcut, add, ReLU; without `unfolded_bn` the convs carry a
/// bias instead of a BatchNorm (as after BN folding).
fn block(g: &mut Graph, rng: &mut Rng, x: NodeId, planes: usize, stride: usize, unfolded_bn: bool) -> NodeId {
    let in_channels = g.node(x).shape.channels;
    let mut h = g.push("conv1", conv(rng, in_channels, planes, stride, !unfolded_bn), &[x]).unwrap();
    if unfolded_bn {
        h = g.push("bn1", batch_norm(rng, planes), &[h]).unwrap();
    }
    h = g.push("relu1", Op::Relu, &[h]).unwrap();
    h = g.push("conv2", conv(rng, planes, planes, 1, !unfolded_bn), &[h]).unwrap();
    if unfolded_bn {
        h = g.push("bn2", batch_norm(rng, planes), &[h]).unwrap();
    }
    let shortcut = if stride != 1 || in_channels != planes {
        let pad = (planes - in_channels) / 2;
        g.push("shortcut", Op::ShortcutA { stride, pad_before: pad, pad_after: planes - in_channels - pad }, &[x])
            .unwrap()
    } else {
        x
    };
    let sum = g.push("add", Op::Add, &[h, shortcut]).unwrap();
    g.push("relu2", Op::Relu, &[sum]).unwrap()
}

/// A small CIFAR-style ResNet on `size`x`size` images: stem, blocks of 4 / 8 channels
/// (the second stage downsamples), pooling, 5 classes.
fn small_resnet(seed: u64, size: usize, unfolded_bn: bool) -> Graph {
    let mut rng = Rng::new(seed);
    let mut g = Graph::new(Shape::new(3, size, size));
    let mut x = g.push("conv1", conv(&mut rng, 3, 4, 1, !unfolded_bn), &[0]).unwrap();
    if unfolded_bn {
        x = g.push("bn1", batch_norm(&mut rng, 4), &[x]).unwrap();
    }
    x = g.push("relu", Op::Relu, &[x]).unwrap();
    x = block(&mut g, &mut rng, x, 4, 1, unfolded_bn);
    x = block(&mut g, &mut rng, x, 8, 2, unfolded_bn);
    x = block(&mut g, &mut rng, x, 8, 1, unfolded_bn);
    x = g.push("pool", Op::GlobalAvgPool, &[x]).unwrap();
    let linear =
        Linear { in_features: 8, out_features: 5, weight: rng.vec(40, -0.5, 0.5), bias: rng.vec(5, -0.1, 0.1) };
    g.push("linear", Op::Linear(linear), &[x]).unwrap();
    g
}

fn assert_close(what: &str, gpu: &[f32], reference: &[f32]) {
    assert_eq!(gpu.len(), reference.len(), "{what}: length");
    for (i, (&g, &r)) in gpu.iter().zip(reference).enumerate() {
        let tolerance = 1e-4 * r.abs() + 1e-4;
        assert!((g - r).abs() <= tolerance, "{what}: value {i}: GPU {g} vs reference {r}");
    }
}

/// Compiles `graph` for `batch` and checks runs of `batch` and of fewer images.
fn check_plan(what: &str, graph: &Graph, batch: usize, seed: u64) {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let plan = AnnPlan::compile(ctx, kernels, graph, batch).unwrap();
    assert_eq!(plan.batch(), batch);
    assert_eq!(plan.num_classes(), graph.num_classes());
    let mut rng = Rng::new(seed);
    let input_len = graph.input_shape().len();
    for count in [batch, batch.div_ceil(2), 1] {
        let images = rng.vec(count * input_len, -2.0, 2.0);
        let expected = forward(graph, &images, count);
        let got = plan.run(ctx, &images, count).unwrap();
        assert_close(&format!("{what}, {count} of {batch} images"), &got, &expected);
    }
}

#[test]
fn resnet_with_unfolded_batch_norm_matches_reference() {
    // Odd image size: the stride-2 stage subsamples 9x9 to 5x5.
    check_plan("unfolded BN", &small_resnet(1, 9, true), 5, 100);
}

#[test]
fn resnet_with_folded_batch_norm_matches_reference() {
    check_plan("folded BN", &small_resnet(2, 8, false), 3, 200);
}

#[test]
fn nodes_that_cannot_fuse_still_match_reference() {
    let mut rng = Rng::new(3);
    let mut g = Graph::new(Shape::new(5, 6, 7));
    // A conv read by two nodes cannot absorb either of them.
    let c1 = g.push("c1", conv(&mut rng, 5, 6, 1, true), &[0]).unwrap();
    let r1 = g.push("r1", Op::Relu, &[c1]).unwrap();
    let bn = g.push("bn", batch_norm(&mut rng, 6), &[c1]).unwrap();
    // BN -> ReLU and Add -> ReLU without a conv in front.
    let r2 = g.push("r2", Op::Relu, &[bn]).unwrap();
    let sum = g.push("sum", Op::Add, &[r1, r2]).unwrap();
    let r3 = g.push("r3", Op::Relu, &[sum]).unwrap();
    // Add(x, x) and a conv whose sole consumer is that add.
    let c2 = g.push("c2", conv(&mut rng, 6, 6, 2, false), &[r3]).unwrap();
    let double = g.push("double", Op::Add, &[c2, c2]).unwrap();
    // A dead branch, then the output set to an inner node (not the last one).
    let _dead = g.push("dead", Op::Relu, &[double]).unwrap();
    let out = g.push("out", Op::ShortcutA { stride: 1, pad_before: 1, pad_after: 0 }, &[double]).unwrap();
    let _after = g.push("after", Op::GlobalAvgPool, &[out]).unwrap();
    g.set_output(out);
    check_plan("unfusable", &g, 4, 300);

    // The output is a conv whose sole consumer is a ReLU: it must not be fused away.
    let mut g = Graph::new(Shape::new(3, 5, 5));
    let c = g.push("c", conv(&mut rng, 3, 4, 1, true), &[0]).unwrap();
    g.push("r", Op::Relu, &[c]).unwrap();
    g.set_output(c);
    check_plan("output before relu", &g, 2, 301);
}

#[test]
fn plan_rejects_bad_runs_and_reuses_buffers() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let graph = small_resnet(4, 8, true);
    let plan = AnnPlan::compile(ctx, kernels, &graph, 2).unwrap();
    let input_len = graph.input_shape().len();
    assert!(matches!(plan.run(ctx, &vec![0.0; 3 * input_len], 3), Err(GpuError::InvalidInput(_))));
    assert!(matches!(plan.run(ctx, &vec![0.0; input_len + 1], 1), Err(GpuError::InvalidInput(_))));
    assert!(plan.run(ctx, &[], 0).unwrap().is_empty());

    // Convs absorb their BN, add and ReLU: 1 stem + 3 blocks x 2 convs + 1 shortcut + pool + linear.
    assert_eq!(plan.step_count(), 1 + 6 + 1 + 2);
    // Far fewer live activations than nodes: at most ~4 buffers of the largest size.
    let largest = 2 * 4 * graph.nodes().iter().map(|n| n.shape.len()).max().unwrap() as u64;
    assert!(plan.activation_bytes() <= 5 * largest, "{} bytes of activations", plan.activation_bytes());

    let max = AnnPlan::max_batch(ctx, &graph);
    assert!(max >= 1);
    assert!(matches!(AnnPlan::compile(ctx, kernels, &graph, max + 1), Err(GpuError::InvalidInput(_))));
    assert!(matches!(AnnPlan::compile(ctx, kernels, &graph, 0), Err(GpuError::InvalidInput(_))));
}

/// Max pools (2×2, and overlapping 3×3 windows of stride 2 with padding) and an average
/// pool, on dyadic weights and images, where every sum is exact: the logits and every
/// ReLU's value (what calibration observes) equal the reference bit for bit.
#[test]
fn pooled_network_equals_the_reference_exactly() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    for seed in [5, 6] {
        let graph = dyadic_pooled_net(seed);
        let count = 3;
        let mut rng = Rng::new(seed + 4);
        let images = dyadic_images(&mut rng, count * graph.input_shape().len());
        let expected = forward_all(&graph, &images, count);
        let observed = relu_nodes(&graph);
        let captures: Vec<wgpu::Buffer> = observed
            .iter()
            .map(|&id| storage_zeroed(ctx, "observed", count * graph.node(id).shape.len()).unwrap())
            .collect();
        // The observer copies each ReLU's value (a ReLU of it is itself).
        let plan = AnnPlan::compile_observed(ctx, kernels, &graph, count, &observed, |id, value| {
            let index = observed.iter().position(|&o| o == id).unwrap();
            Ok(vec![relu_step(ctx, kernels, count * graph.node(id).shape.len(), value, &captures[index])?])
        })
        .unwrap();
        assert_eq!(plan.run(ctx, &images, count).unwrap(), expected[graph.output()], "seed {seed}: logits");
        for (&id, capture) in observed.iter().zip(&captures) {
            let values = read_buffer(ctx, capture, 0, expected[id].len()).unwrap();
            assert_eq!(values, expected[id], "seed {seed}: ReLU node {id}");
            assert!(values.iter().any(|&v| v > 0.0), "seed {seed}: node {id} is active (test strength)");
        }
    }
}

/// A CIFAR-sized network with the pooled network's windows (`dyadic_pooled_net` at 32×32):
/// conv-ReLU-max pool (2, 2), conv-ReLU-max pool (3, 2, 1), conv-ReLU-average pool (2, 2).
fn cifar_pooled_net(seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let mut g = Graph::new(Shape::new(3, 32, 32));
    let pool = |kernel, stride, padding| Pool2d { kernel, stride, padding };
    let x = g.push("features.0", dyadic_conv(&mut rng, 3, 4, 1), &[0]).unwrap();
    let x = g.push("features.1", Op::Relu, &[x]).unwrap();
    let x = g.push("features.2", Op::MaxPool2d(pool(2, 2, 0)), &[x]).unwrap(); // 16x16
    let x = g.push("features.3", dyadic_conv(&mut rng, 4, 4, 1), &[x]).unwrap();
    let x = g.push("features.4", Op::Relu, &[x]).unwrap();
    let x = g.push("features.5", Op::MaxPool2d(pool(3, 2, 1)), &[x]).unwrap(); // 8x8
    let x = g.push("features.6", dyadic_conv(&mut rng, 4, 6, 1), &[x]).unwrap();
    let x = g.push("features.7", Op::Relu, &[x]).unwrap();
    let x = g.push("features.8", Op::AvgPool2d(pool(2, 2, 0)), &[x]).unwrap(); // 4x4
    let weight = rng.vec(10 * 96, -0.25, 0.25);
    g.push("classifier", Op::Linear(Linear { in_features: 96, out_features: 10, weight, bias: vec![0.0; 10] }), &[x])
        .unwrap();
    g
}

/// Calibration runs on a pooled network over uneven batches: every ReLU's maxima equal the
/// reference's (lavapipe forms the same f32 products and sums), and its histograms count
/// every positive activation the reference counts.
#[test]
fn calibration_of_a_pooled_network_matches_reference() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(7);
    let graph = cifar_pooled_net(7);
    let images = 7;
    let dataset = Dataset {
        labels: (0..images).map(|_| rng.below(10) as u16).collect(),
        pixels: (0..images * 3072).map(|_| rng.below(256) as u8).collect(),
        num_classes: 10,
        format: CifarFormat::Cifar10,
        files: Vec::new(),
    };
    let normalization = NormalizePreset::Cifar10.normalization();
    let bins = 64;
    let set = EvaluationSet::new(&dataset, &normalization, images);
    let stats = spikeconv::backends::wgpu::calibrate(ctx, kernels, &graph, set, 3, bins, |_| {}).unwrap();
    let mut input = Vec::new();
    dataset.normalized_batch(0, images, &normalization, &mut input);
    let expected = spikeconv::reference::calibration::calibrate(&graph, &input, images, bins);
    assert_eq!(stats.len(), expected.len());
    for (got, want) in stats.iter().zip(&expected) {
        let name = &graph.node(got.node).name;
        assert_eq!((got.node, got.max, &got.channel_max), (want.node, want.max, &want.channel_max), "{name}");
        assert!(got.max > 0.0, "{name}: active (test strength)");
        for (histogram, reference) in
            [(&got.histogram, &want.histogram), (&got.channel_histogram, &want.channel_histogram)]
        {
            let counts = |h: &spikeconv::convert::stats::Histogram| {
                (0..h.rows()).map(|r| h.positive_count(r)).collect::<Vec<_>>()
            };
            assert_eq!(counts(histogram), counts(reference), "{name}: positive activations per row");
        }
    }
}
