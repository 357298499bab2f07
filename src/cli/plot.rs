//! `spikeconv plot`: draw the JSON lines of several `sweep --json` or `analyze --json` runs
//! in one chart, e.g. a standard and a restructured network side by side.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use spikeconv::report::compare::{
    analysis_chart, energy_chart, read_runs, sweep_chart, CompareError, LayerMetric, Runs,
};

/// Arguments of `spikeconv plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Files of JSON lines printed by `spikeconv sweep --json` (accuracy against
    /// timestep) or by `spikeconv analyze --json` (a per-layer value against depth); all
    /// of one kind. Each line becomes a curve.
    #[arg(required = true, value_name = "RUNS.jsonl")]
    pub runs: Vec<PathBuf>,
    /// Chart to write (`.svg` or `.png`).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Chart title (the image count or the timesteps are appended).
    #[arg(long, default_value = "spikeconv")]
    pub title: String,
    /// For analyses: the per-layer value drawn against depth. For sweeps: `energy` draws
    /// each method's accuracy after T against its estimated energy per image, a point per
    /// run (e.g. sweeps to T = 4, 8, 16, 32); otherwise accuracy against timestep.
    #[arg(long, value_enum, default_value_t = MetricArg::Deviation)]
    pub metric: MetricArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MetricArg {
    /// Mean |deviation error|.
    Deviation,
    /// Mean |quantization error|.
    Quantization,
    /// Mean |SNN value − ANN activation|.
    Total,
    /// Mean |deviation error| divided by the layer's mean threshold (networks whose
    /// activations have different scales become comparable).
    RelativeDeviation,
    /// Mean |SNN value − ANN activation| divided by the layer's mean threshold.
    RelativeTotal,
    /// Input current variance over the timesteps.
    InputVariance,
    /// Spikes per neuron per step.
    FiringRate,
    /// Mean over channels of |a channel's mean error| (SNN value − ANN activation): what a
    /// per-channel bias current cancels (`--bias-correction`).
    ChannelMeanError,
    /// Sweeps: accuracy after T against estimated energy per image.
    Energy,
}

impl TryFrom<MetricArg> for LayerMetric {
    type Error = CompareError;

    fn try_from(metric: MetricArg) -> Result<Self, CompareError> {
        Ok(match metric {
            MetricArg::Deviation => LayerMetric::Deviation,
            MetricArg::Quantization => LayerMetric::Quantization,
            MetricArg::Total => LayerMetric::Total,
            MetricArg::RelativeDeviation => LayerMetric::RelativeDeviation,
            MetricArg::RelativeTotal => LayerMetric::RelativeTotal,
            MetricArg::InputVariance => LayerMetric::InputVariance,
            MetricArg::FiringRate => LayerMetric::FiringRate,
            MetricArg::ChannelMeanError => LayerMetric::ChannelMeanError,
            MetricArg::Energy => return Err(CompareError::SweepMetric("energy")),
        })
    }
}

pub fn run(args: &PlotArgs) -> anyhow::Result<()> {
    let paths: Vec<&std::path::Path> = args.runs.iter().map(PathBuf::as_path).collect();
    let chart = match read_runs(&paths)? {
        Runs::Sweeps(runs) if matches!(args.metric, MetricArg::Energy) => energy_chart(&runs, &args.title)?,
        Runs::Sweeps(runs) => sweep_chart(&runs, &args.title),
        Runs::Analyses(runs) => analysis_chart(&runs, args.metric.try_into()?, &args.title)?,
    };
    chart.write(&args.out)?;
    eprintln!("wrote {} ({} curves)", args.out.display(), chart.series.len());
    Ok(())
}
