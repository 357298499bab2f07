//! `spikeconv sweep`: convert a checkpoint with one or more threshold methods (or read a
//! converted SNN), simulate every timestep on the chosen backend and report accuracy against t.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use spikeconv::convert::snn_file::read_snn;
use spikeconv::engine::EvaluationSet;
use spikeconv::jobs::shard::networks_checksum;
use spikeconv::jobs::{sweep, Shard, ShardRecord, SweepJob};
use spikeconv::model::normalize::Normalization;
use spikeconv::report::profile::{kernel_table, kernel_times};

use super::{
    open_dataset, progress_bar, BackendArgs, CalibrationArgs, DataArgs, EnergyArgs, LoadArgs, OutputArgs,
    DEFAULT_MAX_BATCH,
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
    #[arg(long, value_name = "FILE", conflicts_with_all = ["calib", "threshold", "v_init", "tune_timesteps", "tune_v_init", "bias_correction", "refit_thresholds", "bias_rounds", "tuning_csv", "calib_images", "tune_images", "mean", "std", "normalize", "block", "arch", "maxpool", "neuron"])]
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
    #[command(flatten)]
    pub energy: EnergyArgs,
    /// wgpu backend: after each network's sweep, time its first chunk node by node with GPU
    /// timestamps and print the GPU time per kernel (to stderr).
    #[arg(long)]
    pub profile: bool,
    /// Evaluate only the K-th (from 0) of N contiguous parts of the images (after
    /// --limit), e.g. one task of a cluster job array; needs --shard-out. Every shard must
    /// convert identically: the same --snn file, or the same --model, --calib and flags.
    #[arg(long, value_name = "K/N", requires = "shard_out")]
    pub shard: Option<Shard>,
    /// Where --shard writes its counts (JSON) for `spikeconv merge`.
    #[arg(long, value_name = "FILE", requires = "shard")]
    pub shard_out: Option<PathBuf>,
}

pub fn run(args: &SweepArgs) -> anyhow::Result<()> {
    let timesteps = usize::try_from(args.timesteps)?;
    if args.shard.is_some() != args.shard_out.is_some() {
        anyhow::bail!("--shard K/N and --shard-out FILE go together: the shard's counts are what merge reads");
    }
    let mut dataset = open_dataset(&args.data)?;
    let total = dataset.len();
    let range = args.shard.map_or(0..total, |shard| shard.range(total));
    if let Some(shard) = args.shard {
        if range.is_empty() {
            anyhow::bail!("--shard {shard}: {total} images give this shard none; use fewer shards");
        }
        dataset = dataset.slice(range.clone());
    }
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
            (networks, network.normalization, model.display().to_string(), Some(network))
        }
        (None, None) => anyhow::bail!("give --model FILE (with --calib) or --snn FILE"),
    };

    let images = dataset.len();
    let progress = progress_bar((images * networks.len()) as u64, "images");
    let job = SweepJob {
        networks: &networks,
        normalization: &normalization,
        source: source.as_ref(),
        model,
        data: args.data.data.display().to_string(),
        dataset: &dataset,
        timesteps,
        batch: args.device.requested_batch(),
        constant_currents: args.constant_currents,
        energy: args.energy.model()?,
    };
    let outcome = sweep(&backend, &job, |done, method| {
        progress.set_message(method.to_string());
        progress.set_position(done as u64);
    })?;
    progress.finish_and_clear();
    if args.profile {
        for snn in &networks {
            let batch = backend.snn_batch(snn, timesteps, args.device.requested_batch(), DEFAULT_MAX_BATCH, images)?;
            let set = EvaluationSet::new(&dataset, &normalization, images);
            let passes = backend.profile_snn(snn, set, timesteps, batch)?;
            let title =
                format!("{}: GPU time of one chunk of {batch} images × {timesteps} steps", snn.threshold_method);
            eprint!("{}", kernel_table(&title, &kernel_times(&passes)));
        }
    }

    if let (Some(shard), Some(path)) = (args.shard, &args.shard_out) {
        let checksum = networks_checksum(&networks, &normalization);
        let record = ShardRecord::new(&outcome, &networks, checksum, shard, range.clone(), total);
        std::fs::write(path, serde_json::to_string(&record)?)
            .with_context(|| format!("{}: cannot write the shard record", path.display()))?;
        eprintln!("shard {shard}: images {}..{} of {total}; wrote {}", range.start, range.end, path.display());
    }
    if let Some(path) = &args.predictions {
        std::fs::write(path, outcome.predictions.to_csv())
            .with_context(|| format!("{}: cannot write the predictions CSV", path.display()))?;
    }
    let report = outcome.report;
    args.output.emit(&report)?;
    if !args.output.json {
        eprintln!(
            "simulated {images} images × {timesteps} timesteps × {} network(s) in {:.1} s",
            networks.len(),
            report.seconds
        );
    }
    Ok(())
}

fn to_rgb(values: &[f32], path: &std::path::Path) -> anyhow::Result<[f32; 3]> {
    values
        .try_into()
        .map_err(|_| anyhow::anyhow!("{}: normalization has {} channels, expected 3", path.display(), values.len()))
}
