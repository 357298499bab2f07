//! Results as people and programs read them: text tables on stdout, JSON and CSV on
//! request, and plots written as files.

pub mod analysis;
pub mod ann;
pub mod bench;
pub mod compare;
pub mod plot;
pub mod predictions;
pub mod profile;
pub mod sweep;
pub mod tuning;

pub use analysis::{AnalysisReport, NetworkErrors};
pub use ann::AnnReport;
pub use bench::BenchReport;
pub use plot::{LineChart, Series};
pub use predictions::PredictionTable;
pub use sweep::{LayerActivity, QuantizedAnn, SnnCurve, SweepReport};
pub use tuning::{TuningReport, TuningRun};

/// A result that prints as a text table and saves as CSV, JSON lines and a chart (what
/// the commands' `--json`, `--csv` and `--plot` write).
pub trait Report {
    fn to_table(&self) -> String;
    fn to_csv(&self) -> String;
    fn to_json_lines(&self) -> Result<String, serde_json::Error>;
    fn chart(&self) -> LineChart;
}

/// How tables, CSV headers and charts name a converted network: its threshold method, with
/// the timesteps its thresholds were tuned for if any, e.g. `channel-ttrbr (T=16)`.
pub fn method_label(method: &str, tuned_for_timesteps: Option<usize>) -> String {
    match tuned_for_timesteps {
        Some(t) => format!("{method} (T={t})"),
        None => method.to_string(),
    }
}

/// A model path's file name without its extension (`resnet20_cifar10_akamaster`), for
/// chart titles and series names.
pub fn model_name(path: &str) -> &str {
    std::path::Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or(path)
}
