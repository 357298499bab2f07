//! `spikeconv paired`: compare the networks of `sweep --predictions` files image by image
//! (exact McNemar test), the comparison that fits methods run on the same images.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use spikeconv::report::PredictionTable;

/// Arguments of `spikeconv paired`.
#[derive(Debug, Args)]
pub struct PairedArgs {
    /// Per-image predictions written by `spikeconv sweep --predictions`; several files (of
    /// sweeps over the same images, read after the same timestep) are compared as one table.
    #[arg(value_name = "PREDICTIONS.csv", required = true)]
    pub predictions: Vec<PathBuf>,

    /// Print one JSON object per pair (JSON lines) instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &PairedArgs) -> anyhow::Result<()> {
    let mut files = args.predictions.iter();
    let first = files.next().context("no predictions file given")?;
    let mut table = read(first)?;
    for path in files {
        table.merge(read(path)?).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if args.json {
        for pair in table.paired() {
            println!("{}", serde_json::to_string(&pair)?);
        }
    } else {
        print!("{}", table.paired_table());
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<PredictionTable> {
    let text = spikeconv::io::read_text(path)?;
    let table = PredictionTable::from_csv(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if table.labels.is_empty() {
        anyhow::bail!("{}: no images", path.display());
    }
    if table.networks.is_empty() {
        anyhow::bail!("{}: only the ANN's column, no network to compare it with", path.display());
    }
    Ok(table)
}
