//! Calibration statistics on the CPU: the two passes of [`crate::convert::stats`] over the
//! ANN's ReLU activations ([`super::ann::forward`] with an observer), over NHWC values.
//! Equal to [`crate::reference::calibration`] on the same activations (maxima exactly,
//! histogram counts exactly: both only count values).

use rayon::prelude::*;

use crate::convert::stats::{merge_ranges, LayerRange, LayerStats};
use crate::convert::ConvertError;
use crate::engine::EvaluationSet;

use super::ann::forward;
use super::lower::CpuGraph;
use super::ops::to_nhwc;

/// Two-pass calibration of every ReLU node of the BN-folded graph over the first `images`
/// images of `dataset`, `batch` at a time: per-channel maxima, then layer and per-channel
/// histograms with `bins` bins over [0, max]. One [`LayerStats`] per ReLU node in
/// topological order. `progress` gets the images done over both passes (`0..=2 × images`).
pub fn calibrate(
    graph: &CpuGraph,
    set: EvaluationSet<'_>,
    batch: usize,
    bins: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<LayerStats>, ConvertError> {
    let images = set.images();
    let batch = batch.max(1);
    let relus = relu_nodes_of(graph);
    let slot = |node: usize| relus.iter().position(|&r| r == node).expect("observed nodes are ReLUs");
    let channels = |node: usize| graph.shapes[node].channels;
    let mut buffer = Vec::new();

    let mut ranges: Vec<LayerRange> = relus.iter().map(|&node| LayerRange::new(node, channels(node))).collect();
    for start in (0..images).step_by(batch) {
        let count = set.batch(start, batch, &mut buffer);
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
        let count = set.batch(start, batch, &mut buffer);
        let mut failure = None;
        forward(graph, to_nhwc(&buffer, graph.shapes[0], count), count, |node, values| {
            let layer = &mut stats[slot(node)];
            if let Err(error) = observe_histograms(layer, values, count) {
                failure.get_or_insert(error);
            }
        });
        if let Some(error) = failure {
            return Err(error);
        }
        progress(images + start + count);
    }
    Ok(stats)
}

/// Counts one batch's ReLU outputs (`images` samples, NHWC) into `layer`'s histograms, the
/// images split over threads (each counts into its own empty copy, merged after): counting
/// a ResNet-110's activations one by one took three quarters of a 2048-image calibration.
fn observe_histograms(layer: &mut LayerStats, values: &[f32], images: usize) -> Result<(), ConvertError> {
    let channels = layer.channel_max.len();
    let per_image = values.len() / images.max(1);
    let empty = || {
        let mut stats = layer.clone();
        stats.histogram.clear();
        stats.channel_histogram.clear();
        stats
    };
    let counted = values
        .par_chunks(per_image.max(1))
        // One copy per thread, not per image: a copy is megabytes of counts to merge.
        .with_min_len(images.div_ceil(rayon::current_num_threads()).max(1))
        .fold(empty, |mut stats, image| {
            for pixel in image.chunks_exact(channels) {
                for (channel, &v) in pixel.iter().enumerate() {
                    stats.add(channel, v);
                }
            }
            stats
        })
        .collect::<Vec<_>>();
    counted.iter().try_for_each(|part| layer.merge(part))
}

/// The ReLU nodes of a lowered graph, in topological order.
fn relu_nodes_of(graph: &CpuGraph) -> Vec<usize> {
    graph.ops.iter().enumerate().filter(|(_, op)| matches!(op, super::lower::CpuOp::Relu)).map(|(id, _)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_counted_in_parallel_equal_counting_one_by_one() {
        let (channels, images, pixels) = (3, 5, 7);
        let mut range = LayerRange::new(4, channels);
        range.channel_max = vec![1.0, 2.0, 0.5];
        range.max = 2.0;
        // Zeros, negatives, values on bin edges and past the channel maxima.
        let values: Vec<f32> = (0..channels * images * pixels).map(|i| ((i * 37) % 23) as f32 / 8.0 - 0.5).collect();
        let mut expected = LayerStats::new(&range, 16);
        for pixel in values.chunks_exact(channels) {
            for (channel, &v) in pixel.iter().enumerate() {
                expected.add(channel, v);
            }
        }
        let mut counted = LayerStats::new(&range, 16);
        observe_histograms(&mut counted, &values, images).unwrap();
        observe_histograms(&mut expected.clone(), &values, images).unwrap();
        assert_eq!(counted, expected);
        assert!(counted.histogram.positive_count(0) > 0, "something is counted (test strength)");
    }
}
