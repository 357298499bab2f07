//! `spikeconv bench`: how fast a backend simulates a converted network, in
//! image-timesteps per second, and how fast it runs the ANN, on real test images.
//! Calibration and conversion are not timed; the simulation and the ANN pass are.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use spikeconv::convert::fold_batch_norm;
use spikeconv::report::profile::{kernel_table, kernel_times, KernelTime};

use super::{open_dataset, BackendArgs, CalibrationArgs, DataArgs, ModelArgs, DEFAULT_MAX_BATCH};

/// Arguments of `spikeconv bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Timesteps simulated.
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub timesteps: u64,
    #[command(flatten)]
    pub device: BackendArgs,
    /// Print one JSON object instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// Also append the JSON object to this file.
    #[arg(long, value_name = "FILE")]
    pub append: Option<PathBuf>,
    /// The device's peak in TFLOP/s (fp32, dense), if known: the report then gives the
    /// fraction of it the SNN reached, counting each dense-equivalent MAC as two FLOPs.
    #[arg(long, value_name = "TFLOPS", value_parser = positive_tflops)]
    pub peak_tflops: Option<f64>,
    /// wgpu backend: also time one chunk node by node with GPU timestamps and print the GPU
    /// time per kernel (and `profile` in the JSON).
    #[arg(long)]
    pub profile: bool,
}

fn positive_tflops(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("`{text}` is not a positive number of TFLOP/s")),
    }
}

/// What one benchmark run measured.
#[derive(Debug, Serialize)]
struct BenchReport {
    model: String,
    backend: &'static str,
    device: String,
    threshold_method: String,
    timesteps: usize,
    images: usize,
    batch: usize,
    /// Convolutions, linear layers and IF layers of the network.
    layers: usize,
    seconds: f64,
    image_timesteps_per_second: f64,
    /// Dense-equivalent multiply-accumulates per second: the ANN's MACs per image times
    /// the image-timesteps simulated, over the time taken.
    gmac_per_second: f64,
    /// With --peak-tflops: 2 × GMAC/s over the peak.
    #[serde(skip_serializing_if = "Option::is_none")]
    fraction_of_peak: Option<f64>,
    /// Synaptic operations (spikes times fan-out) per image and timestep.
    synops_per_image_timestep: f64,
    /// Mean firing rate over all IF neurons and steps.
    firing_rate: f64,
    /// CPU backend: per-timestep convolutions that ran event-driven and dense, summed over
    /// chunks, and the mean input density they saw.
    event_convolutions: Option<usize>,
    /// wgpu backend: GPU dispatches per chunk of `batch` images (all timesteps).
    dispatches_per_chunk: Option<usize>,
    dense_convolutions: Option<usize>,
    mean_input_density: Option<f64>,
    correct_at_t: usize,
    ann_batch: usize,
    ann_images_per_second: f64,
    ann_correct: usize,
    /// `--profile`: GPU time of one chunk per kernel combination.
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<Vec<KernelTime>>,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let timesteps = usize::try_from(args.timesteps)?;
    let network = args.model.load()?;
    let dataset = open_dataset(&args.data)?;
    let backend = args.device.open()?;
    if args.profile && !backend.has_gpu_timestamps() {
        anyhow::bail!("--profile times GPU passes with timestamp queries: {} has none (use --backend gpu on an adapter that offers them)", backend.describe());
    }
    let Some(snn) = args.calibration.convert(&backend, &network, &args.device, Some(timesteps))?.into_iter().last()
    else {
        anyhow::bail!("--threshold {}: no network was converted", args.calibration.threshold);
    };
    let images = dataset.len();
    let normalization = &network.normalization;

    let graph = fold_batch_norm(&network.graph);
    let ann_batch = backend.ann_batch(&graph, args.device.requested_batch(), DEFAULT_MAX_BATCH, images)?;
    let started = Instant::now();
    let ann = backend.evaluate_ann(&graph, &dataset, normalization, images, ann_batch, |_| {})?;
    let ann_seconds = started.elapsed().as_secs_f64();

    let batch = backend.snn_batch(&snn, timesteps, args.device.requested_batch(), DEFAULT_MAX_BATCH, images)?;
    let started = Instant::now();
    let (result, stats) =
        backend.evaluate_snn_with_stats(&snn, &dataset, normalization, images, timesteps, batch, |_| {})?;
    let seconds = started.elapsed().as_secs_f64();

    let profile = if args.profile {
        Some(kernel_times(&backend.profile_snn(&snn, &dataset, normalization, timesteps, stats.batch)?))
    } else {
        None
    };
    let conv = stats.convolutions.as_ref();
    let batch = stats.batch;
    let image_timesteps = (images * timesteps) as f64;
    let infos = snn.layer_infos();
    let spikes: u64 = result.spike_totals.iter().sum();
    let neurons: usize = infos.iter().map(|l| l.neurons).sum();
    let synops: f64 = infos.iter().zip(&result.spike_totals).map(|(l, &s)| s as f64 * l.fan_out).sum();
    let weighted = snn
        .graph
        .nodes()
        .iter()
        .filter(|n| matches!(n.op, spikeconv::model::graph::Op::Conv2d(_) | spikeconv::model::graph::Op::Linear(_)))
        .count();
    let report = BenchReport {
        model: network.path.display().to_string(),
        backend: backend.name(),
        device: backend.describe(),
        threshold_method: snn.threshold_method.clone(),
        timesteps,
        images,
        batch,
        layers: weighted + snn.layers.len(),
        seconds,
        image_timesteps_per_second: image_timesteps / seconds,
        gmac_per_second: snn.graph.macs_per_image() as f64 * image_timesteps / seconds / 1e9,
        fraction_of_peak: args
            .peak_tflops
            .map(|peak| 2.0 * snn.graph.macs_per_image() as f64 * image_timesteps / seconds / (peak * 1e12)),
        synops_per_image_timestep: synops / image_timesteps,
        firing_rate: spikes as f64 / (neurons as f64 * image_timesteps),
        event_convolutions: conv.map(|s| s.event),
        dispatches_per_chunk: stats.dispatches_per_chunk,
        dense_convolutions: conv.map(|s| s.dense),
        mean_input_density: conv.map(|s| s.density_sum / (s.event + s.dense).max(1) as f64),
        correct_at_t: result.correct.last().copied().unwrap_or(0),
        ann_batch,
        ann_images_per_second: images as f64 / ann_seconds,
        ann_correct: ann.correct,
        profile,
    };
    let json = serde_json::to_string(&report)?;
    if let Some(path) = &args.append {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("--append {}: cannot open for appending", path.display()))?;
        writeln!(file, "{json}").with_context(|| format!("--append {}: cannot write", path.display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        println!(
            "{} on {} ({}), {}, T = {timesteps}, {images} images, batch {batch}\n\
             SNN  {:.1} image-timesteps/s ({:.1} GMAC/s dense-equivalent, {:.2} M synops per image-timestep, firing rate {:.2} %), {}/{images} correct at T\n\
             ANN  {:.1} images/s (batch {ann_batch}), {}/{images} correct",
            report.model,
            report.backend,
            report.device,
            report.threshold_method,
            report.image_timesteps_per_second,
            report.gmac_per_second,
            report.synops_per_image_timestep / 1e6,
            100.0 * report.firing_rate,
            report.correct_at_t,
            report.ann_images_per_second,
            report.ann_correct,
        );
        if let (Some(event), Some(dense), Some(density)) =
            (report.event_convolutions, report.dense_convolutions, report.mean_input_density)
        {
            println!(
                "     convolutions over spikes: {event} event-driven, {dense} dense; mean input density {:.3}",
                density
            );
        }
        if let (Some(fraction), Some(peak)) = (report.fraction_of_peak, args.peak_tflops) {
            println!(
                "     {:.2} % of the given {peak} TFLOP/s peak (2 FLOPs per dense-equivalent MAC)",
                100.0 * fraction
            );
        }
        if let Some(dispatches) = report.dispatches_per_chunk {
            println!("     {dispatches} GPU dispatches per chunk of {batch} images ({} layers)", report.layers);
        }
        if let Some(profile) = &report.profile {
            let title = format!("GPU time of one chunk of {batch} images × {timesteps} steps, by kernel");
            print!("{}", kernel_table(&title, profile));
        }
    }
    Ok(())
}
