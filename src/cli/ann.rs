//! `spikeconv ann`: evaluate the checkpoint's ANN on the chosen backend and print its accuracy.

use std::time::Instant;

use clap::Args;
use spikeconv::convert::fold_batch_norm;
use spikeconv::report::AnnReport;

use super::{open_dataset, BackendArgs, DataArgs, ModelArgs, DEFAULT_MAX_BATCH};

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
    if dataset.num_classes != network.info.num_classes {
        anyhow::bail!(
            "{}: the network has {} classes but the dataset {} has {}",
            network.path.display(),
            network.info.num_classes,
            args.data.data.display(),
            dataset.num_classes
        );
    }
    let graph = fold_batch_norm(&network.graph);
    let backend = args.device.open()?;
    let batch = backend.ann_batch(&graph, args.device.requested_batch(), DEFAULT_MAX_BATCH, dataset.len())?;

    let progress = super::progress_bar(dataset.len() as u64, "images");
    let started = Instant::now();
    let accuracy = backend.evaluate_ann(&graph, &dataset, &network.normalization, dataset.len(), batch, |done| {
        progress.set_position(done as u64)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    progress.finish_and_clear();

    let report = AnnReport {
        model: network.path.display().to_string(),
        data: args.data.data.display().to_string(),
        backend: backend.name().to_string(),
        adapter: backend.describe(),
        depth: network.info.depth,
        num_classes: network.info.num_classes,
        images: accuracy.images,
        correct: accuracy.correct,
        accuracy: accuracy.correct as f64 / accuracy.images as f64,
        batch,
        seconds,
        images_per_second: accuracy.images as f64 / seconds,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.to_text());
    }
    Ok(())
}
