//! CPU reference of the calibration kernels: the two passes of [`crate::convert::stats`]
//! over the ANN's ReLU activations (the IF layers' future input, after the ReLU).
//!
//! Per-kernel references ([`observe_range`], [`observe_histogram`]) work on one layer's
//! activation of one batch; [`calibration_ranges`], [`calibration_histograms`] and
//! [`calibrate`] run them over a whole graph with the CPU forward pass.

use crate::convert::stats::{LayerRange, LayerStats};
use crate::convert::ConvertError;
use crate::model::graph::{Graph, NodeId, Op, Shape};

use super::forward::forward_all;

/// ReLU nodes of `graph` in topological order: the future IF layers.
pub fn relu_nodes(graph: &Graph) -> Vec<NodeId> {
    graph.relu_nodes()
}

/// Pass 1 for one layer: largest value and largest value per channel of `activation`
/// (`batch × shape`, NCHW). Maxima start at 0; NaN is ignored.
pub fn observe_range(node: NodeId, activation: &[f32], shape: Shape, batch: usize) -> LayerRange {
    assert_eq!(activation.len(), batch * shape.len(), "activation length");
    let mut range = LayerRange::new(node, shape.channels);
    for image in activation.chunks_exact(shape.len().max(1)) {
        for (c, plane) in image.chunks_exact(shape.plane().max(1)).enumerate() {
            let channel_max = &mut range.channel_max[c];
            *channel_max = plane.iter().fold(*channel_max, |m, &v| m.max(v));
        }
    }
    range.max = range.channel_max.iter().fold(0.0f32, |m, &v| m.max(v));
    range
}

/// Pass 2 for one layer: counts the positive values of `activation` (`batch × shape`,
/// NCHW) in `stats`' layer-wide and per-channel histograms.
pub fn observe_histogram(stats: &mut LayerStats, activation: &[f32], shape: Shape, batch: usize) {
    assert_eq!(activation.len(), batch * shape.len(), "activation length");
    assert_eq!(stats.channel_max.len(), shape.channels, "channel count");
    for image in activation.chunks_exact(shape.len().max(1)) {
        for (c, plane) in image.chunks_exact(shape.plane().max(1)).enumerate() {
            plane.iter().for_each(|&v| stats.add(c, v));
        }
    }
}

/// Pass 1 over a graph: the range of every ReLU node for one batch of normalized images.
pub fn calibration_ranges(graph: &Graph, input: &[f32], batch: usize) -> Vec<LayerRange> {
    let values = forward_all(graph, input, batch);
    relu_nodes(graph).into_iter().map(|id| observe_range(id, &values[id], graph.node(id).shape, batch)).collect()
}

/// Pass 2 over a graph: histograms of one batch over the (merged) ranges of pass 1.
pub fn calibration_histograms(
    graph: &Graph,
    input: &[f32],
    batch: usize,
    ranges: &[LayerRange],
    bins: usize,
) -> Result<Vec<LayerStats>, ConvertError> {
    let values = forward_all(graph, input, batch);
    ranges
        .iter()
        .map(|range| {
            let node = graph.nodes().get(range.node).filter(|n| matches!(n.op, Op::Relu)).ok_or_else(|| {
                ConvertError::StatsMismatch(format!("node {} is not a ReLU node of this graph", range.node))
            })?;
            if node.shape.channels != range.channel_max.len() {
                return Err(ConvertError::StatsMismatch(format!(
                    "range of `{}` has {} channels, the node has {}",
                    node.name,
                    range.channel_max.len(),
                    node.shape.channels
                )));
            }
            let mut stats = LayerStats::new(range, bins);
            observe_histogram(&mut stats, &values[range.node], node.shape, batch);
            Ok(stats)
        })
        .collect()
}

/// Both passes over a single batch (ranges from this batch, then its histograms).
pub fn calibrate(graph: &Graph, input: &[f32], batch: usize, bins: usize) -> Vec<LayerStats> {
    let ranges = calibration_ranges(graph, input, batch);
    calibration_histograms(graph, input, batch, &ranges, bins).expect("ranges come from this graph")
}
