//! Command-line interface: one clap subcommand per job.

mod analyze;
mod ann;
mod bench;
mod convert;
mod devices;
mod merge;
mod paired;
mod plot;
mod sweep;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use spikeconv::backends::{Backend, BackendChoice};
use spikeconv::convert::bias_correction::BIAS_CORRECTION_ROUNDS;
use spikeconv::convert::snn::{SpikingNetwork, DEFAULT_V_INIT};
use spikeconv::convert::stats::DEFAULT_BINS;
use spikeconv::convert::threshold::parse_methods;
use spikeconv::data::cifar::{CifarFormat, Dataset};
use spikeconv::model::normalize::{parse_mean, parse_std, NormalizePreset};
use spikeconv::model::{self, BlockForm, LoadOptions, Network};
use spikeconv::pipeline::{
    self, ConversionOptions, Progress, DEFAULT_CALIB_IMAGES, DEFAULT_MAX_GPU_BATCH, DEFAULT_TUNE_IMAGES,
};
use spikeconv::report::Report;

/// Convert trained CIFAR ResNets into integrate-and-fire spiking networks and simulate
/// them on a GPU (wgpu) or natively on the CPU.
#[derive(Debug, Parser)]
#[command(name = "spikeconv", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the CPU backend (threads, SIMD) and the GPU adapters wgpu can use (name,
    /// backend, type, driver).
    Devices,
    /// Evaluate the ANN of a checkpoint on a dataset and print its accuracy.
    Ann(ann::AnnArgs),
    /// Convert a checkpoint to an IF spiking network (or read one) and report its accuracy
    /// after every timestep, for one or more threshold methods, next to the ANN.
    Sweep(sweep::SweepArgs),
    /// Calibrate a checkpoint, choose thresholds and write the converted SNN to a file.
    Convert(convert::ConvertArgs),
    /// Measure each IF layer's quantization and deviation errors, input variance and
    /// firing rate on calibration images, for one or more threshold methods.
    Analyze(analyze::AnalyzeArgs),
    /// Draw the `--json` output of several sweeps or analyses in one chart (e.g. standard
    /// against restructured blocks).
    Plot(plot::PlotArgs),
    /// Measure how fast a backend simulates the converted network (image-timesteps/s) and
    /// runs the ANN, on real test images.
    Bench(bench::BenchArgs),
    /// Combine the shard records of `sweep --shard K/N` runs into the report one sweep over
    /// all their images would have printed.
    Merge(merge::MergeArgs),
    /// Compare the networks of a `sweep --predictions` file on the same images: for every
    /// pair, images only one gets right and the exact McNemar p-value.
    Paired(paired::PairedArgs),
}

/// Parses the command line and runs the chosen job.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Devices => devices::run(),
        Command::Ann(args) => ann::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Analyze(args) => analyze::run(&args),
        Command::Plot(args) => plot::run(&args),
        Command::Paired(args) => paired::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Merge(args) => merge::run(&args),
    }
}

/// Where the network comes from and how its input is normalized.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Checkpoint of a CIFAR ResNet (safetensors, PyTorch state_dict names).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// How to read a checkpoint where its metadata is missing or to be overridden: input
/// normalization and residual block form.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Residual block form (overrides the checkpoint's `block` metadata; default standard).
    /// `restructured`: `y = shortcut(x) + ReLU(BN(conv(ReLU(BN(conv(x))))))`, no ReLU after the sum;
    /// `preact`: `y = shortcut(x) + conv(ReLU(BN(conv(ReLU(BN(x))))))` (its own tensor layout).
    #[arg(long, value_enum)]
    pub block: Option<BlockArg>,
    /// The architecture the checkpoint must hold: resnet20 ... resnet110, resnet18,
    /// resnet34, vgg11, vgg13, vgg16, vgg19 (vgg16_bn, ...). The architecture is always
    /// read from the tensor names and shapes; this (like the file's `arch` metadata) makes
    /// a mismatch an error.
    #[arg(long, value_name = "NAME")]
    pub arch: Option<String>,
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

/// Residual block forms.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BlockArg {
    /// He et al.: ReLU after the addition.
    Standard,
    /// TTRBR restructuring: ReLU inside the residual branch, none after the addition.
    Restructured,
    /// Pre-activation (He et al. 2016b): BN-ReLU before each conv, none after the addition.
    Preact,
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

/// The prices of the energy estimate (docs/METHOD.md, "Energy").
#[derive(Debug, Args)]
pub struct EnergyArgs {
    /// Picojoules per multiply-accumulate (the ANN's operations, and the SNN's first layer
    /// on the analog image); default: 32-bit float at 45 nm, Horowitz, ISSCC 2014.
    #[arg(long, value_name = "PJ", default_value_t = spikeconv::convert::energy::E_MAC_PJ)]
    pub e_mac_pj: f64,
    /// Picojoules per accumulate (a synaptic operation of a spike, a bias-current addition);
    /// default: 32-bit float add at 45 nm, Horowitz, ISSCC 2014.
    #[arg(long, value_name = "PJ", default_value_t = spikeconv::convert::energy::E_AC_PJ)]
    pub e_ac_pj: f64,
}

impl EnergyArgs {
    pub fn model(&self) -> anyhow::Result<spikeconv::convert::energy::EnergyModel> {
        spikeconv::convert::energy::EnergyModel::new(self.e_mac_pj, self.e_ac_pj)
            .map_err(|e| anyhow::anyhow!("--e-mac-pj/--e-ac-pj: {e}"))
    }
}

/// Where a report goes: the terminal (a table, or JSON lines), a CSV file and a chart.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print one JSON object per threshold method (JSON lines) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as CSV (sweep: accuracy at every timestep, one column per
    /// method plus the ANN; analyze: one row per method and layer).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Also draw the report's chart, `.svg` or `.png` (sweep: accuracy against timestep,
    /// the ANN as a reference line; analyze: mean |deviation| and |quantization| error
    /// against layer depth).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

impl OutputArgs {
    /// Writes the CSV and the chart when asked, then prints the JSON lines or the table.
    pub fn emit(&self, report: &impl Report) -> anyhow::Result<()> {
        if let Some(path) = &self.csv {
            std::fs::write(path, report.to_csv())
                .with_context(|| format!("{}: cannot write the CSV", path.display()))?;
        }
        if let Some(path) = &self.plot {
            report.chart().write(path)?;
        }
        if self.json {
            print!("{}", report.to_json_lines()?);
        } else {
            print!("{}", report.to_table());
        }
        Ok(())
    }
}

/// Which backend and device run the job.
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Where the job runs: `auto` takes a real GPU if wgpu finds one (discrete, integrated
    /// or virtual), else the native CPU backend; `gpu` the best wgpu adapter of any kind,
    /// software ones (lavapipe) included; `cpu` the native CPU backend (all cores, SIMD).
    #[arg(long, value_name = "auto|cpu|gpu", default_value = "auto", value_parser = parse_backend)]
    pub backend: BackendChoice,
    /// Adapter name (case-insensitive substring, see `spikeconv devices`); also read from
    /// WGPU_ADAPTER_NAME. WGPU_BACKEND restricts the backends searched.
    #[arg(long, value_name = "NAME", env = "WGPU_ADAPTER_NAME")]
    pub adapter: Option<String>,
    /// Images per batch (the SNN: images simulated together); default: on a GPU the
    /// largest that fits the adapter's limits, at most 256; on the CPU a chunk of at least
    /// four images per thread that fits 1 GiB of values.
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
    /// Memory the job may plan for (e.g. 4G, 512M); default: the memory available. Work
    /// that does not fit is chunked, or refused with a message saying what to lower.
    #[arg(long, value_name = "SIZE", value_parser = spikeconv::memory::parse_size)]
    pub memory_limit: Option<u64>,
}

/// Largest batch `spikeconv` picks by itself on a GPU.
const DEFAULT_MAX_BATCH: usize = DEFAULT_MAX_GPU_BATCH;

impl ModelArgs {
    /// Loads the checkpoint with the normalization flags applied.
    pub fn load(&self) -> anyhow::Result<Network> {
        self.load.load(&self.model)
    }
}

impl LoadArgs {
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
            block: self.block.map(|block| match block {
                BlockArg::Standard => BlockForm::Standard,
                BlockArg::Restructured => BlockForm::Restructured,
                BlockArg::Preact => BlockForm::PreActivation,
            }),
            arch: self.arch.clone(),
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
    let limit = args.limit.map(|limit| usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(Dataset::open_first(&args.data, format, limit)?)
}

fn parse_backend(name: &str) -> Result<BackendChoice, String> {
    name.parse()
}

impl BackendArgs {
    /// Opens the backend `--backend` and `--adapter` ask for.
    pub fn open(&self) -> anyhow::Result<Backend> {
        spikeconv::memory::set_limit(self.memory_limit);
        Backend::open(self.backend, self.adapter.as_deref()).with_context(|| match self.backend {
            BackendChoice::Gpu => "--backend gpu: no usable wgpu adapter".to_string(),
            _ => "opening the backend".to_string(),
        })
    }

    /// `--batch` as asked for.
    pub fn requested_batch(&self) -> Option<usize> {
        self.batch.map(|b| usize::try_from(b).unwrap_or(usize::MAX))
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

/// How a checkpoint is converted: calibration images, threshold methods, initial membrane.
#[derive(Debug, Args)]
pub struct CalibrationArgs {
    /// CIFAR binary batch file (or directory) of training images to calibrate thresholds on.
    #[arg(long, value_name = "PATH")]
    pub calib: Option<PathBuf>,
    /// Calibration images taken from the start of --calib.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CALIB_IMAGES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub calib_images: usize,
    /// Threshold method(s), comma-separated: max, percentile:P (0 < P <= 100),
    /// channel-max, channel-percentile:P, trained, ttrbr[:P|:trained],
    /// channel-ttrbr[:P|:trained]. Percentiles come from 4096-bin histograms over [0, layer
    /// max] (resolution max/4096). trained: a quantization-aware (QCFS) checkpoint's learned
    /// lambda per layer or channel (threshold = lambda; with --v-init 0.5, QCFS's
    /// conversion). ttrbr starts from percentile:P (default 99.9), or from the trained
    /// lambdas, and tunes each layer's threshold for --tune-timesteps on the first
    /// --tune-images calibration images (docs/METHOD.md).
    #[arg(long, value_name = "METHODS", default_value = "percentile:99.9")]
    pub threshold: String,
    /// Initial membrane potential as a fraction of the threshold, in [0, 1].
    #[arg(long, value_name = "V", default_value_t = DEFAULT_V_INIT, allow_negative_numbers = true)]
    pub v_init: f32,
    /// Timesteps the ttrbr methods tune thresholds for (default: --timesteps where the
    /// command has it). Several, comma-separated (e.g. 8,16,32), give one tuned network
    /// per T and method: the method × T comparison in one run.
    #[arg(long, value_name = "T[,T...]", value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub tune_timesteps: Vec<u64>,
    /// Calibration images the ttrbr methods tune on (the first of --calib; fewer when
    /// their values for every timestep do not fit the walk's memory, with a note).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TUNE_IMAGES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub tune_images: usize,
    /// Let the ttrbr methods also choose each IF layer's initial membrane fraction (from
    /// 0.25 to 0.875 in eighths, starting at --v-init) together with its thresholds; the
    /// method is then named e.g. `ttrbr+v_init` (docs/METHOD.md).
    #[arg(long)]
    pub tune_v_init: bool,
    /// Give each IF layer a bias current (a constant input current per channel) that
    /// cancels its channels' mean error on the first --tune-images calibration images for
    /// --tune-timesteps; with the ttrbr methods after each layer's thresholds are tuned.
    /// Methods are then named e.g. `channel-ttrbr+bias`, and a baseline method gives both
    /// its plain and its corrected network (docs/METHOD.md).
    #[arg(long)]
    pub bias_correction: bool,
    /// With --bias-correction and the ttrbr methods: search each layer's thresholds once
    /// more under the bias current the correction chose, then correct again (methods
    /// named e.g. `channel-ttrbr+bias+refit`; docs/METHOD.md).
    #[arg(long, requires = "bias_correction")]
    pub refit_thresholds: bool,
    /// With --bias-correction: rounds of each layer's correction (each round proposes the
    /// current minus the channels' mean errors and keeps it where it helps); other than
    /// the default, methods are named e.g. `channel-ttrbr+bias:6`.
    #[arg(long, value_name = "N", requires = "bias_correction", default_value_t = BIAS_CORRECTION_ROUNDS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub bias_rounds: usize,
    /// How the network's max-pooling layers become spiking: gated (each window passes the
    /// input that has fired most so far, Rueckauer et al. 2017) or avg (each becomes the
    /// average pool of its window, for networks fine-tuned that way: python/train_cifar.py
    /// --maxpool avg). Printed, and recorded in the converted network (docs/METHOD.md).
    #[arg(long, value_name = "STRATEGY", default_value = "gated")]
    pub maxpool: spikeconv::convert::MaxPoolStrategy,
    /// The neuron of every IF layer: if (integrate-and-fire, reset by subtraction) or
    /// signed (also fires -1 when its membrane falls below 0 after more positive than
    /// negative spikes, taking back spikes fired too early: Wang et al. 2022). Calibration
    /// and tuning see the same neuron. Recorded in the converted network (docs/METHOD.md).
    #[arg(long, value_name = "NEURON", default_value = "if")]
    pub neuron: spikeconv::convert::Neuron,
    /// Write what tuning and bias correction did to every IF layer (start and tuned
    /// threshold, objective before and after, tracking error, mean error before and after
    /// correction) as CSV, one row per tuned or corrected network and layer.
    #[arg(long, value_name = "FILE")]
    pub tuning_csv: Option<PathBuf>,
}

impl CalibrationArgs {
    /// The pipeline's options from these flags; `timesteps` (the command's own) is what the
    /// tuned methods tune for when --tune-timesteps is not given.
    fn options(&self, batch: Option<usize>, timesteps: Option<usize>) -> anyhow::Result<ConversionOptions> {
        let tune_timesteps: Vec<usize> = if self.tune_timesteps.is_empty() {
            timesteps.into_iter().collect()
        } else {
            self.tune_timesteps.iter().map(|&t| t as usize).collect()
        };
        Ok(ConversionOptions {
            methods: parse_methods(&self.threshold)?,
            v_init: self.v_init,
            calib_images: self.calib_images,
            bins: DEFAULT_BINS,
            batch,
            tune_timesteps,
            tune_images: self.tune_images,
            tune_v_init: self.tune_v_init,
            bias_correction: self.bias_correction,
            refit_thresholds: self.refit_thresholds,
            bias_rounds: self.bias_rounds,
            max_pooling: self.maxpool,
            neuron: self.neuron,
        })
    }

    /// Runs the conversion pipeline ([`spikeconv::pipeline`]) with these flags on
    /// `backend`, with progress bars, and writes --tuning-csv; tuned methods are tuned for
    /// each --tune-timesteps, else for `timesteps` (the command's own).
    pub fn convert(
        &self,
        backend: &Backend,
        network: &Network,
        args: &BackendArgs,
        timesteps: Option<usize>,
    ) -> anyhow::Result<Vec<SpikingNetwork>> {
        let options = self.options(args.requested_batch(), timesteps)?;
        options.validate().with_context(|| format!("--threshold {}", self.threshold))?;
        let Some(path) = &self.calib else {
            anyhow::bail!(
                "converting {} needs --calib PATH: training images to calibrate thresholds on",
                network.path.display()
            );
        };
        let calib = Dataset::open_first(path, None, Some(self.calib_images))?;
        let conversion = pipeline::convert(backend, network, &calib, &options, &mut Bars::default())?;
        if let Some(path) = &self.tuning_csv {
            if conversion.tuning.runs.is_empty() {
                eprintln!(
                    "note: --tuning-csv {}: no tuned method (ttrbr, channel-ttrbr), nothing written",
                    path.display()
                );
            } else {
                std::fs::write(path, conversion.tuning.to_csv())
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {} ({} tuned networks)", path.display(), conversion.tuning.runs.len());
            }
        }
        Ok(conversion.networks)
    }
}

/// The pipeline's progress as bars on stderr, notes as `note:` lines.
#[derive(Default)]
pub struct Bars(Option<ProgressBar>);

impl Progress for Bars {
    fn start(&mut self, unit: &str, total: u64) {
        self.0 = Some(progress_bar(total, unit));
    }

    fn advance(&mut self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }

    fn note(&mut self, message: &str) {
        eprintln!("note: {message}");
    }
}
