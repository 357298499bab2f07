//! Throughput of TTRBR threshold tuning and of the error analysis (layer-major walks,
//! src/backends/wgpu/layerwise.rs) on a random-weight CIFAR ResNet-20 (BN folded, per-layer
//! thresholds of 1), in image-timesteps/s: one walk computes every node for all T steps
//! of its images; tuning adds two candidate searches (32 and 17 thresholds) per IF layer.
//!
//! Run with `WGPU_BACKEND=vulkan cargo bench --bench tune`. Before criterion's samples a
//! one-line summary is printed. `SPIKECONV_BENCH_IMAGES` and `SPIKECONV_BENCH_TIMESTEPS`
//! override 32 images and T = 16.

use std::time::{Duration, Instant};

mod common;

use common::{gpu, setting, summary_only, unit_threshold_snn, Rng};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spikeconv::backends::wgpu::GpuBackend;
use spikeconv::tuning::analyze::analyze;
use spikeconv::tuning::tune::{tune, TuneOptions};

fn bench_tune(c: &mut Criterion) {
    let Some((ctx, kernels)) = gpu("tuning") else { return };
    let gpu = GpuBackend { ctx, kernels };
    let images = setting("SPIKECONV_BENCH_IMAGES", 32);
    let timesteps = setting("SPIKECONV_BENCH_TIMESTEPS", 16);

    let (graph, snn) = unit_threshold_snn(3, 7);
    let input = Rng(11).vec(images * graph.input_shape().len(), -2.0, 2.0);
    let image_steps = (images * timesteps) as f64;

    let options = TuneOptions { per_channel_thresholds: true, ..TuneOptions::default() };
    let run_tune = || tune(&gpu, &snn, &input, images, timesteps, options, |_| {}).expect("tuning runs");
    let run_analyze = || analyze(&gpu, &snn, &input, images, timesteps, |_| {}).expect("analysis runs");
    run_analyze(); // lazily built driver state
    let start = Instant::now();
    run_analyze();
    let analyze_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    run_tune();
    let tune_seconds = start.elapsed().as_secs_f64();
    println!(
        "resnet20 layer-major, {images} images, T {timesteps}: analyze {:.1} image-timesteps/s ({analyze_seconds:.1} s), \
         channel tuning {:.1} image-timesteps/s ({tune_seconds:.1} s) on {}",
        image_steps / analyze_seconds,
        image_steps / tune_seconds,
        gpu.ctx.describe()
    );
    if summary_only() {
        return;
    }

    let mut group = c.benchmark_group("layerwise");
    group.sample_size(10).warm_up_time(Duration::from_millis(100)).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements((images * timesteps) as u64));
    group.bench_function(format!("analyze_resnet20_{images}_t{timesteps}"), |b| b.iter(run_analyze));
    group.bench_function(format!("tune_resnet20_{images}_t{timesteps}"), |b| b.iter(run_tune));
    group.finish();
}

criterion_group!(benches, bench_tune);
criterion_main!(benches);
