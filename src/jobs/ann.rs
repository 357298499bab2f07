//! The ANN job: the checkpoint's (BN-folded) network on every image of a dataset, its
//! accuracy and throughput.

use std::time::Instant;

use crate::backends::{check_images, Backend};
use crate::convert::fold_batch_norm;
use crate::data::cifar::Dataset;
use crate::engine::EvaluationSet;
use crate::model::Network;
use crate::pipeline::DEFAULT_MAX_GPU_BATCH;
use crate::report::AnnReport;
use crate::Error;

/// What to evaluate: a network on all of a dataset.
pub struct AnnJob<'a> {
    pub network: &'a Network,
    pub dataset: &'a Dataset,
    /// How the report names the data (its file).
    pub data: String,
    /// Images per batch (`None`: the backend's choice).
    pub batch: Option<usize>,
}

/// Evaluates the job's ANN on `backend`; `progress` gets the images done. The report also
/// carries every image's prediction.
pub fn ann(backend: &Backend, job: &AnnJob<'_>, progress: impl FnMut(usize)) -> Result<AnnOutcome, Error> {
    let AnnJob { network, dataset, .. } = *job;
    check_images(&network.graph, dataset).map_err(|e| e.during(network.path.display().to_string()))?;
    let graph = fold_batch_norm(&network.graph);
    let images = dataset.len();
    let batch = backend.ann_batch(&graph, job.batch, DEFAULT_MAX_GPU_BATCH, images)?;
    let started = Instant::now();
    let accuracy =
        backend.evaluate_ann(&graph, EvaluationSet::new(dataset, &network.normalization, images), batch, progress)?;
    let seconds = started.elapsed().as_secs_f64();
    let report = AnnReport {
        model: network.path.display().to_string(),
        data: job.data.clone(),
        backend: backend.name().to_string(),
        adapter: backend.describe(),
        arch: network.info.name(),
        network: network.info.describe(),
        depth: network.info.depth(),
        num_classes: network.info.num_classes(),
        images: accuracy.images,
        correct: accuracy.correct,
        accuracy: accuracy.correct as f64 / accuracy.images.max(1) as f64,
        batch,
        seconds,
        images_per_second: accuracy.images as f64 / seconds.max(f64::MIN_POSITIVE),
    };
    Ok(AnnOutcome { report, predictions: accuracy.predictions })
}

/// What the ANN job measured: the report and every image's predicted class.
#[derive(Clone, Debug)]
pub struct AnnOutcome {
    pub report: AnnReport,
    pub predictions: Vec<usize>,
}
