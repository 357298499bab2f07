//! The sweep job: every network's accuracy after each of T timesteps on the same images,
//! the ANN's (and, for a quantization-aware network, its quantized ANN's) beside them,
//! per-layer activity, optionally each network's constant-current twin.

use std::time::Instant;

use crate::backends::cpu::constant_current::ConstantCurrentTwin;
use crate::backends::{check_images, Backend};
use crate::convert::energy::{ann_operations, snn_fixed_operations, EnergyModel};
use crate::convert::fold_batch_norm;
use crate::convert::snn::{firing_rate, SpikingNetwork};
use crate::data::cifar::Dataset;
use crate::engine::EvaluationSet;
use crate::model::normalize::Normalization;
use crate::model::Network;
use crate::pipeline::{quantized_ann_accuracy, DEFAULT_MAX_GPU_BATCH};
use crate::report::{method_label, LayerActivity, PredictionTable, QuantizedAnn, SnnCurve, SweepReport};
use crate::Error;

/// What to sweep: converted networks, the images, how far in time.
pub struct SweepJob<'a> {
    /// The networks, simulated one after the other on the same images.
    pub networks: &'a [SpikingNetwork],
    /// Normalization of the images (the networks' checkpoint's).
    pub normalization: &'a Normalization,
    /// The checkpoint the networks were converted from, when there is one (a quantization-
    /// aware checkpoint also gets its quantized ANN measured); `None` for an SNN file.
    pub source: Option<&'a Network>,
    /// How the report names the model and the data (file names).
    pub model: String,
    pub data: String,
    /// The images: all of `dataset` is evaluated (truncate or slice it first).
    pub dataset: &'a Dataset,
    pub timesteps: usize,
    /// Images per batch (`None`: the backend's choice).
    pub batch: Option<usize>,
    /// Also read each network's constant-current twin after T steps (CPU kernels).
    pub constant_currents: bool,
    /// The prices of the energy estimate.
    pub energy: EnergyModel,
}

/// What a sweep measured: the report, every image's prediction after T steps, and each
/// network's spikes per IF layer (integers, so that shards add up exactly).
#[derive(Clone, Debug)]
pub struct SweepOutcome {
    pub report: SweepReport,
    pub predictions: PredictionTable,
    pub spike_totals: Vec<Vec<u64>>,
}

/// Runs `job` on `backend`; `progress(images done over all networks, network name)`.
pub fn sweep(
    backend: &Backend,
    job: &SweepJob<'_>,
    mut progress: impl FnMut(usize, &str),
) -> Result<SweepOutcome, Error> {
    let SweepJob { networks, normalization, dataset, timesteps, .. } = *job;
    let Some(first) = networks.first() else { return Err(Error::Usage("sweep: no network to simulate".into())) };
    let graph = &first.graph;
    check_images(graph, dataset).map_err(|e| e.during(job.model.clone()))?;
    let images = dataset.len();
    let set = EvaluationSet::new(dataset, normalization, images);
    // The ANN as loaded (with its max pools where `--maxpool avg` replaced them in the
    // networks); from an SNN file, the network the file holds.
    let source = job.source.map(|network| fold_batch_norm(&network.graph));
    let ann_graph = source.as_ref().unwrap_or(graph);
    let ann_batch = backend.ann_batch(ann_graph, job.batch, DEFAULT_MAX_GPU_BATCH, images)?;
    let ann = backend.evaluate_ann(ann_graph, set, ann_batch, |_| {})?;
    let quantized_ann = match job.source {
        Some(network) => quantized_ann_accuracy(network, dataset, images, ann_batch)?
            .map(|(activation, accuracy)| QuantizedAnn { activation, correct: accuracy.correct }),
        None => None,
    };

    let started = Instant::now();
    let mut curves = Vec::with_capacity(networks.len());
    let mut columns = Vec::with_capacity(networks.len());
    let mut spike_totals = Vec::with_capacity(networks.len());
    for (index, snn) in networks.iter().enumerate() {
        let batch = backend.snn_batch(snn, timesteps, job.batch, DEFAULT_MAX_GPU_BATCH, images)?;
        let done_before = index * images;
        let simulation = Instant::now();
        let result = backend
            .evaluate_snn(snn, set, timesteps, batch, |done| progress(done_before + done, &snn.threshold_method))?;
        let seconds = simulation.elapsed().as_secs_f64();
        let mut curve = curve(snn, &result.correct, &result.spike_totals, timesteps, images, seconds);
        if job.constant_currents {
            let twin = ConstantCurrentTwin::new(snn, timesteps)?;
            curve.constant_current_correct = Some(twin.evaluate(set, ann_batch).correct);
        }
        curves.push(curve);
        columns.push((method_label(&snn.threshold_method, snn.tuned_for_timesteps), result.predictions));
        spike_totals.push(result.spike_totals);
    }
    let report = SweepReport {
        model: job.model.clone(),
        data: job.data.clone(),
        backend: backend.name().to_string(),
        adapter: backend.describe(),
        images,
        timesteps,
        ann_correct: ann.correct,
        quantized_ann,
        ann_operations: Some(ann_operations(ann_graph)),
        energy_model: job.energy,
        curves,
        seconds: started.elapsed().as_secs_f64(),
    };
    let predictions = PredictionTable {
        timesteps,
        labels: dataset.labels.iter().map(|&label| usize::from(label)).collect(),
        ann: ann.predictions,
        networks: columns,
    };
    Ok(SweepOutcome { report, predictions, spike_totals })
}

/// One network's counts as a report curve with per-layer activity: firing rate and
/// synaptic operations per image from the integer spike totals (so that shards merged by
/// [`super::merge`] give the same numbers as one run).
pub fn curve(
    snn: &SpikingNetwork,
    correct: &[usize],
    spike_totals: &[u64],
    timesteps: usize,
    images: usize,
    seconds: f64,
) -> SnnCurve {
    let layers = snn
        .layer_infos()
        .into_iter()
        .zip(spike_totals)
        .map(|(info, &spikes)| layer_activity(info.name, info.neurons, info.fan_out, spikes, timesteps, images))
        .collect::<Vec<_>>();
    let synops: f64 = layers.iter().map(|l| l.synops_per_image).sum();
    SnnCurve {
        threshold_method: snn.threshold_method.clone(),
        tuned_for_timesteps: snn.tuned_for_timesteps,
        v_init: snn.v_init,
        max_pooling: snn.max_pooling.map(|strategy| strategy.name().to_string()),
        neuron: snn.neuron.name().to_string(),
        correct: correct.to_vec(),
        constant_current_correct: None,
        operations: Some(snn_fixed_operations(snn, timesteps).with_synops(synops)),
        layers,
        seconds,
    }
}

/// One IF layer's activity from its spike total over `images` images and `timesteps` steps.
pub fn layer_activity(
    layer: String,
    neurons: usize,
    fan_out: f64,
    spikes: u64,
    timesteps: usize,
    images: usize,
) -> LayerActivity {
    LayerActivity {
        layer,
        neurons,
        firing_rate: firing_rate(spikes, neurons, timesteps, images),
        synops_per_image: spikes as f64 * fan_out / images.max(1) as f64,
        macs_per_image: neurons as f64 * fan_out,
    }
}
