//! `spikeconv merge`: combines the shard records of `sweep --shard K/N` into the report one
//! sweep over all the images would have printed (table, `--json`, `--csv`, `--plot`), and
//! its `--predictions` file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use spikeconv::jobs::{merge, ShardRecord};

use super::OutputArgs;

/// Arguments of `spikeconv merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard records written by `sweep --shard K/N --shard-out FILE`, in any order.
    #[arg(value_name = "SHARD.json", required = true)]
    pub shards: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Also write every image's predicted class, as `sweep --predictions` does.
    #[arg(long, value_name = "FILE")]
    pub predictions: Option<PathBuf>,
}

pub fn run(args: &MergeArgs) -> anyhow::Result<()> {
    let mut records = Vec::with_capacity(args.shards.len());
    for path in &args.shards {
        let name = path.display().to_string();
        let text = spikeconv::io::read_text(path)?;
        records.push((name.clone(), ShardRecord::from_json(&name, &text)?));
    }
    let (report, predictions) = merge(&records)?;
    if let Some(path) = &args.predictions {
        std::fs::write(path, predictions.to_csv())
            .with_context(|| format!("{}: cannot write the predictions CSV", path.display()))?;
    }
    args.output.emit(&report)
}
