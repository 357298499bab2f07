//! Whole datasets on the CPU backend, through the dataset loops every backend shares
//! ([`crate::sim::evaluate`]): the ANN batch by batch, the SNN chunk by chunk (a chunk's
//! images go through the network layer-major together).

use std::convert::Infallible;

use crate::data::cifar::Dataset;
use crate::model::normalize::Normalization;
use crate::sim::evaluate::{ann_accuracy, snn_accuracy};
use crate::sim::{AnnAccuracy, SnnAccuracy, SnnBatchResult};

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
    progress: impl FnMut(usize),
) -> AnnAccuracy {
    let classes = graph.shapes[graph.output].len();
    let logits = |images: &[f32], count: usize| -> Result<_, Infallible> {
        Ok(forward(graph, to_nhwc(images, graph.shapes[0], count), count, |_, _| {}))
    };
    match ann_accuracy(dataset, normalization, limit, batch, classes, logits, progress) {
        Ok(accuracy) => accuracy,
        Err(never) => match never {},
    }
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
    progress: impl FnMut(usize),
) -> Result<(SnnAccuracy, ConvStats), CpuError> {
    let mut stats = ConvStats::default();
    let run = |images: &[f32], labels: &[u32], count: usize| -> Result<SnnBatchResult, CpuError> {
        let (result, chunk_stats) = snn.run_with_stats(images, labels, count, timesteps)?;
        stats.event += chunk_stats.event;
        stats.dense += chunk_stats.dense;
        stats.density_sum += chunk_stats.density_sum;
        Ok(result)
    };
    let accuracy = snn_accuracy(dataset, normalization, limit, timesteps, chunk, run, progress)?;
    Ok((accuracy, stats))
}
