//! The jobs a user runs, as library calls that return reports: the command line maps its
//! flags onto them, and tests (or the Python binding) call them without the binary.
//!
//! - [`ann`](mod@ann): the ANN's accuracy on a dataset;
//! - [`sweep`](mod@sweep): simulate converted networks over every timestep on a set of
//!   images, next to the ANN; with a [`Shard`] only one contiguous part of the images,
//!   written as a [`ShardRecord`] that [`merge`] combines into the report one run would
//!   have given;
//! - [`analyze`](mod@analyze): conversion errors per IF layer;
//! - [`bench`](mod@bench): simulation and ANN throughput.
//!
//! Conversion itself (calibration, thresholds, tuning) is [`crate::pipeline::convert`].

pub mod analyze;
pub mod ann;
pub mod bench;
pub mod shard;
pub mod sweep;

pub use analyze::{analyze, AnalyzeJob};
pub use ann::{ann, AnnJob, AnnOutcome};
pub use bench::{bench, BenchJob};
pub use shard::{merge, Shard, ShardRecord};
pub use sweep::{sweep, SweepJob, SweepOutcome};
