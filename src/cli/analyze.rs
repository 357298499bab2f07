//! `spikeconv analyze`: convert a checkpoint with one or more threshold methods and
//! measure every IF layer's quantization and deviation errors, input variance and firing
//! rate over calibration images, layer by layer on the chosen backend.

use anyhow::Context;
use clap::Args;
use spikeconv::data::cifar::Dataset;
use spikeconv::jobs::analyze::{analysable_images, analyze, AnalyzeJob};

use super::{BackendArgs, Bars, CalibrationArgs, ModelArgs, OutputArgs};

/// Default number of images the errors are measured on.
const DEFAULT_ANALYSIS_IMAGES: usize = 64;

/// Arguments of `spikeconv analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
    /// Timesteps each IF layer runs for (ttrbr methods are tuned for these unless
    /// --tune-timesteps says otherwise).
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub timesteps: u64,
    /// Calibration images the errors are measured on: those right after the first
    /// --tune-images of --calib, so tuned methods are measured on images they were not
    /// tuned on (fewer when their values for every timestep do not fit the walk's memory,
    /// with a note).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ANALYSIS_IMAGES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub images: usize,
    #[command(flatten)]
    pub device: BackendArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<()> {
    let timesteps = usize::try_from(args.timesteps)?;
    let network = args.model.load()?;
    let backend = args.device.open()?;
    let networks = args.calibration.convert(&backend, &network, &args.device, Some(timesteps))?;
    let calib_path = args.calibration.calib.as_ref().context("analyze needs --calib")?;
    let first = args.calibration.tune_images;
    // Read only the images analysed (and the tuning images before them), not the whole file.
    let readable = analysable_images(&backend, &networks, timesteps, args.images).max(1);
    let calib = Dataset::open_first(calib_path, None, Some(first.saturating_add(readable)))?;
    let job = AnalyzeJob {
        networks: &networks,
        network: &network,
        calib: &calib,
        calib_name: calib_path.display().to_string(),
        first,
        images: args.images,
        timesteps,
    };
    let report = analyze(&backend, &job, &mut Bars::default())?;
    args.output.emit(&report)
}
