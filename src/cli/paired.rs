//! `spikeconv paired`: compare the networks of a `sweep --predictions` file image by image
//! (exact McNemar test), the comparison that fits methods run on the same images.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use spikeconv::report::PredictionTable;

/// Arguments of `spikeconv paired`.
#[derive(Debug, Args)]
pub struct PairedArgs {
    /// Per-image predictions written by `spikeconv sweep --predictions`.
    #[arg(value_name = "PREDICTIONS.csv")]
    pub predictions: PathBuf,
}

pub fn run(args: &PairedArgs) -> anyhow::Result<()> {
    let path = &args.predictions;
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let table = PredictionTable::from_csv(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if table.labels.is_empty() {
        anyhow::bail!("{}: no images", path.display());
    }
    print!("{}", table.paired_table());
    Ok(())
}
