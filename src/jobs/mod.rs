//! The jobs a user runs, as library calls that return reports: the command line maps its
//! flags onto them, and tests (or a Python binding) call them without the binary.
//!
//! - [`sweep`]: simulate converted networks over every timestep on a set of images, next
//!   to the ANN; with a [`Shard`] only one contiguous part of the images, written as a
//!   [`ShardRecord`] that [`merge`] combines into the report one run would have given.

pub mod shard;
pub mod sweep;

pub use shard::{merge, Shard, ShardRecord};
pub use sweep::{sweep, SweepJob, SweepOutcome};
