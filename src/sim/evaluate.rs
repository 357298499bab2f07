//! Accuracy of a network over a whole dataset: batches of normalized images through a
//! compiled [`AnnPlan`], arg-max of the logits against the labels.

use crate::data::cifar::Dataset;
use crate::gpu::{GpuContext, GpuError};
use crate::model::normalize::Normalization;
use crate::reference::ops::argmax_rows;

use super::{AnnPlan, SnnPlan};

/// Correct predictions of an ANN over the first `images` images of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnAccuracy {
    pub images: usize,
    pub correct: usize,
    /// Predicted class of every image, in dataset order.
    pub predictions: Vec<usize>,
}

/// Runs `plan` over the first `limit` images of `dataset` (all when `limit` exceeds it),
/// one plan batch per submission; `progress` is called with the images done so far.
pub fn evaluate_ann(
    ctx: &GpuContext,
    plan: &AnnPlan,
    dataset: &Dataset,
    normalization: &Normalization,
    limit: usize,
    mut progress: impl FnMut(usize),
) -> Result<AnnAccuracy, GpuError> {
    let total = limit.min(dataset.len());
    let classes = plan.num_classes();
    let mut images = Vec::new();
    let mut predictions = Vec::with_capacity(total);
    let mut correct = 0;
    let mut start = 0;
    while start < total {
        let count = dataset.normalized_batch(start, plan.batch().min(total - start), normalization, &mut images);
        let logits = plan.run(ctx, &images, count)?;
        for (offset, predicted) in argmax_rows(&logits, classes).into_iter().enumerate() {
            if dataset.labels[start + offset] as usize == predicted {
                correct += 1;
            }
            predictions.push(predicted);
        }
        start += count;
        progress(start);
    }
    Ok(AnnAccuracy { images: total, correct, predictions })
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

/// Simulates `plan` for `timesteps` steps over the first `limit` images of `dataset`, one
/// plan batch at a time; `progress` is called with the images done so far.
pub fn evaluate_snn(
    ctx: &GpuContext,
    plan: &SnnPlan,
    dataset: &Dataset,
    normalization: &Normalization,
    limit: usize,
    timesteps: usize,
    mut progress: impl FnMut(usize),
) -> Result<SnnAccuracy, GpuError> {
    let total = limit.min(dataset.len());
    let mut images = Vec::new();
    let mut correct = vec![0usize; timesteps];
    let mut spike_totals: Vec<u64> = Vec::new();
    let mut predictions = Vec::with_capacity(total);
    let mut start = 0;
    while start < total {
        let count = dataset.normalized_batch(start, plan.batch().min(total - start), normalization, &mut images);
        let labels: Vec<u32> = dataset.labels[start..start + count].iter().map(|&l| u32::from(l)).collect();
        let result = plan.run(ctx, &images, &labels, count, timesteps)?;
        for (sum, &c) in correct.iter_mut().zip(&result.correct) {
            *sum += c as usize;
        }
        if spike_totals.is_empty() {
            spike_totals = vec![0; result.spike_totals.len()];
        }
        for (sum, &s) in spike_totals.iter_mut().zip(&result.spike_totals) {
            *sum += s;
        }
        predictions.extend(result.predictions);
        start += count;
        progress(start);
    }
    Ok(SnnAccuracy { images: total, correct, spike_totals, predictions })
}
