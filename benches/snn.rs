//! Throughput of the compiled SNN plan on a random-weight CIFAR ResNet-20 (BN folded,
//! option-A shortcuts, per-layer thresholds of 1), in image-timesteps/s and GMAC/s (the
//! network's dense MACs per image-timestep, the same work the ANN does per image).
//!
//! Run with `WGPU_BACKEND=vulkan cargo bench --bench snn`. The GPU context is created once;
//! each timed run reads the correct counts back, so wall time is GPU time. Before
//! criterion's samples a one-line summary is printed. `SPIKECONV_BENCH_BATCH` and
//! `SPIKECONV_BENCH_TIMESTEPS` override batch 64 and T = 32.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spikeconv::convert::fold_bn::fold_batch_norm;
use spikeconv::convert::snn::convert;
use spikeconv::convert::threshold::Thresholds;
use spikeconv::gpu::{GpuContext, Kernels};
use spikeconv::model::graph::{BatchNorm, Conv2d, Graph, Linear, NodeId, Op, Shape};
use spikeconv::sim::{AnnPlan, SnnPlan};

/// Small deterministic generator (SplitMix64), as in the tests.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        lo + (hi - lo) * ((z >> 40) as f32 / (1u64 << 24) as f32)
    }

    fn vec(&mut self, len: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..len).map(|_| self.uniform(lo, hi)).collect()
    }
}

fn conv_bn(g: &mut Graph, rng: &mut Rng, x: NodeId, out_channels: usize, stride: usize, name: &str) -> NodeId {
    let in_channels = g.node(x).shape.channels;
    let bound = (2.0 / (in_channels * 9) as f32).sqrt();
    let conv = Conv2d {
        out_channels,
        in_channels,
        kernel: 3,
        stride,
        padding: 1,
        weight: rng.vec(out_channels * in_channels * 9, -bound, bound),
        bias: None,
    };
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

/// He et al.'s CIFAR ResNet-20 (n = 3) with random weights.
fn resnet20(seed: u64) -> Graph {
    let mut rng = Rng(seed);
    let mut g = Graph::new(Shape::new(3, 32, 32));
    let stem = conv_bn(&mut g, &mut rng, 0, 16, 1, "conv1");
    let mut x = g.push("relu", Op::Relu, &[stem]).expect("relu");
    for (stage, planes) in [16, 32, 64].into_iter().enumerate() {
        for i in 0..3 {
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

fn bench_snn(c: &mut Criterion) {
    let ctx = match GpuContext::new(None) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("skipping the SNN benchmark: {e}");
            return;
        }
    };
    let kernels = Kernels::new(&ctx).expect("kernels compile");
    let setting = |name: &str, default: usize| std::env::var(name).ok().and_then(|b| b.parse().ok()).unwrap_or(default);
    let batch = setting("SPIKECONV_BENCH_BATCH", 64);
    let timesteps = setting("SPIKECONV_BENCH_TIMESTEPS", 32);

    let graph = fold_batch_norm(&resnet20(7));
    let thresholds = graph
        .nodes()
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.op, Op::Relu))
        .map(|(id, _)| (id, Thresholds::Layer(1.0)))
        .collect();
    let snn = convert(&graph, thresholds, 0.5).expect("converts");
    let plan = SnnPlan::compile(&ctx, &kernels, &snn, batch).expect("plan compiles");
    let images = Rng(11).vec(batch * graph.input_shape().len(), -2.0, 2.0);
    let labels: Vec<u32> = (0..batch as u32).map(|n| n % 10).collect();
    let image_steps = (batch * timesteps) as f64;
    let macs = graph.macs_per_image() as f64 * image_steps;

    // One untimed run creates lazily built driver state; then a quick summary, with the
    // ANN plan of the same graph timed right before as the yardstick: a timestep does the
    // ANN's convolutions plus the IF updates, so the ratio shows the per-step overhead
    // (and stays meaningful on a machine shared with other work).
    plan.run(&ctx, &images, &labels, batch, 2).expect("plan runs");
    let ann = AnnPlan::compile(&ctx, &kernels, &graph, batch).expect("ANN plan compiles");
    ann.run(&ctx, &images, batch).expect("ANN plan runs");
    let start = Instant::now();
    ann.run(&ctx, &images, batch).expect("ANN plan runs");
    let ann_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let result = plan.run(&ctx, &images, &labels, batch, timesteps).expect("plan runs");
    let seconds = start.elapsed().as_secs_f64();
    let spikes: u64 = result.spike_totals.iter().sum();
    println!(
        "snn resnet20: batch {batch}, T {timesteps}, {} dispatches/step, {:.1} image-timesteps/s, {:.2} GMAC/s, \
         {:.3} spikes/neuron-step, {:.1} s per run; one timestep = {:.2}x an ANN forward ({:.1} images/s) on {}",
        plan.steps_per_timestep(),
        image_steps / seconds,
        macs / seconds / 1e9,
        spikes as f64 / (snn.layer_infos().iter().map(|l| l.neurons).sum::<usize>() as f64 * image_steps),
        seconds,
        seconds / timesteps as f64 / ann_seconds,
        batch as f64 / ann_seconds,
        ctx.describe()
    );
    if std::env::var_os("SPIKECONV_BENCH_SUMMARY_ONLY").is_some() {
        return;
    }

    let mut group = c.benchmark_group("snn");
    group.sample_size(10).warm_up_time(Duration::from_millis(100)).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements((batch * timesteps) as u64));
    group.bench_function(format!("resnet20_batch{batch}_t{timesteps}"), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                plan.run(&ctx, &images, &labels, batch, timesteps).expect("plan runs");
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_snn);
criterion_main!(benches);
