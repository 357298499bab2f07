//! Results as people and programs read them: text tables on stdout, JSON and CSV on
//! request, and plots written as files.

pub mod analysis;
pub mod ann;
pub mod compare;
pub mod plot;
pub mod sweep;

pub use analysis::{AnalysisReport, NetworkErrors};
pub use ann::AnnReport;
pub use plot::{LineChart, Series};
pub use sweep::{LayerActivity, SnnCurve, SweepReport};
