//! `spikeconv analyze`: convert a checkpoint with one or more threshold methods and
//! measure every IF layer's quantization and deviation errors, input variance and firing
//! rate over calibration images, layer by layer on the chosen backend.

use anyhow::Context;
use clap::Args;
use spikeconv::data::cifar::Dataset;
use spikeconv::report::analysis::{AnalysisReport, NetworkErrors};
use spikeconv::sim::analyze::analyze;
use spikeconv::sim::layerwise::max_images;

use super::{progress_bar, BackendArgs, CalibrationArgs, ModelArgs, OutputArgs};

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
    let device = backend.walk_device();
    let calib_path = args.calibration.calib.as_ref().context("analyze needs --calib")?;
    let first = args.calibration.tune_images;
    let fits = max_images(device, &networks[0], timesteps);
    // Read only the images analysed (and the tuning images before them), not the whole file.
    let calib = Dataset::open_first(calib_path, None, Some(first.saturating_add(args.images.min(fits.max(1)))))?;

    if calib.len() <= first {
        anyhow::bail!(
            "{}: holds {} images; analysis takes those after the first --tune-images {first}",
            calib_path.display(),
            calib.len()
        );
    }
    let mut count = args.images.min(calib.len() - first);
    if args.images > fits && count == fits {
        eprintln!(
            "note: analysing {fits} images instead of {}: their values for {timesteps} timesteps fill the walk's memory",
            args.images
        );
    }
    count = count.min(fits);
    if count == 0 {
        anyhow::bail!("analysing {timesteps} timesteps: not even one image fits the walk's memory");
    }
    let mut images = Vec::new();
    calib.normalized_batch(first, count, &network.normalization, &mut images);

    let layers: usize = networks.iter().map(|n| n.layers.len()).sum();
    let bar = progress_bar(layers as u64, "layers analysed");
    let mut results = Vec::with_capacity(networks.len());
    let mut done_before = 0;
    for snn in &networks {
        bar.set_message(snn.threshold_method.clone());
        let rows =
            analyze(device, snn, &images, count, timesteps, |done| bar.set_position((done_before + done) as u64))
                .with_context(|| format!("analysing {} on the {} backend", snn.threshold_method, backend.name()))?;
        done_before += snn.layers.len();
        results.push(NetworkErrors {
            threshold_method: snn.threshold_method.clone(),
            tuned_for_timesteps: snn.tuned_for_timesteps,
            v_init: snn.v_init,
            block: network.info.block.name().into(),
            layers: rows,
        });
    }
    bar.finish_and_clear();

    let model = network.path.display().to_string();
    let report = AnalysisReport {
        model,
        calib: calib_path.display().to_string(),
        backend: backend.name().to_string(),
        adapter: backend.describe(),
        first_image: first,
        images: count,
        timesteps,
        networks: results,
    };
    args.output.emit(&report)
}
