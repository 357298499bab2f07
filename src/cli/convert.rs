//! `spikeconv convert`: calibrate a checkpoint on the chosen backend, choose thresholds and write the
//! converted SNN (folded weights, thresholds, v_init, graph) to a safetensors file.

use std::path::PathBuf;

use clap::Args;
use spikeconv::convert::snn_file::{write_snn, InputNormalization, SnnFile};

use super::{BackendArgs, CalibrationArgs, ModelArgs};

/// Arguments of `spikeconv convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
    #[command(flatten)]
    pub device: BackendArgs,
    /// Where to write the converted SNN (safetensors).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    if args.calibration.threshold.contains(',') {
        anyhow::bail!("--threshold: convert writes one network; give one method (sweep accepts several)");
    }
    if args.calibration.tune_timesteps.len() > 1 {
        anyhow::bail!("--tune-timesteps: convert writes one network; give one T (sweep accepts several)");
    }
    let network = args.model.load()?;
    let backend = args.device.open()?;
    // The last network: with --bias-correction a baseline method gives its plain network first.
    let Some(snn) = args.calibration.convert(&backend, &network, &args.device, None)?.pop() else {
        anyhow::bail!("--threshold {}: no network was converted", args.calibration.threshold);
    };
    println!("{:<24} {:>9} {:>12}", "IF layer", "neurons", "threshold");
    for (layer, info) in snn.layers.iter().zip(snn.layer_infos()) {
        let values = layer.thresholds.values();
        let shown = if values.len() == 1 {
            format!("{:.4}", values[0])
        } else {
            let (lo, hi) = values.iter().fold((f32::INFINITY, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            format!("{lo:.3}..{hi:.3}")
        };
        println!("{:<24} {:>9} {:>12}", layer.name, info.neurons, shown);
    }
    let file = SnnFile {
        normalization: InputNormalization::rgb(network.normalization.mean, network.normalization.std),
        source_model: network.path.display().to_string(),
        snn,
    };
    write_snn(&args.output, &file)?;
    let tuned = file.snn.tuned_for_timesteps.map(|t| format!(", tuned for T = {t}")).unwrap_or_default();
    eprintln!(
        "wrote {} ({}{tuned}, v_init {}; calibrated on {}: {})",
        args.output.display(),
        file.snn.threshold_method,
        file.snn.v_init,
        backend.name(),
        backend.describe()
    );
    Ok(())
}
