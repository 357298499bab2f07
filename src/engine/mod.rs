//! The backend-neutral engine: what every backend computes and how the rest of the crate
//! sees it. [`results`] holds what runs return (reports read only these), [`evaluate`] the
//! dataset loops and the [`EvaluationSet`], [`walk`](mod@walk) the layer-major walk's
//! interface ([`Walker`], [`LayerProbe`]) that tuning and analysis run on, [`sizing`] the
//! memory rules plans are sized by, [`error`] the error backends convert theirs into.
//!
//! Backends ([`crate::backends`]) import this module; it imports none of them.

pub mod error;
pub mod evaluate;
pub mod results;
pub mod schedule;
pub mod sizing;
pub mod walk;

pub use error::EngineError;
pub use evaluate::{ann_accuracy, snn_accuracy, EvaluationSet};
pub use results::{argmax_rows, AnnAccuracy, ConvStats, EngineStats, PassTime, SnnAccuracy, SnnBatchResult};
pub use schedule::{Fusing, Schedule, Step};
pub use walk::{walk, LayerProbe, LayerSetting, ProbeSource, ScanShape, Walker};
