//! Throughput of the compiled SNN plan on random-weight CIFAR ResNet-20 and ResNet-110
//! (BN folded, option-A shortcuts, per-layer thresholds of 1), in image-timesteps/s and
//! GMAC/s (the network's dense MACs per image-timestep, the same work the ANN does per
//! image).
//!
//! Run with `WGPU_BACKEND=vulkan cargo bench --bench snn`. The GPU context is created once;
//! each timed run reads the correct counts back, so wall time is GPU time. Before
//! criterion's samples a one-line summary per network is printed. `SPIKECONV_BENCH_BATCH`
//! and `SPIKECONV_BENCH_TIMESTEPS` override batch 64 and T = 32 (ResNet-110: half of
//! each, as its walk through 110 layers is 5.5 times the work per image-timestep).

use std::time::{Duration, Instant};

mod common;

use common::{gpu, setting, summary_only, unit_threshold_snn, Rng};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spikeconv::backends::wgpu::{AnnPlan, SnnPlan};
use spikeconv::backends::wgpu::{GpuContext, Kernels};

fn bench_snn(c: &mut Criterion) {
    let Some((ctx, kernels)) = gpu("SNN") else { return };
    let batch = setting("SPIKECONV_BENCH_BATCH", 64);
    let timesteps = setting("SPIKECONV_BENCH_TIMESTEPS", 32);
    bench_network(c, &ctx, &kernels, "resnet20", 3, batch, timesteps);
    bench_network(c, &ctx, &kernels, "resnet110", 18, (batch / 2).max(1), (timesteps / 2).max(1));
}

fn bench_network(
    c: &mut Criterion,
    ctx: &GpuContext,
    kernels: &Kernels,
    name: &str,
    blocks_per_stage: usize,
    batch: usize,
    timesteps: usize,
) {
    let (graph, snn) = unit_threshold_snn(blocks_per_stage, 7);
    let plan = SnnPlan::compile(ctx, kernels, &snn, batch, timesteps).expect("plan compiles");
    let images = Rng(11).vec(batch * graph.input_shape().len(), -2.0, 2.0);
    let labels: Vec<u32> = (0..batch as u32).map(|n| n % 10).collect();
    let image_steps = (batch * timesteps) as f64;
    let macs = graph.macs_per_image() as f64 * image_steps;

    // One untimed run creates lazily built driver state; then a quick summary, with the
    // ANN plan of the same graph timed right before as the yardstick: a timestep does the
    // ANN's convolutions plus the IF updates, so the ratio shows the per-step overhead
    // (and stays meaningful on a machine shared with other work).
    plan.run(ctx, &images, &labels, batch, timesteps).expect("plan runs");
    let ann = AnnPlan::compile(ctx, kernels, &graph, batch).expect("ANN plan compiles");
    ann.run(ctx, &images, batch).expect("ANN plan runs");
    let start = Instant::now();
    ann.run(ctx, &images, batch).expect("ANN plan runs");
    let ann_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let result = plan.run(ctx, &images, &labels, batch, timesteps).expect("plan runs");
    let seconds = start.elapsed().as_secs_f64();
    let spikes: u64 = result.spike_totals.iter().sum();
    println!(
        "snn {name}: batch {batch}, T {timesteps}, {} dispatches per chunk, {:.1} image-timesteps/s, {:.2} GMAC/s, \
         {:.3} spikes/neuron-step, {:.1} s per run; one timestep = {:.2}x an ANN forward ({:.1} images/s) on {}",
        plan.dispatches_per_chunk(),
        image_steps / seconds,
        macs / seconds / 1e9,
        spikes as f64 / (snn.layer_infos().iter().map(|l| l.neurons).sum::<usize>() as f64 * image_steps),
        seconds,
        seconds / timesteps as f64 / ann_seconds,
        batch as f64 / ann_seconds,
        ctx.describe()
    );
    if summary_only() {
        return;
    }

    let mut group = c.benchmark_group("snn");
    group.sample_size(10).warm_up_time(Duration::from_millis(100)).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements((batch * timesteps) as u64));
    group.bench_function(format!("{name}_batch{batch}_t{timesteps}"), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                plan.run(ctx, &images, &labels, batch, timesteps).expect("plan runs");
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_snn);
criterion_main!(benches);
