//! `spikeconv sweep`: convert a checkpoint with one or more threshold methods (or read a
//! converted SNN), simulate every timestep on the chosen backend and report accuracy against t.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use spikeconv::convert::snn::{firing_rate, SpikingNetwork};
use spikeconv::convert::snn_file::read_snn;
use spikeconv::cpu::constant_current::ConstantCurrentTwin;
use spikeconv::model::normalize::Normalization;
use spikeconv::pipeline::quantized_ann_accuracy;
use spikeconv::report::profile::{kernel_table, kernel_times};
use spikeconv::report::{method_label, LayerActivity, PredictionTable, QuantizedAnn, SnnCurve, SweepReport};

use super::{
    open_dataset, progress_bar, BackendArgs, CalibrationArgs, DataArgs, LoadArgs, OutputArgs, DEFAULT_MAX_BATCH,
};

/// Arguments of `spikeconv sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Checkpoint to convert (needs --calib); alternatively --snn.
    #[arg(long, value_name = "FILE", required_unless_present = "snn", conflicts_with = "snn")]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// A converted SNN written by `spikeconv convert`; simulated without recalibrating.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["calib", "threshold", "v_init", "tune_timesteps", "tune_v_init", "bias_correction", "refit_thresholds", "bias_rounds"])]
    pub snn: Option<PathBuf>,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Timesteps to simulate; accuracy is reported after every one.
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub timesteps: u64,
    #[command(flatten)]
    pub device: BackendArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Also write every image's predicted class after the last timestep as CSV: one row
    /// per image (index, label, the ANN's class), one column per network, for comparing
    /// methods image by image.
    #[arg(long, value_name = "FILE")]
    pub predictions: Option<PathBuf>,
    /// Also read each network's constant-current twin after T steps: every IF layer
    /// outputs what it would if fed its input current unchanged every step, so the twin has
    /// the quantization error and no deviation error (docs/METHOD.md). Reported beside the
    /// SNN's accuracy (`constant_current_correct`); computed by the CPU kernels whatever the
    /// backend.
    #[arg(long)]
    pub constant_currents: bool,
    /// wgpu backend: after each network's sweep, time its first chunk node by node with GPU
    /// timestamps and print the GPU time per kernel (to stderr).
    #[arg(long)]
    pub profile: bool,
}

pub fn run(args: &SweepArgs) -> anyhow::Result<()> {
    let timesteps = usize::try_from(args.timesteps)?;
    let dataset = open_dataset(&args.data)?;
    let backend = args.device.open()?;
    if args.profile && !backend.has_gpu_timestamps() {
        anyhow::bail!("--profile times GPU passes with timestamp queries: {} has none (use --backend gpu on an adapter that offers them)", backend.describe());
    }

    let (networks, normalization, model, source) = match (&args.snn, &args.model) {
        (Some(path), _) => {
            let file = read_snn(path)?;
            let normalization =
                Normalization::new(to_rgb(&file.normalization.mean, path)?, to_rgb(&file.normalization.std, path)?)
                    .with_context(|| format!("{}: normalization", path.display()))?;
            (vec![file.snn], normalization, path.display().to_string(), None)
        }
        (None, Some(model)) => {
            let network = args.load.load(model)?;
            let networks = args.calibration.convert(&backend, &network, &args.device, Some(timesteps))?;
            (networks, network.normalization.clone(), model.display().to_string(), Some(network))
        }
        (None, None) => anyhow::bail!("give --model FILE (with --calib) or --snn FILE"),
    };
    let graph = &networks[0].graph;
    if dataset.num_classes != graph.num_classes() {
        anyhow::bail!(
            "{}: the network has {} classes but the dataset {} has {}",
            model,
            graph.num_classes(),
            args.data.data.display(),
            dataset.num_classes
        );
    }

    let images = dataset.len();
    let ann_batch = backend.ann_batch(graph, args.device.requested_batch(), DEFAULT_MAX_BATCH, images)?;
    let ann = backend.evaluate_ann(graph, &dataset, &normalization, images, ann_batch, |_| {})?;
    let quantized_ann = match &source {
        Some(network) => quantized_ann_accuracy(network, &dataset, images, ann_batch)?
            .map(|(activation, accuracy)| QuantizedAnn { activation, correct: accuracy.correct }),
        None => None,
    };

    let progress = progress_bar((images * networks.len()) as u64, "images");
    let started = Instant::now();
    let mut curves = Vec::with_capacity(networks.len());
    let mut predictions = Vec::with_capacity(networks.len());
    for (index, snn) in networks.iter().enumerate() {
        progress.set_message(snn.threshold_method.clone());
        let batch = backend.snn_batch(snn, timesteps, args.device.requested_batch(), DEFAULT_MAX_BATCH, images)?;
        let done_before = index * images;
        let simulation = Instant::now();
        let result = backend.evaluate_snn(snn, &dataset, &normalization, images, timesteps, batch, |done| {
            progress.set_position((done_before + done) as u64)
        })?;
        let seconds = simulation.elapsed().as_secs_f64();
        if args.profile {
            let passes = backend.profile_snn(snn, &dataset, &normalization, timesteps, batch)?;
            let title =
                format!("{}: GPU time of one chunk of {batch} images × {timesteps} steps", snn.threshold_method);
            progress.suspend(|| eprint!("{}", kernel_table(&title, &kernel_times(&passes))));
        }
        let mut curve = curve(snn, &result.correct, &result.spike_totals, timesteps, images, seconds);
        if args.constant_currents {
            let twin = ConstantCurrentTwin::new(snn, timesteps)?;
            curve.constant_current_correct = Some(twin.evaluate(&dataset, &normalization, images, ann_batch).correct);
        }
        curves.push(curve);
        predictions.push((method_label(&snn.threshold_method, snn.tuned_for_timesteps), result.predictions));
    }
    let seconds = started.elapsed().as_secs_f64();
    progress.finish_and_clear();

    if let Some(path) = &args.predictions {
        let table = PredictionTable {
            timesteps,
            labels: dataset.labels[..images].iter().map(|&label| label as usize).collect(),
            ann: ann.predictions,
            networks: predictions,
        };
        std::fs::write(path, table.to_csv())
            .with_context(|| format!("{}: cannot write the predictions CSV", path.display()))?;
    }
    let report = SweepReport {
        model,
        data: args.data.data.display().to_string(),
        backend: backend.name().to_string(),
        adapter: backend.describe(),
        images,
        timesteps,
        ann_correct: ann.correct,
        quantized_ann,
        curves,
        seconds,
    };
    args.output.emit(&report)?;
    if !args.output.json {
        eprintln!(
            "simulated {images} images × {timesteps} timesteps × {} network(s) in {seconds:.1} s",
            networks.len()
        );
    }
    Ok(())
}

fn to_rgb(values: &[f32], path: &std::path::Path) -> anyhow::Result<[f32; 3]> {
    values
        .try_into()
        .map_err(|_| anyhow::anyhow!("{}: normalization has {} channels, expected 3", path.display(), values.len()))
}

/// Turns one simulation's counts into a report curve with per-layer activity.
fn curve(
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
        .map(|(info, &spikes)| LayerActivity {
            layer: info.name,
            neurons: info.neurons,
            firing_rate: firing_rate(spikes, info.neurons, timesteps, images),
            synops_per_image: spikes as f64 * info.fan_out / images.max(1) as f64,
        })
        .collect();
    SnnCurve {
        threshold_method: snn.threshold_method.clone(),
        tuned_for_timesteps: snn.tuned_for_timesteps,
        v_init: snn.v_init,
        correct: correct.to_vec(),
        constant_current_correct: None,
        layers,
        seconds,
    }
}
