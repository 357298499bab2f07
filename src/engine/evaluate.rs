//! Accuracy of a network over a whole dataset: batches of normalized images through a
//! backend's run of one batch, arg-max of the logits (or the SNN's per-step counts)
//! against the labels. [`ann_accuracy`] and [`snn_accuracy`] are the dataset loops every
//! backend shares.

use crate::data::cifar::Dataset;
use crate::model::normalize::Normalization;

use super::results::{argmax_rows, AnnAccuracy, SnnAccuracy, SnnBatchResult};

/// The images a job evaluates: the first `limit` images of `dataset` (all when `limit`
/// exceeds it), normalized with `normalization`.
#[derive(Clone, Copy, Debug)]
pub struct EvaluationSet<'a> {
    pub dataset: &'a Dataset,
    pub normalization: &'a Normalization,
    pub limit: usize,
}

impl<'a> EvaluationSet<'a> {
    pub fn new(dataset: &'a Dataset, normalization: &'a Normalization, limit: usize) -> Self {
        Self { dataset, normalization, limit }
    }

    /// Images evaluated: the limit, or the whole dataset when it is smaller.
    pub fn images(&self) -> usize {
        self.limit.min(self.dataset.len())
    }

    /// Writes images `start..start + count` (at most to the limit) normalized, NCHW, into
    /// `images`; returns how many it wrote.
    pub fn batch(&self, start: usize, count: usize, images: &mut Vec<f32>) -> usize {
        let count = count.max(1).min(self.images().saturating_sub(start));
        self.dataset.normalized_batch(start, count, self.normalization, images)
    }

    /// Labels of images `start..start + count`.
    pub fn labels(&self, start: usize, count: usize) -> Vec<u32> {
        self.dataset.labels[start..start + count].iter().map(|&l| u32::from(l)).collect()
    }
}

/// The ANN's accuracy over `set`, `batch` normalized NCHW images at a time through
/// `logits(images, count)`, which returns `count × classes` logits; `progress` gets the
/// images done so far.
pub fn ann_accuracy<E>(
    set: EvaluationSet<'_>,
    batch: usize,
    classes: usize,
    mut logits: impl FnMut(&[f32], usize) -> Result<Vec<f32>, E>,
    mut progress: impl FnMut(usize),
) -> Result<AnnAccuracy, E> {
    let total = set.images();
    let mut images = Vec::new();
    let mut predictions = Vec::with_capacity(total);
    let mut correct = 0;
    let mut start = 0;
    while start < total {
        let count = set.batch(start, batch, &mut images);
        for (offset, predicted) in argmax_rows(&logits(&images, count)?, classes).into_iter().enumerate() {
            correct += usize::from(usize::from(set.dataset.labels[start + offset]) == predicted);
            predictions.push(predicted);
        }
        start += count;
        progress(start);
    }
    Ok(AnnAccuracy { images: total, correct, predictions })
}

/// The SNN's accuracy after each of `timesteps` steps over `set`, `batch` normalized NCHW
/// images at a time through `run(images, labels, count)`; `progress` gets the images done
/// so far.
pub fn snn_accuracy<E>(
    set: EvaluationSet<'_>,
    timesteps: usize,
    batch: usize,
    mut run: impl FnMut(&[f32], &[u32], usize) -> Result<SnnBatchResult, E>,
    mut progress: impl FnMut(usize),
) -> Result<SnnAccuracy, E> {
    let total = set.images();
    let mut images = Vec::new();
    let mut correct = vec![0usize; timesteps];
    let mut spike_totals: Vec<u64> = Vec::new();
    let mut predictions = Vec::with_capacity(total);
    let mut start = 0;
    while start < total {
        let count = set.batch(start, batch, &mut images);
        let result = run(&images, &set.labels(start, count), count)?;
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
