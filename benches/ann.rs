//! Throughput of the compiled ANN plan on random-weight CIFAR ResNet-20 and ResNet-110
//! (unfolded BatchNorm, option-A shortcuts), in images/s and GMAC/s.
//!
//! Run with `WGPU_BACKEND=vulkan cargo bench --bench ann`. The GPU context is created once;
//! each timed run waits for the GPU (it reads the logits back), so wall time is GPU time.
//! Before criterion's samples a one-line summary per network is printed (median and best
//! of 3 runs). The `conv` group times single 3x3 conv layers of each ResNet stage.
//! `SPIKECONV_BENCH=conv` or `=ann` runs one group, `SPIKECONV_BENCH_SUMMARY=1` only the
//! summaries, `SPIKECONV_BENCH_BATCH` overrides the batch sizes.

use std::time::{Duration, Instant};

mod common;

use common::{cifar_resnet, gpu, random_conv, setting, summary_only, Rng};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spikeconv::backends::wgpu::buffers::{read_buffer, storage_from_f32, storage_zeroed};
use spikeconv::backends::wgpu::kernels::record_steps;
use spikeconv::backends::wgpu::layers::{ConvStep, ConvWeights};
use spikeconv::backends::wgpu::AnnPlan;
use spikeconv::model::graph::Shape;

/// User + system time of this process so far (Linux `/proc/self/stat`), if readable.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Clock ticks are 1/100 s on Linux.
    Some(ticks / 100.0)
}

/// Whether `SPIKECONV_BENCH` names this group (`conv`, `ann`; both when unset).
fn selected(group: &str) -> bool {
    std::env::var("SPIKECONV_BENCH").map_or(true, |only| only.split(',').any(|g| g == group))
}

fn bench_ann(c: &mut Criterion) {
    if !selected("ann") {
        return;
    }
    let Some((ctx, kernels)) = gpu("ANN") else { return };
    // (name, blocks per stage, batch): ResNet-110 takes seconds per batch on a CPU
    // rasterizer, so it runs a smaller batch to keep the bench short.
    let batch = |default: usize| setting("SPIKECONV_BENCH_BATCH", default);
    let networks = [("resnet20", 3, batch(64)), ("resnet110", 18, batch(32))];
    let mut group = c.benchmark_group("ann");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for (name, n, batch) in networks {
        let graph = cifar_resnet(n, 7);
        let plan = AnnPlan::compile(&ctx, &kernels, &graph, batch).expect("plan compiles");
        let images = Rng(11).vec(batch * graph.input_shape().len(), -2.0, 2.0);
        let macs = graph.macs_per_image() as f64 * batch as f64;

        // One untimed run compiles lazily created driver state; then a quick summary.
        plan.run(&ctx, &images, batch).expect("plan runs");
        let mut seconds: Vec<f64> = (0..3)
            .map(|_| {
                let start = Instant::now();
                plan.run(&ctx, &images, batch).expect("plan runs");
                start.elapsed().as_secs_f64()
            })
            .collect();
        seconds.sort_by(f64::total_cmp);
        let median = seconds[seconds.len() / 2];
        println!(
            "{name}: batch {batch}, {} steps, {:.1} images/s, median {:.2} GMAC/s, best {:.2} GMAC/s on {}",
            plan.step_count(),
            batch as f64 / median,
            macs / median / 1e9,
            macs / seconds[0] / 1e9,
            ctx.describe()
        );

        if summary_only() {
            continue;
        }
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("{name}_batch{batch}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    plan.run(&ctx, &images, batch).expect("plan runs");
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

/// Single 3x3 convs of the three CIFAR ResNet stages (stride 1, and the stride-2 entry of
/// stages 2 and 3), batch 64 by default: a quick signal when tuning the conv kernels.
fn bench_conv(c: &mut Criterion) {
    if !selected("conv") {
        return;
    }
    let Some((ctx, kernels)) = gpu("conv") else { return };
    let batch = setting("SPIKECONV_BENCH_BATCH", 64);
    // (in channels, out channels, input size, stride)
    let layers = [(16, 16, 32, 1), (32, 32, 16, 1), (64, 64, 8, 1), (16, 32, 32, 2), (32, 64, 16, 2)];
    let mut group = c.benchmark_group("conv");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    let mut rng = Rng(5);
    for (in_channels, out_channels, size, stride) in layers {
        let conv = random_conv(&mut rng, in_channels, out_channels, stride, true);
        let weights = ConvWeights::upload(&ctx, &conv, None).expect("conv uploads");
        let in_shape = Shape::new(in_channels, size, size);
        let out_shape = weights.output_shape(in_shape);
        let input = storage_from_f32(&ctx, "input", &rng.vec(batch * in_shape.len(), -1.0, 1.0)).expect("input");
        let residual = storage_from_f32(&ctx, "residual", &rng.vec(batch * out_shape.len(), -1.0, 1.0)).expect("res");
        let output = storage_zeroed(&ctx, "output", batch * out_shape.len()).expect("output");
        let conv_step =
            ConvStep { in_shape, batch, input: &input, residual: Some(&residual), relu: true, output: &output };
        let steps = weights.step(&ctx, &kernels, conv_step).expect("conv step");
        let macs = (batch * out_shape.len() * in_channels * 9) as f64;
        let run = || {
            let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            record_steps(&mut encoder, &steps);
            ctx.queue.submit([encoder.finish()]);
            // Reading one value waits for the GPU.
            read_buffer(&ctx, &output, 0, 1).expect("readback");
        };
        run();
        let name = format!("{in_channels}to{out_channels}_{size}x{size}_s{stride}_batch{batch}");
        // Median and best of a few runs: the machine may be shared, so single runs mislead.
        // CPU time (all threads of this process, which on a CPU rasterizer does the work)
        // depends far less on other processes than wall time.
        let cpu_start = process_cpu_seconds();
        let mut seconds: Vec<f64> = (0..9)
            .map(|_| {
                let start = Instant::now();
                run();
                start.elapsed().as_secs_f64()
            })
            .collect();
        // Below ten clock ticks (0.1 s) the CPU time is too coarse to divide by.
        let cpu = cpu_start
            .zip(process_cpu_seconds())
            .map(|(start, end)| end - start)
            .filter(|&cpu| cpu >= 0.1)
            .map(|cpu| cpu / seconds.len() as f64);
        seconds.sort_by(f64::total_cmp);
        println!(
            "conv {name}: median {:.2} GMAC/s, best {:.2} GMAC/s, {}",
            macs / seconds[seconds.len() / 2] / 1e9,
            macs / seconds[0] / 1e9,
            cpu.map_or("CPU time too short to measure".into(), |cpu| format!(
                "{:.2} GMAC per CPU-second",
                macs / cpu / 1e9
            )),
        );
        if summary_only() {
            continue;
        }
        group.throughput(Throughput::Elements(macs as u64));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    run();
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_conv, bench_ann);
criterion_main!(benches);
