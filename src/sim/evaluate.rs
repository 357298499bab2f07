//! Accuracy of a network over a whole dataset: batches of normalized images through a
//! backend's run of one batch, arg-max of the logits (or the SNN's per-step counts)
//! against the labels. [`ann_accuracy`] and [`snn_accuracy`] are the dataset loops every
//! backend shares; [`evaluate_ann`] and [`evaluate_snn`] run them on compiled GPU plans.

use crate::data::cifar::Dataset;
use crate::gpu::{GpuContext, GpuError};
use crate::model::normalize::Normalization;
use crate::reference::ops::argmax_rows;

use super::{AnnPlan, SnnBatchResult, SnnPlan};

/// Correct predictions of an ANN over the first `images` images of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnAccuracy {
    pub images: usize,
    pub correct: usize,
    /// Predicted class of every image, in dataset order.
    pub predictions: Vec<usize>,
}

/// The ANN's accuracy over the first `limit` images of `dataset` (all when `limit` exceeds
/// it), `batch` normalized NCHW images at a time through `logits(images, count)`, which
/// returns `count × classes` logits; `progress` gets the images done so far.
pub fn ann_accuracy<E>(
    dataset: &Dataset,
    normalization: &Normalization,
    limit: usize,
    batch: usize,
    classes: usize,
    mut logits: impl FnMut(&[f32], usize) -> Result<Vec<f32>, E>,
    mut progress: impl FnMut(usize),
) -> Result<AnnAccuracy, E> {
    let total = limit.min(dataset.len());
    let mut images = Vec::new();
    let mut predictions = Vec::with_capacity(total);
    let mut correct = 0;
    let mut start = 0;
    while start < total {
        let count = dataset.normalized_batch(start, batch.max(1).min(total - start), normalization, &mut images);
        for (offset, predicted) in argmax_rows(&logits(&images, count)?, classes).into_iter().enumerate() {
            correct += usize::from(usize::from(dataset.labels[start + offset]) == predicted);
            predictions.push(predicted);
        }
        start += count;
        progress(start);
    }
    Ok(AnnAccuracy { images: total, correct, predictions })
}

/// Runs `plan` over the first `limit` images of `dataset` (all when `limit` exceeds it),
/// one plan batch per submission; `progress` is called with the images done so far.
pub fn evaluate_ann(
    ctx: &GpuContext,
    plan: &AnnPlan,
    dataset: &Dataset,
    normalization: &Normalization,
    limit: usize,
    progress: impl FnMut(usize),
) -> Result<AnnAccuracy, GpuError> {
    let logits = |images: &[f32], count: usize| plan.run(ctx, images, count);
    ann_accuracy(dataset, normalization, limit, plan.batch(), plan.num_classes(), logits, progress)
}

/// Per-timestep accuracy and spike totals of an SNN over the first images of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnnAccuracy {
    pub images: usize,
    /// Correct predictions after t + 1 timesteps, summed over all batches.
    pub correct: Vec<usize>,
    /// Spikes per IF layer over all images and timesteps.
    pub spike_totals: Vec<u64>,
    /// Predicted class of every image after the last timestep, in dataset order (empty
    /// after 0 timesteps).
    pub predictions: Vec<usize>,
}

/// The SNN's accuracy after each of `timesteps` steps over the first `limit` images of
/// `dataset`, `batch` normalized NCHW images at a time through `run(images, labels,
/// count)`; `progress` gets the images done so far.
pub fn snn_accuracy<E>(
    dataset: &Dataset,
    normalization: &Normalization,
    limit: usize,
    timesteps: usize,
    batch: usize,
    mut run: impl FnMut(&[f32], &[u32], usize) -> Result<SnnBatchResult, E>,
    mut progress: impl FnMut(usize),
) -> Result<SnnAccuracy, E> {
    let total = limit.min(dataset.len());
    let mut images = Vec::new();
    let mut correct = vec![0usize; timesteps];
    let mut spike_totals: Vec<u64> = Vec::new();
    let mut predictions = Vec::with_capacity(total);
    let mut start = 0;
    while start < total {
        let count = dataset.normalized_batch(start, batch.max(1).min(total - start), normalization, &mut images);
        let labels: Vec<u32> = dataset.labels[start..start + count].iter().map(|&l| u32::from(l)).collect();
        let result = run(&images, &labels, count)?;
        for (sum, &c) in correct.iter_mut().zip(&result.correct) {
            *sum += c as usize;
        }
        spike_totals.resize(result.spike_totals.len(), 0);
        for (sum, &s) in spike_totals.iter_mut().zip(&result.spike_totals) {
            *sum += s;
        }
        predictions.extend(result.predictions);
        start += count;
        progress(start);
    }
    Ok(SnnAccuracy { images: total, correct, spike_totals, predictions })
}

/// Simulates `plan` for `timesteps` steps over the first `limit` images of `dataset`, one
/// plan batch at a time; `progress` is called with the images done so far.
pub fn evaluate_snn(
    ctx: &GpuContext,
    plan: &SnnPlan,
    dataset: &Dataset,
    normalization: &Normalization,
    limit: usize,
    timesteps: usize,
    progress: impl FnMut(usize),
) -> Result<SnnAccuracy, GpuError> {
    let run = |images: &[f32], labels: &[u32], count: usize| plan.run(ctx, images, labels, count, timesteps);
    snn_accuracy(dataset, normalization, limit, timesteps, plan.batch(), run, progress)
}
