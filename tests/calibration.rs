//! Calibration on the GPU against `reference::calibration`: the max and histogram kernels
//! on random activations of awkward sizes (partial batches, odd channels, 1x1 to 17x17
//! planes), then `backends::wgpu::calibrate` over a small random ResNet with a batch size that does
//! not divide the image count.
//!
//! Tolerances: maxima must be equal (a max involves no rounding). Histogram counts must be
//! equal except for values whose scaled position `v / range × bins` lies within 1e-3 of a
//! bin edge, which WGSL's division may move by one bin (see `convert::stats`); each such
//! value may change two counts by one. Percentile thresholds must agree within one bin width.

mod common;

use common::{gpu, Rng};
use spikeconv::backends::wgpu::buffers::{read_buffer, storage_from_f32, storage_zeroed};
use spikeconv::backends::wgpu::kernels::record_steps;
use spikeconv::backends::wgpu::snn_layers::{channel_max_step, histogram_step, HistogramBins};
use spikeconv::backends::wgpu::GpuError;
use spikeconv::convert::stats::{Histogram, LayerRange, LayerStats};
use spikeconv::convert::threshold::{choose, ThresholdMethod};
use spikeconv::data::{CifarFormat, Dataset};
use spikeconv::model::graph::{Conv2d, Graph, Linear, NodeId, Op, Shape};
use spikeconv::model::normalize::NormalizePreset;
use spikeconv::reference::calibration::{observe_histogram, observe_range, relu_nodes};
use spikeconv::reference::forward::forward_all;

/// Values within 1e-3 of a bin edge of a row over `range`.
fn near_edges<'a>(values: impl Iterator<Item = &'a f32>, range: f32, bins: usize) -> u64 {
    values
        .filter(|&&v| v > 0.0)
        .filter(|&&v| {
            let scaled = v / range * bins as f32;
            (scaled - scaled.round()).abs() < 1e-3
        })
        .count() as u64
}

fn assert_rows_close(what: &str, gpu: &Histogram, reference: &Histogram, edges: &[u64]) {
    assert_eq!(gpu.bins, reference.bins, "{what}");
    for (row, &edge) in edges.iter().enumerate() {
        assert_eq!(gpu.positive_count(row), reference.positive_count(row), "{what}: row {row} total");
        let difference: u64 = gpu.row(row).iter().zip(reference.row(row)).map(|(&g, &r)| g.abs_diff(r)).sum();
        assert!(difference <= 2 * edge, "{what}: row {row} differs by {difference} counts, {edge} values near an edge");
    }
}

/// Plane `c` of every image of `activation` (`batch × shape`).
fn channel_values(activation: &[f32], shape: Shape, channel: usize) -> impl Iterator<Item = &f32> {
    activation
        .chunks_exact(shape.len())
        .flat_map(move |image| &image[channel * shape.plane()..(channel + 1) * shape.plane()])
}

#[test]
fn max_and_histogram_kernels_match_reference() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(3);
    for (batch, count, shape, bins) in [
        (1, 1, Shape::new(3, 17, 17), 16),
        (7, 5, Shape::new(5, 3, 3), 7),
        (7, 7, Shape::new(1, 1, 1), 4),
        (3, 2, Shape::new(6, 8, 8), 4096),
    ] {
        // Half the values negative or zero (as before a ReLU... and after it).
        let mut activation: Vec<f32> =
            rng.vec(batch * shape.len(), -1.0, 3.0).into_iter().map(|v| v.max(0.0)).collect();
        activation[0] = f32::NAN; // never counted, never a maximum
        let real = &activation[..count * shape.len()];
        let case = format!("batch {batch}, count {count}, shape {shape}, bins {bins}");
        let input = storage_from_f32(ctx, "activation", &activation).unwrap();
        let run_info = storage_from_f32(ctx, "count", &[f32::from_bits(count as u32)]).unwrap();

        let maxima = storage_zeroed(ctx, "maxima", shape.channels).unwrap();
        let step =
            channel_max_step(ctx, kernels, shape, batch, &input, &run_info, maxima.as_entire_buffer_binding()).unwrap();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        record_steps(&mut encoder, &[step]);
        ctx.queue.submit([encoder.finish()]);
        let channel_max = read_buffer(ctx, &maxima, 0, shape.channels).unwrap();
        let reference = observe_range(9, real, shape, count);
        assert_eq!(channel_max, reference.channel_max, "{case}");

        let mut ranges = vec![reference.max];
        ranges.extend(&reference.channel_max);
        let range_buffer = storage_from_f32(ctx, "ranges", &ranges).unwrap();
        let counts = storage_zeroed(ctx, "histograms", (1 + shape.channels) * bins).unwrap();
        let histogram = HistogramBins {
            bins,
            ranges: range_buffer.as_entire_buffer_binding(),
            stats: counts.as_entire_buffer_binding(),
        };
        let step = histogram_step(ctx, kernels, shape, batch, &input, &run_info, histogram).unwrap();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        record_steps(&mut encoder, &[step]);
        ctx.queue.submit([encoder.finish()]);
        let words: Vec<u64> = read_buffer(ctx, &counts, 0, (1 + shape.channels) * bins)
            .unwrap()
            .into_iter()
            .map(|w| u64::from(w.to_bits()))
            .collect();
        let mut expected = LayerStats::new(&reference, bins);
        observe_histogram(&mut expected, real, shape, count);
        let mut got = LayerStats::new(&reference, bins);
        got.histogram.counts.copy_from_slice(&words[..bins]);
        got.channel_histogram.counts.copy_from_slice(&words[bins..]);
        let layer_edges = [near_edges(real.iter(), reference.max, bins)];
        assert_rows_close(&format!("{case}, layer"), &got.histogram, &expected.histogram, &layer_edges);
        let channel_edges: Vec<u64> = (0..shape.channels)
            .map(|c| near_edges(channel_values(real, shape, c), reference.channel_max[c], bins))
            .collect();
        assert_rows_close(
            &format!("{case}, channels"),
            &got.channel_histogram,
            &expected.channel_histogram,
            &channel_edges,
        );
    }
}

fn conv(rng: &mut Rng, in_channels: usize, out_channels: usize, stride: usize) -> Op {
    let bound = 1.5 / ((in_channels * 9) as f32).sqrt();
    Op::Conv2d(Conv2d {
        out_channels,
        in_channels,
        kernel: 3,
        stride,
        padding: 1,
        weight: rng.vec(out_channels * in_channels * 9, -bound, bound),
        bias: Some(rng.vec(out_channels, -0.1, 0.2)),
    })
}

/// A BN-folded CIFAR-shaped ResNet: stem (5 channels), a block, a downsampling block to 7
/// channels with an option-A shortcut, pooling, 10 classes.
fn small_resnet(seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let mut g = Graph::new(Shape::new(3, 32, 32));
    let x = g.push("conv1", conv(&mut rng, 3, 5, 1), &[0]).unwrap();
    let mut x = g.push("relu", Op::Relu, &[x]).unwrap();
    for (tag, planes, stride) in [("layer1", 5, 1), ("layer2", 7, 2)] {
        let in_channels = g.node(x).shape.channels;
        let h = g.push(format!("{tag}.conv1"), conv(&mut rng, in_channels, planes, stride), &[x]).unwrap();
        let h = g.push(format!("{tag}.relu1"), Op::Relu, &[h]).unwrap();
        let h = g.push(format!("{tag}.conv2"), conv(&mut rng, planes, planes, 1), &[h]).unwrap();
        let shortcut: NodeId = if stride != 1 || in_channels != planes {
            let op = Op::ShortcutA { stride, pad_before: 1, pad_after: planes - in_channels - 1 };
            g.push(format!("{tag}.shortcut"), op, &[x]).unwrap()
        } else {
            x
        };
        let sum = g.push(format!("{tag}.add"), Op::Add, &[h, shortcut]).unwrap();
        x = g.push(format!("{tag}.relu2"), Op::Relu, &[sum]).unwrap();
    }
    let x = g.push("pool", Op::GlobalAvgPool, &[x]).unwrap();
    let linear = Linear { in_features: 7, out_features: 10, weight: rng.vec(70, -0.5, 0.5), bias: vec![0.0; 10] };
    g.push("fc", Op::Linear(linear), &[x]).unwrap();
    g
}

fn random_dataset(rng: &mut Rng, images: usize) -> Dataset {
    Dataset {
        labels: (0..images).map(|_| rng.below(10) as u16).collect(),
        pixels: (0..images * 3072).map(|_| rng.below(256) as u8).collect(),
        num_classes: 10,
        format: CifarFormat::Cifar10,
        files: Vec::new(),
    }
}

#[test]
fn calibrate_matches_reference_over_uneven_batches() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(4);
    let graph = small_resnet(4);
    let dataset = random_dataset(&mut rng, 13);
    let normalization = NormalizePreset::Cifar10.normalization();
    let (images, batch, bins) = (11, 4, 256); // batches of 4, 4, 3
    let mut progress = Vec::new();
    let stats = spikeconv::backends::wgpu::calibrate(
        ctx,
        kernels,
        &graph,
        spikeconv::engine::EvaluationSet::new(&dataset, &normalization, images),
        batch,
        bins,
        |done| progress.push(done),
    )
    .unwrap();
    assert_eq!(progress, [4, 8, 11, 15, 19, 22]);

    // Reference: both passes over all 11 images as one batch (merging is exact).
    let mut input = Vec::new();
    dataset.normalized_batch(0, images, &normalization, &mut input);
    let values = forward_all(&graph, &input, images);
    let nodes = relu_nodes(&graph);
    assert_eq!(stats.iter().map(|s| s.node).collect::<Vec<_>>(), nodes);
    for (gpu_stats, &node) in stats.iter().zip(&nodes) {
        let shape = graph.node(node).shape;
        let name = &graph.node(node).name;
        let range = observe_range(node, &values[node], shape, images);
        assert_eq!(gpu_stats.max, range.max, "{name}: max");
        assert_eq!(gpu_stats.channel_max, range.channel_max, "{name}: channel max");
        let mut expected = LayerStats::new(&range, bins);
        observe_histogram(&mut expected, &values[node], shape, images);
        let layer_edges = [near_edges(values[node].iter(), range.max, bins)];
        assert_rows_close(name, &gpu_stats.histogram, &expected.histogram, &layer_edges);
        let channel_edges: Vec<u64> = (0..shape.channels)
            .map(|c| near_edges(channel_values(&values[node], shape, c), range.channel_max[c], bins))
            .collect();
        assert_rows_close(name, &gpu_stats.channel_histogram, &expected.channel_histogram, &channel_edges);
        for method in
            [ThresholdMethod::Percentile(99.0), ThresholdMethod::ChannelPercentile(99.9), ThresholdMethod::Max]
        {
            let (gpu_thresholds, cpu_thresholds) =
                (choose(method, gpu_stats).unwrap(), choose(method, &expected).unwrap());
            for (c, (g, r)) in gpu_thresholds.values().iter().zip(cpu_thresholds.values()).enumerate() {
                let width = range.channel_max.get(c).copied().unwrap_or(range.max).max(range.max) / bins as f32;
                assert!((g - r).abs() <= width * 1.0001, "{name}: {method} threshold {c}: {g} vs {r}");
            }
        }
    }
}

#[test]
fn calibrate_handles_edge_cases() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(5);
    let graph = small_resnet(5);
    let dataset = random_dataset(&mut rng, 3);
    let normalization = NormalizePreset::Cifar10.normalization();
    // No images: empty statistics for every layer (thresholds fall back).
    let stats = spikeconv::backends::wgpu::calibrate(
        ctx,
        kernels,
        &graph,
        spikeconv::engine::EvaluationSet::new(&dataset, &normalization, 0),
        4,
        8,
        |_| {},
    )
    .unwrap();
    assert_eq!(stats.len(), relu_nodes(&graph).len());
    assert!(stats.iter().all(|s| s.max == 0.0 && s.histogram.positive_count(0) == 0));
    // More images than the dataset holds, a batch larger than them: clamped.
    let stats = spikeconv::backends::wgpu::calibrate(
        ctx,
        kernels,
        &graph,
        spikeconv::engine::EvaluationSet::new(&dataset, &normalization, 10),
        64,
        8,
        |_| {},
    )
    .unwrap();
    let reference = {
        let mut input = Vec::new();
        dataset.normalized_batch(0, 3, &normalization, &mut input);
        spikeconv::reference::calibration::calibration_ranges(&graph, &input, 3)
    };
    let maxima: Vec<LayerRange> =
        stats.iter().map(|s| LayerRange { node: s.node, max: s.max, channel_max: s.channel_max.clone() }).collect();
    assert_eq!(maxima, reference);
    for bad in [(0, 4), (8, 0)] {
        let result = spikeconv::backends::wgpu::calibrate(
            ctx,
            kernels,
            &graph,
            spikeconv::engine::EvaluationSet::new(&dataset, &normalization, 3),
            bad.1,
            bad.0,
            |_| {},
        );
        assert!(matches!(result, Err(GpuError::InvalidInput(_))));
    }
}
