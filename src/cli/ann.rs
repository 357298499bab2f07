//! `spikeconv ann`: evaluate the checkpoint's ANN on the chosen backend and print its accuracy.

use clap::Args;
use spikeconv::jobs::{ann, AnnJob};

use super::{open_dataset, BackendArgs, DataArgs, ModelArgs};

/// Arguments of `spikeconv ann`.
#[derive(Debug, Args)]
pub struct AnnArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub device: BackendArgs,
    /// Print one JSON object instead of the text summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &AnnArgs) -> anyhow::Result<()> {
    let network = args.model.load()?;
    let dataset = open_dataset(&args.data)?;
    let backend = args.device.open()?;
    let job = AnnJob {
        network: &network,
        dataset: &dataset,
        data: args.data.data.display().to_string(),
        batch: args.device.requested_batch(),
    };
    let progress = super::progress_bar(dataset.len() as u64, "images");
    let report = ann(&backend, &job, |done| progress.set_position(done as u64))?.report;
    progress.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.to_text());
    }
    Ok(())
}
