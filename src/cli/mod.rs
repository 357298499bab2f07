//! Command-line interface: one clap subcommand per job.

mod ann;
mod devices;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use spikeconv::data::cifar::{CifarFormat, Dataset};
use spikeconv::gpu::GpuError;
use spikeconv::model::normalize::{parse_mean, parse_std, NormalizePreset};
use spikeconv::model::{self, LoadOptions, Network};

/// Convert trained CIFAR ResNets into integrate-and-fire spiking networks and simulate
/// them on the GPU.
#[derive(Debug, Parser)]
#[command(name = "spikeconv", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the GPU adapters wgpu can use (name, backend, type, driver).
    Devices,
    /// Evaluate the ANN of a checkpoint on a dataset on the GPU and print its accuracy.
    Ann(ann::AnnArgs),
}

/// Parses the command line and runs the chosen job.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Devices => devices::run(),
        Command::Ann(args) => ann::run(&args),
    }
}

/// Where the network comes from and how its input is normalized.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Checkpoint of a CIFAR ResNet (safetensors, PyTorch state_dict names).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    #[command(flatten)]
    pub normalization: NormalizationArgs,
}

/// How the network's input is normalized, where the checkpoint does not say (or to override it).
#[derive(Debug, Args)]
pub struct NormalizationArgs {
    /// Per-channel input mean `r,g,b` (overrides the checkpoint's metadata).
    #[arg(long, value_name = "R,G,B")]
    pub mean: Option<String>,
    /// Per-channel input standard deviation `r,g,b` (overrides the checkpoint's metadata).
    #[arg(long, value_name = "R,G,B")]
    pub std: Option<String>,
    /// A named normalization, used where the checkpoint has no metadata and no --mean/--std.
    #[arg(long, value_enum)]
    pub normalize: Option<NormalizeArg>,
}

/// Named input normalizations.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NormalizeArg {
    /// CIFAR-10 statistics: mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616).
    Cifar10,
    /// ImageNet statistics: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    Imagenet,
}

/// Which images to evaluate.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// CIFAR binary batch file, or a directory of them.
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,
    /// Dataset format; detected from the file size when omitted.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetArg>,
    /// Evaluate only the first N images.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
}

/// CIFAR binary layouts.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DatasetArg {
    /// 1 label byte + 3072 pixel bytes per record.
    Cifar10,
    /// 2 label bytes (coarse, fine; fine is used) + 3072 pixel bytes per record.
    Cifar100,
}

/// Which GPU runs the job.
#[derive(Debug, Args)]
pub struct GpuArgs {
    /// Adapter name (case-insensitive substring, see `spikeconv devices`); also read from
    /// WGPU_ADAPTER_NAME. WGPU_BACKEND restricts the backends searched.
    #[arg(long, value_name = "NAME", env = "WGPU_ADAPTER_NAME")]
    pub adapter: Option<String>,
    /// Images per GPU submission; default: the largest that fits the adapter's limits, at most 256.
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
}

/// Largest batch `spikeconv` picks by itself: enough to fill a GPU, small enough that a
/// progress bar moves on a software adapter.
const DEFAULT_MAX_BATCH: usize = 256;

impl ModelArgs {
    /// Loads the checkpoint with the normalization flags applied.
    pub fn load(&self) -> anyhow::Result<Network> {
        self.normalization.load(&self.model)
    }
}

impl NormalizationArgs {
    /// Loads the checkpoint `model` with these normalization flags applied.
    pub fn load(&self, model: &Path) -> anyhow::Result<Network> {
        let file = model.display();
        let options = LoadOptions {
            mean: self.mean.as_deref().map(parse_mean).transpose().with_context(|| format!("{file}: --mean"))?,
            std: self.std.as_deref().map(parse_std).transpose().with_context(|| format!("{file}: --std"))?,
            preset: self.normalize.map(|preset| match preset {
                NormalizeArg::Cifar10 => NormalizePreset::Cifar10,
                NormalizeArg::Imagenet => NormalizePreset::Imagenet,
            }),
            // From the checkpoint's metadata until the CLI has a --block flag.
            block: None,
        };
        Ok(model::load(model, &options)?)
    }
}

/// Opens the dataset and keeps the first `--limit` images.
pub fn open_dataset(args: &DataArgs) -> anyhow::Result<Dataset> {
    let format = args.dataset.map(|format| match format {
        DatasetArg::Cifar10 => CifarFormat::Cifar10,
        DatasetArg::Cifar100 => CifarFormat::Cifar100,
    });
    let mut dataset = Dataset::open(&args.data, format)?;
    if let Some(limit) = args.limit {
        dataset.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(dataset)
}

impl GpuArgs {
    /// `--batch`, else `max_batch` (what the adapter's limits allow for the plan), capped
    /// at [`DEFAULT_MAX_BATCH`]; never more than the number of images.
    pub fn batch_size(&self, max_batch: usize, images: usize) -> usize {
        let requested = self.batch.map(|b| usize::try_from(b).unwrap_or(usize::MAX));
        requested.unwrap_or_else(|| max_batch.min(DEFAULT_MAX_BATCH)).min(images.max(1)).max(1)
    }
}

/// Compiles a GPU plan for `batch` images, halving the batch while the device runs out of
/// memory or a buffer exceeds the adapter's limits (a smaller batch, not a crash).
pub fn compile_with_fallback<P>(batch: usize, mut compile: impl FnMut(usize) -> Result<P, GpuError>) -> anyhow::Result<P> {
    let mut batch = batch.max(1);
    loop {
        match compile(batch) {
            Err(GpuError::OutOfMemory { .. } | GpuError::TooLarge { .. }) if batch > 1 => {
                batch /= 2;
                eprintln!("note: the plan does not fit the GPU; retrying with batch {batch}");
            }
            result => return result.context("compiling the network for the GPU"),
        }
    }
}

/// A progress bar on stderr with rate and ETA (hidden when stderr is not a terminal).
pub fn progress_bar(total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template = format!("{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
