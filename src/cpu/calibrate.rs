//! Calibration statistics on the CPU: the two passes of [`crate::convert::stats`] over the
//! ANN's ReLU activations ([`super::ann::forward`] with an observer), over NHWC values.
//! Equal to [`crate::reference::calibration`] on the same activations (maxima exactly,
//! histogram counts exactly: both only count values).

use crate::convert::stats::{merge_ranges, LayerRange, LayerStats};
use crate::convert::ConvertError;
use crate::data::cifar::Dataset;
use crate::model::normalize::Normalization;

use super::ann::forward;
use super::lower::CpuGraph;
use super::ops::to_nhwc;

/// Two-pass calibration of every ReLU node of the BN-folded graph over the first `images`
/// images of `dataset`, `batch` at a time: per-channel maxima, then layer and per-channel
/// histograms with `bins` bins over [0, max]. One [`LayerStats`] per ReLU node in
/// topological order. `progress` gets the images done over both passes (`0..=2 × images`).
pub fn calibrate(
    graph: &CpuGraph,
    dataset: &Dataset,
    normalization: &Normalization,
    images: usize,
    batch: usize,
    bins: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<LayerStats>, ConvertError> {
    let images = images.min(dataset.len());
    let batch = batch.max(1);
    let relus = relu_nodes_of(graph);
    let slot = |node: usize| relus.iter().position(|&r| r == node).expect("observed nodes are ReLUs");
    let channels = |node: usize| graph.shapes[node].channels;
    let mut buffer = Vec::new();

    let mut ranges: Vec<LayerRange> = relus.iter().map(|&node| LayerRange::new(node, channels(node))).collect();
    for start in (0..images).step_by(batch) {
        let count = dataset.normalized_batch(start, batch.min(images - start), normalization, &mut buffer);
        let mut batch_ranges: Vec<LayerRange> =
            relus.iter().map(|&node| LayerRange::new(node, channels(node))).collect();
        forward(graph, to_nhwc(&buffer, graph.shapes[0], count), count, |node, values| {
            let range = &mut batch_ranges[slot(node)];
            let c = range.channel_max.len();
            for pixel in values.chunks_exact(c) {
                for (m, &v) in range.channel_max.iter_mut().zip(pixel) {
                    *m = m.max(v);
                }
            }
            range.max = range.channel_max.iter().fold(0.0f32, |m, &v| m.max(v));
        });
        merge_ranges(&mut ranges, &batch_ranges)?;
        progress(start + count);
    }

    let mut stats: Vec<LayerStats> = ranges.iter().map(|range| LayerStats::new(range, bins)).collect();
    for start in (0..images).step_by(batch) {
        let count = dataset.normalized_batch(start, batch.min(images - start), normalization, &mut buffer);
        forward(graph, to_nhwc(&buffer, graph.shapes[0], count), count, |node, values| {
            let layer = &mut stats[slot(node)];
            let c = layer.channel_max.len();
            for pixel in values.chunks_exact(c) {
                for (channel, &v) in pixel.iter().enumerate() {
                    layer.add(channel, v);
                }
            }
        });
        progress(images + start + count);
    }
    Ok(stats)
}

/// The ReLU nodes of a lowered graph, in topological order.
fn relu_nodes_of(graph: &CpuGraph) -> Vec<usize> {
    graph.ops.iter().enumerate().filter(|(_, op)| matches!(op, super::lower::CpuOp::Relu)).map(|(id, _)| id).collect()
}
