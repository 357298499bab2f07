//! What a backend's runs return, the same on every backend: accuracies over a dataset, one
//! batch's SNN result, how an engine ran. Reports read only these.

use serde::Serialize;

/// Correct predictions of an ANN over the first `images` images of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnAccuracy {
    pub images: usize,
    pub correct: usize,
    /// Predicted class of every image, in dataset order.
    pub predictions: Vec<usize>,
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

/// What one simulation of a batch produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnnBatchResult {
    /// `correct[t]`: images (of the `count` given) classified correctly after `t + 1` steps.
    pub correct: Vec<u32>,
    /// Spikes per IF layer (in [`crate::convert::snn::SpikingNetwork::layers`] order) over
    /// all steps, summed over the `count` images only.
    pub spike_totals: Vec<u64>,
    /// Class of each of the `count` images after the last step: the argmax of the
    /// accumulated output, first index on ties (the readout's rule); empty after 0 steps.
    pub predictions: Vec<usize>,
}

/// What the convolutions of one run did on the CPU backend: how many ran event-driven and
/// densely, and the densities they saw, for reports and benchmarks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvStats {
    pub event: usize,
    pub dense: usize,
    /// Sum of the measured input densities of per-timestep convolutions.
    pub density_sum: f64,
}

impl ConvStats {
    /// Adds another run's counts.
    pub fn add(&mut self, other: &ConvStats) {
        self.event += other.event;
        self.dense += other.dense;
        self.density_sum += other.density_sum;
    }
}

/// How a simulation ran.
#[derive(Clone, Debug)]
pub struct EngineStats {
    /// Images per chunk (on a GPU, after any halving for memory).
    pub batch: usize,
    /// CPU backend: how the convolutions ran (event-driven or dense).
    pub convolutions: Option<ConvStats>,
    /// wgpu backend: dispatches recorded per chunk of images.
    pub dispatches_per_chunk: Option<usize>,
}

/// The GPU time of one node's compute pass in a profiled chunk.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PassTime {
    pub node: String,
    /// The kernels of its dispatches, in order (their names, e.g. `IfScanCounted`).
    pub kernels: Vec<String>,
    pub nanoseconds: f64,
}

/// Index of the largest value in each row of `batch × classes` scores (first on ties): the
/// class every backend's readout predicts.
pub fn argmax_rows(scores: &[f32], classes: usize) -> Vec<usize> {
    scores
        .chunks_exact(classes)
        .map(|row| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}
