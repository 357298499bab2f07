//! Whole datasets on the CPU backend, through the dataset loops every backend shares
//! ([`crate::engine::evaluate`]): the ANN batch by batch, the SNN chunk by chunk (a chunk's
//! images go through the network layer-major together).

use std::convert::Infallible;

use crate::engine::{ann_accuracy, snn_accuracy, AnnAccuracy, ConvStats, EvaluationSet, SnnAccuracy, SnnBatchResult};

use super::ann::forward;
use super::lower::CpuGraph;
use super::ops::to_nhwc;
use super::snn::CpuSnn;
use super::CpuError;

/// Correct ANN predictions over `set`, `batch` images at a time; `progress` gets the
/// images done.
pub fn evaluate_ann(
    graph: &CpuGraph,
    set: EvaluationSet<'_>,
    batch: usize,
    progress: impl FnMut(usize),
) -> AnnAccuracy {
    let classes = graph.shapes[graph.output].len();
    let logits = |images: &[f32], count: usize| -> Result<_, Infallible> {
        Ok(forward(graph, to_nhwc(images, graph.shapes[0], count), count, |_, _| {}))
    };
    match ann_accuracy(set, batch, classes, logits, progress) {
        Ok(accuracy) => accuracy,
        Err(never) => match never {},
    }
}

/// Simulates `snn` for `timesteps` steps over `set`, `chunk` images at a time; `progress`
/// gets the images done. Also returns how the convolutions ran, summed over chunks.
pub fn evaluate_snn(
    snn: &CpuSnn,
    set: EvaluationSet<'_>,
    timesteps: usize,
    chunk: usize,
    progress: impl FnMut(usize),
) -> Result<(SnnAccuracy, ConvStats), CpuError> {
    let mut stats = ConvStats::default();
    let run = |images: &[f32], labels: &[u32], count: usize| -> Result<SnnBatchResult, CpuError> {
        let (result, chunk_stats) = snn.run_with_stats(images, labels, count, timesteps)?;
        stats.add(&chunk_stats);
        Ok(result)
    };
    let accuracy = snn_accuracy(set, timesteps, chunk, run, progress)?;
    Ok((accuracy, stats))
}
