//! spikeconv: convert trained CIFAR ResNets into integrate-and-fire spiking neural
//! networks and simulate them on any GPU with wgpu, or natively on the CPU.
//!
//! Data flows checkpoint → [`model`] (graph) → [`convert`] (BN folding, thresholds) →
//! [`pipeline`] (calibration, tuning) on a [`backend`]: [`cpu`] (native kernels) or
//! [`gpu`] / [`sim`] (wgpu plans) → [`jobs`] (sweep, shards) → [`report`].
//! [`reference`](mod@reference) holds the plain CPU reference every kernel is tested
//! against; [`data`] reads datasets, [`io`] opens the user's files safely, [`memory`] is the
//! budget sizing plans against. See `ARCHITECTURE.md`.

pub mod backend;
pub mod convert;
pub mod cpu;
pub mod data;
pub mod error;
pub mod gpu;
pub mod io;
pub mod jobs;
pub mod memory;
pub mod model;
pub mod pipeline;
pub mod reference;
pub mod report;
pub mod sim;

pub use error::{Error, Result};
