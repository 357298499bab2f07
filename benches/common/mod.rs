//! Shared by the benches: a seeded generator and He et al.'s CIFAR ResNet with random
//! weights (the throughput of dense kernels does not depend on the weights' values).
#![allow(dead_code)]

use spikeconv::backends::wgpu::{GpuContext, Kernels};
use spikeconv::convert::fold_bn::fold_batch_norm;
use spikeconv::convert::snn::{convert, SpikingNetwork};
use spikeconv::convert::threshold::Thresholds;
use spikeconv::model::graph::{BatchNorm, Conv2d, Graph, Linear, NodeId, Op, Shape};

/// Small deterministic generator (SplitMix64), as in the tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        lo + (hi - lo) * ((z >> 40) as f32 / (1u64 << 24) as f32)
    }

    pub fn vec(&mut self, len: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..len).map(|_| self.uniform(lo, hi)).collect()
    }
}

fn conv_bn(g: &mut Graph, rng: &mut Rng, x: NodeId, out_channels: usize, stride: usize, name: &str) -> NodeId {
    let in_channels = g.node(x).shape.channels;
    let conv = random_conv(rng, in_channels, out_channels, stride, false);
    let c = g.push(format!("{name}.conv"), Op::Conv2d(conv), &[x]).expect("conv fits");
    let bn = BatchNorm {
        gamma: rng.vec(out_channels, 0.8, 1.2),
        beta: rng.vec(out_channels, -0.1, 0.1),
        mean: rng.vec(out_channels, -0.1, 0.1),
        var: rng.vec(out_channels, 0.8, 1.2),
        eps: 1e-5,
    };
    g.push(format!("{name}.bn"), Op::BatchNorm(bn), &[c]).expect("bn fits")
}

/// He et al.'s CIFAR ResNet of depth 6n + 2 with random weights.
pub fn cifar_resnet(n: usize, seed: u64) -> Graph {
    let mut rng = Rng(seed);
    let mut g = Graph::new(Shape::new(3, 32, 32));
    let stem = conv_bn(&mut g, &mut rng, 0, 16, 1, "conv1");
    let mut x = g.push("relu", Op::Relu, &[stem]).expect("relu");
    for (stage, planes) in [16, 32, 64].into_iter().enumerate() {
        for i in 0..n {
            let name = format!("layer{}.{i}", stage + 1);
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let in_channels = g.node(x).shape.channels;
            let h = conv_bn(&mut g, &mut rng, x, planes, stride, &format!("{name}.1"));
            let h = g.push(format!("{name}.relu1"), Op::Relu, &[h]).expect("relu");
            let h = conv_bn(&mut g, &mut rng, h, planes, 1, &format!("{name}.2"));
            let shortcut = if stride != 1 || in_channels != planes {
                let pad = (planes - in_channels) / 2;
                let op = Op::ShortcutA { stride, pad_before: pad, pad_after: pad };
                g.push(format!("{name}.shortcut"), op, &[x]).expect("shortcut")
            } else {
                x
            };
            let sum = g.push(format!("{name}.add"), Op::Add, &[h, shortcut]).expect("add");
            x = g.push(format!("{name}.relu2"), Op::Relu, &[sum]).expect("relu");
        }
    }
    let pooled = g.push("pool", Op::GlobalAvgPool, &[x]).expect("pool");
    let linear = Linear { in_features: 64, out_features: 10, weight: rng.vec(640, -0.1, 0.1), bias: vec![0.0; 10] };
    g.push("linear", Op::Linear(linear), &[pooled]).expect("linear");
    g
}

/// With `SPIKECONV_BENCH_SUMMARY=1` only the one-line summaries run, not criterion's samples.
pub fn summary_only() -> bool {
    std::env::var("SPIKECONV_BENCH_SUMMARY").is_ok_and(|v| v == "1")
}

/// The GPU context and compiled kernels, or `None` with a note naming the skipped `bench`.
pub fn gpu(bench: &str) -> Option<(GpuContext, Kernels)> {
    match GpuContext::new(None) {
        Ok(ctx) => {
            let kernels = Kernels::new(&ctx).expect("kernels compile");
            Some((ctx, kernels))
        }
        Err(e) => {
            eprintln!("skipping the {bench} benchmark: {e}");
            None
        }
    }
}

/// A size read from the environment variable `name`, else `default`.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|b| b.parse().ok()).unwrap_or(default)
}

/// A random 3x3 convolution (He-uniform weights), with a small random bias when `bias`.
pub fn random_conv(rng: &mut Rng, in_channels: usize, out_channels: usize, stride: usize, bias: bool) -> Conv2d {
    let bound = (2.0 / (in_channels * 9) as f32).sqrt();
    Conv2d {
        out_channels,
        in_channels,
        kernel: 3,
        stride,
        padding: 1,
        weight: rng.vec(out_channels * in_channels * 9, -bound, bound),
        bias: bias.then(|| rng.vec(out_channels, -0.1, 0.1)),
    }
}

/// [`cifar_resnet`] with folded BatchNorms converted to IF neurons, every threshold 1
/// (throughput does not depend on the thresholds' values, only on how often neurons fire).
pub fn unit_threshold_snn(n: usize, seed: u64) -> (Graph, SpikingNetwork) {
    let graph = fold_batch_norm(&cifar_resnet(n, seed));
    let thresholds = graph
        .nodes()
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.op, Op::Relu))
        .map(|(id, _)| (id, Thresholds::Layer(1.0)))
        .collect();
    let snn = convert(&graph, thresholds, 0.5).expect("converts");
    (graph, snn)
}
