//! Whole datasets on the CPU backend: the ANN batch by batch, the SNN chunk by chunk
//! (a chunk's images go through the network layer-major together).

use crate::data::cifar::Dataset;
use crate::model::normalize::Normalization;
use crate::reference::ops::argmax_rows;
use crate::sim::{AnnAccuracy, SnnAccuracy};

use super::ann::forward;
use super::lower::CpuGraph;
use super::ops::to_nhwc;
use super::snn::{ConvStats, CpuSnn};
use super::CpuError;

/// Correct ANN predictions over the first `limit` images of `dataset`, `batch` at a time;
/// `progress` gets the images done.
pub fn evaluate_ann(
    graph: &CpuGraph,
    dataset: &Dataset,
    normalization: &Normalization,
    limit: usize,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> AnnAccuracy {
    let total = limit.min(dataset.len());
    let classes = graph.shapes[graph.output].len();
    let mut images = Vec::new();
    let mut predictions = Vec::with_capacity(total);
    let mut correct = 0;
    let mut start = 0;
    while start < total {
        let count = dataset.normalized_batch(start, batch.max(1).min(total - start), normalization, &mut images);
        let logits = forward(graph, to_nhwc(&images, graph.shapes[0], count), count, |_, _| {});
        for (offset, predicted) in argmax_rows(&logits, classes).into_iter().enumerate() {
            correct += usize::from(usize::from(dataset.labels[start + offset]) == predicted);
            predictions.push(predicted);
        }
        start += count;
        progress(start);
    }
    AnnAccuracy { images: total, correct, predictions }
}

/// Simulates `snn` for `timesteps` steps over the first `limit` images of `dataset`,
/// `chunk` images at a time; `progress` gets the images done. Also returns how the
/// convolutions ran, summed over chunks.
pub fn evaluate_snn(
    snn: &CpuSnn,
    dataset: &Dataset,
    normalization: &Normalization,
    limit: usize,
    timesteps: usize,
    chunk: usize,
    mut progress: impl FnMut(usize),
) -> Result<(SnnAccuracy, ConvStats), CpuError> {
    let total = limit.min(dataset.len());
    let mut images = Vec::new();
    let mut correct = vec![0usize; timesteps];
    let mut spike_totals: Vec<u64> = Vec::new();
    let mut predictions = Vec::with_capacity(total);
    let mut stats = ConvStats::default();
    let mut start = 0;
    while start < total {
        let count = dataset.normalized_batch(start, chunk.max(1).min(total - start), normalization, &mut images);
        let labels: Vec<u32> = dataset.labels[start..start + count].iter().map(|&l| u32::from(l)).collect();
        let (result, chunk_stats) = snn.run_with_stats(&images, &labels, count, timesteps)?;
        for (sum, &c) in correct.iter_mut().zip(&result.correct) {
            *sum += c as usize;
        }
        spike_totals.resize(result.spike_totals.len(), 0);
        for (sum, &s) in spike_totals.iter_mut().zip(&result.spike_totals) {
            *sum += s;
        }
        stats.event += chunk_stats.event;
        stats.dense += chunk_stats.dense;
        stats.density_sum += chunk_stats.density_sum;
        predictions.extend(result.predictions);
        start += count;
        progress(start);
    }
    Ok((SnnAccuracy { images: total, correct, spike_totals, predictions }, stats))
}
