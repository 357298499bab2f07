//! `spikeconv bench`: how fast a backend simulates a converted network, in
//! image-timesteps per second, and how fast it runs the ANN, on real test images.
//! Calibration and conversion are not timed; the simulation and the ANN pass are.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use spikeconv::jobs::{bench, BenchJob};

use super::{open_dataset, BackendArgs, CalibrationArgs, DataArgs, EnergyArgs, ModelArgs};

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
    #[command(flatten)]
    pub energy: EnergyArgs,
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

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let timesteps = usize::try_from(args.timesteps)?;
    let network = args.model.load()?;
    let dataset = open_dataset(&args.data)?;
    let backend = args.device.open()?;
    let Some(snn) = args.calibration.convert(&backend, &network, &args.device, Some(timesteps))?.into_iter().last()
    else {
        anyhow::bail!("--threshold {}: no network was converted", args.calibration.threshold);
    };
    let job = BenchJob {
        network: &network,
        snn: &snn,
        dataset: &dataset,
        timesteps,
        batch: args.device.requested_batch(),
        peak_tflops: args.peak_tflops,
        profile: args.profile,
        energy: args.energy.model()?,
    };
    let report = bench(&backend, &job)?;
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
        print!("{}", report.to_text());
    }
    Ok(())
}
