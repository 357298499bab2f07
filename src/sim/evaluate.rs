//! Accuracy of a network over a whole dataset: batches of normalized images through a
//! compiled [`AnnPlan`], arg-max of the logits against the labels.

use crate::data::cifar::Dataset;
use crate::gpu::{GpuContext, GpuError};
use crate::model::normalize::Normalization;
use crate::reference::ops::argmax_rows;

use super::AnnPlan;

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
