//! The benchmark job: how fast a backend simulates a converted network, in image-timesteps
//! per second, and how fast it runs the ANN, on real images. Calibration and conversion are
//! not timed; the simulation and the ANN pass are.

use std::time::Instant;

use crate::backends::{check_images, Backend};
use crate::convert::energy::{ann_operations, EnergyModel};
use crate::convert::fold_batch_norm;
use crate::convert::snn::SpikingNetwork;
use crate::data::cifar::Dataset;
use crate::engine::EvaluationSet;
use crate::model::Network;
use crate::pipeline::DEFAULT_MAX_GPU_BATCH;
use crate::report::profile::kernel_times;
use crate::report::BenchReport;
use crate::Error;

use super::sweep::curve;

/// What to time: one converted network (and its checkpoint's ANN) on all of a dataset.
pub struct BenchJob<'a> {
    pub network: &'a Network,
    pub snn: &'a SpikingNetwork,
    pub dataset: &'a Dataset,
    pub timesteps: usize,
    /// Images per batch (`None`: the backend's choice).
    pub batch: Option<usize>,
    /// The device's fp32 peak in TFLOP/s, when known.
    pub peak_tflops: Option<f64>,
    /// Also time one chunk node by node with GPU timestamps (wgpu backend only).
    pub profile: bool,
    /// The prices of the energy estimate.
    pub energy: EnergyModel,
}

/// Runs the benchmark on `backend`.
pub fn bench(backend: &Backend, job: &BenchJob<'_>) -> Result<BenchReport, Error> {
    let BenchJob { network, snn, dataset, timesteps, .. } = *job;
    if job.profile && !backend.has_gpu_timestamps() {
        return Err(Error::Usage(format!(
            "--profile times GPU passes with timestamp queries: {} has none (use --backend gpu on an adapter that offers them)",
            backend.describe()
        )));
    }
    check_images(&snn.graph, dataset)?;
    let images = dataset.len();
    let set = EvaluationSet::new(dataset, &network.normalization, images);

    let graph = fold_batch_norm(&network.graph);
    let ann_batch = backend.ann_batch(&graph, job.batch, DEFAULT_MAX_GPU_BATCH, images)?;
    let started = Instant::now();
    let ann = backend.evaluate_ann(&graph, set, ann_batch, |_| {})?;
    let ann_seconds = started.elapsed().as_secs_f64();

    let batch = backend.snn_batch(snn, timesteps, job.batch, DEFAULT_MAX_GPU_BATCH, images)?;
    let started = Instant::now();
    let (result, stats) = backend.evaluate_snn_with_stats(snn, set, timesteps, batch, |_| {})?;
    let seconds = started.elapsed().as_secs_f64();

    let profile = match job.profile {
        true => Some(kernel_times(&backend.profile_snn(snn, set, timesteps, stats.batch)?)),
        false => None,
    };
    let conv = stats.convolutions.as_ref();
    let image_timesteps = (images * timesteps) as f64;
    // The same activity and operations a sweep reports for this network.
    let curve = curve(snn, &result.correct, &result.spike_totals, timesteps, images, seconds);
    let spikes: u64 = result.spike_totals.iter().sum();
    let neurons: usize = curve.layers.iter().map(|l| l.neurons).sum();
    let macs_per_second = snn.graph.macs_per_image() as f64 * image_timesteps / seconds;
    Ok(BenchReport {
        model: network.path.display().to_string(),
        backend: backend.name().to_string(),
        device: backend.describe(),
        threshold_method: snn.threshold_method.clone(),
        timesteps,
        images,
        batch: stats.batch,
        layers: snn.graph.weighted_layers() + snn.layers.len(),
        seconds,
        image_timesteps_per_second: image_timesteps / seconds,
        gmac_per_second: macs_per_second / 1e9,
        fraction_of_peak: job.peak_tflops.map(|peak| 2.0 * macs_per_second / (peak * 1e12)),
        peak_tflops: job.peak_tflops,
        synops_per_image_timestep: curve.synops_per_image() / timesteps as f64,
        firing_rate: spikes as f64 / (neurons as f64 * image_timesteps),
        snn_energy_uj_per_image: job.energy.microjoules(&curve.operations.expect("curve() counts the operations")),
        ann_energy_uj_per_image: job.energy.microjoules(&ann_operations(&graph)),
        event_convolutions: conv.map(|s| s.event),
        dispatches_per_chunk: stats.dispatches_per_chunk,
        dense_convolutions: conv.map(|s| s.dense),
        mean_input_density: conv.map(|s| s.density_sum / (s.event + s.dense).max(1) as f64),
        correct_at_t: result.correct.last().copied().unwrap_or(0),
        ann_batch,
        ann_images_per_second: images as f64 / ann_seconds,
        ann_correct: ann.correct,
        profile,
    })
}
