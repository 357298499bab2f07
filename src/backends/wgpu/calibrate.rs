//! Calibration statistics on the GPU: the two passes of [`crate::convert::stats`] over the
//! ANN's ReLU activations, with reduction kernels (calibration.wgsl) observing each ReLU
//! node's value right after the step that produces it ([`AnnPlan::compile_observed`]).
//!
//! - Pass 1: per-channel maxima with `atomicMax` on f32 bit patterns (ReLU outputs are
//!   non-negative, so their bits order like the floats). Maxima merge across batches by
//!   max, so they stay on the GPU for the whole pass; the layer maximum is the largest
//!   channel maximum, as in the reference.
//! - Pass 2: layer and per-channel histograms over the merged ranges with `atomicAdd` into
//!   u32 counters, read back and added into the host's u64 counts whenever another batch
//!   could overflow a u32 (for CIFAR ResNets: only after hundreds of thousands of images).
//!
//! The CPU reference is [`crate::reference::calibration`].

use crate::backends::wgpu::buffers::{read_buffer, storage_from_f32, storage_zeroed, submit_and_read};
use crate::backends::wgpu::snn_layers::{channel_max_step, histogram_step, HistogramBins};
use crate::backends::wgpu::{GpuContext, GpuError, Kernels};
use crate::convert::stats::{LayerRange, LayerStats};
use crate::engine::EvaluationSet;
use crate::model::graph::{Graph, Shape};

use super::AnnPlan;

/// Per-layer regions of one buffer, each starting at an offset the adapter accepts for a
/// storage binding: `(offsets in words, total words)`.
fn regions(ctx: &GpuContext, lengths: &[usize]) -> (Vec<usize>, usize) {
    let align = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
    let mut offsets = Vec::with_capacity(lengths.len());
    let mut end = 0;
    for &len in lengths {
        offsets.push(end);
        end = (end + len.max(1)).div_ceil(align) * align;
    }
    (offsets, end)
}

fn binding(buffer: &wgpu::Buffer, offset: usize, len: usize) -> wgpu::BufferBinding<'_> {
    wgpu::BufferBinding {
        buffer,
        offset: (offset * 4) as u64,
        size: std::num::NonZeroU64::new((len.max(1) * 4) as u64),
    }
}

/// Two-pass calibration of every ReLU (IF) node of the BN-folded `graph` over the first
/// `images` images of `dataset`: pass 1 layer max + per-channel max, pass 2 layer and
/// per-channel histograms over [0, max] with `bins` bins (GPU atomics), merged on the host.
///
/// Returns one [`LayerStats`] per ReLU node in topological order, equal to
/// [`crate::reference::calibration`] on the same images (maxima exactly, histograms up to
/// values on a bin edge, see [`crate::convert::stats`]). `progress` gets the images done,
/// counting both passes (`0..=2 × images`).
pub fn calibrate(
    ctx: &GpuContext,
    kernels: &Kernels,
    graph: &Graph,
    set: EvaluationSet<'_>,
    batch: usize,
    bins: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<LayerStats>, GpuError> {
    if bins == 0 {
        return Err(GpuError::InvalidInput("calibration needs at least one histogram bin".into()));
    }
    if batch == 0 {
        return Err(GpuError::InvalidInput("the batch size must be at least 1".into()));
    }
    let nodes = graph.relu_nodes();
    let shapes: Vec<Shape> = nodes.iter().map(|&id| graph.node(id).shape).collect();
    let total = set.images();
    if total == 0 {
        return Ok(nodes
            .iter()
            .zip(&shapes)
            .map(|(&id, s)| LayerStats::new(&LayerRange::new(id, s.channels), bins))
            .collect());
    }
    let batch = batch.min(total);
    let layer_of = |node| nodes.iter().position(|&n| n == node).expect("only ReLU nodes are observed");
    // [count]: real images of the current batch, read by the kernels.
    let run_info = storage_zeroed(ctx, "calibration batch size", 1)?;
    let mut pixels = Vec::new();

    // Pass 1: per-channel maxima, merged across batches on the GPU.
    let (max_offsets, max_len) = regions(ctx, &shapes.iter().map(|s| s.channels).collect::<Vec<_>>());
    let maxima = storage_zeroed(ctx, "calibration channel maxima", max_len)?;
    let plan = AnnPlan::compile_observed(ctx, kernels, graph, batch, &nodes, |node, value| {
        let layer = layer_of(node);
        let stats = binding(&maxima, max_offsets[layer], shapes[layer].channels);
        Ok(vec![channel_max_step(ctx, kernels, shapes[layer], batch, value, &run_info, stats)?])
    })?;
    let mut start = 0;
    while start < total {
        let count = set.batch(start, batch, &mut pixels);
        ctx.checked("calibration pass 1 (maxima)", || {
            ctx.queue.write_buffer(&run_info, 0, bytemuck::bytes_of(&(count as u32)));
            // Reading the one-word batch size back waits for the batch: progress is real.
            submit_and_read(ctx, plan.encode(ctx, &pixels, count), &run_info, 0, 1).map(drop)
        })?;
        start += count;
        progress(start);
    }
    let maxima = ctx.checked("reading the calibration maxima", || read_buffer(ctx, &maxima, 0, max_len))?;
    drop(plan);
    let ranges: Vec<LayerRange> = nodes
        .iter()
        .zip(&shapes)
        .zip(&max_offsets)
        .map(|((&node, shape), &offset)| {
            // The values are f32 bit patterns already: read back as f32 they are the maxima.
            let channel_max = maxima[offset..offset + shape.channels].to_vec();
            let max = channel_max.iter().fold(0.0f32, |m, &v| m.max(v));
            LayerRange { node, max, channel_max }
        })
        .collect();

    // Pass 2: histograms over the merged ranges.
    let range_lengths: Vec<usize> = shapes.iter().map(|s| 1 + s.channels).collect();
    let (range_offsets, range_len) = regions(ctx, &range_lengths);
    let mut range_values = vec![0.0f32; range_len];
    for (range, &offset) in ranges.iter().zip(&range_offsets) {
        range_values[offset] = range.max;
        range_values[offset + 1..offset + 1 + range.channel_max.len()].copy_from_slice(&range.channel_max);
    }
    let range_buffer = storage_from_f32(ctx, "calibration ranges", &range_values)?;
    let count_lengths: Vec<usize> = range_lengths.iter().map(|rows| rows * bins).collect();
    let (count_offsets, count_len) = regions(ctx, &count_lengths);
    let counts = storage_zeroed(ctx, "calibration histograms", count_len)?;
    let plan = AnnPlan::compile_observed(ctx, kernels, graph, batch, &nodes, |node, value| {
        let layer = layer_of(node);
        let ranges = binding(&range_buffer, range_offsets[layer], range_lengths[layer]);
        let stats = binding(&counts, count_offsets[layer], count_lengths[layer]);
        let histogram = HistogramBins { bins, ranges, stats };
        Ok(vec![histogram_step(ctx, kernels, shapes[layer], batch, value, &run_info, histogram)?])
    })?;
    let mut stats: Vec<LayerStats> = ranges.iter().map(|range| LayerStats::new(range, bins)).collect();
    // A u32 bin may overflow only if more values than u32::MAX were counted since the last
    // readback: read back (and clear) before that can happen.
    let largest_layer = shapes.iter().map(|s| s.len()).max().unwrap_or(1).max(1) as u64;
    let batches_per_readback = (u64::from(u32::MAX) / (batch as u64 * largest_layer)).max(1);
    let mut pending = 0u64;
    let mut start = 0;
    while start < total {
        let count = set.batch(start, batch, &mut pixels);
        ctx.checked("calibration pass 2 (histograms)", || {
            ctx.queue.write_buffer(&run_info, 0, bytemuck::bytes_of(&(count as u32)));
            pending += 1;
            let last = start + count >= total;
            if pending < batches_per_readback && !last {
                return submit_and_read(ctx, plan.encode(ctx, &pixels, count), &run_info, 0, 1).map(drop);
            }
            let mut encoder = plan.encode(ctx, &pixels, count);
            let words = {
                // Copy out, then clear for the next batches, in the same submission.
                let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("calibration histogram copy"),
                    size: (count_len * 4) as u64,
                    usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
                encoder.copy_buffer_to_buffer(&counts, 0, &staging, 0, (count_len * 4) as u64);
                encoder.clear_buffer(&counts, 0, None);
                submit_and_read(ctx, encoder, &staging, 0, count_len)?
            };
            pending = 0;
            for ((layer, &offset), shape) in stats.iter_mut().zip(&count_offsets).zip(&shapes) {
                let layer_words = &words[offset..offset + bins];
                let channel_words = &words[offset + bins..offset + (1 + shape.channels) * bins];
                for (count, word) in layer.histogram.counts.iter_mut().zip(layer_words) {
                    *count += u64::from(word.to_bits());
                }
                for (count, word) in layer.channel_histogram.counts.iter_mut().zip(channel_words) {
                    *count += u64::from(word.to_bits());
                }
            }
            Ok(())
        })?;
        start += count;
        progress(total + start);
    }
    Ok(stats)
}
