//! spikeconv: convert trained CIFAR ResNets into integrate-and-fire spiking neural
//! networks and simulate them on any GPU with wgpu, or natively on the CPU.
//!
//! Data flows checkpoint → [`model`] (graph) → [`convert`] (BN folding, thresholds) →
//! [`pipeline`] (calibration, [`tuning`]) on one of the [`backends`] (the native CPU
//! kernels, or the wgpu kernels on any GPU), which implement the backend-neutral
//! [`engine`] (result types, the schedule, the layer-major walk) → [`jobs`] (ann, sweep,
//! analyze, bench, shards) → [`report`]. [`reference`](mod@reference) holds the plain CPU
//! reference every kernel is tested against; [`data`] reads datasets, [`io`] opens the
//! user's files safely, [`memory`] is the budget sizing plans against. See
//! `ARCHITECTURE.md` for the dependency rules and how to add an operation or a backend.

pub mod backends;
pub mod convert;
pub mod data;
pub mod engine;
pub mod error;
pub mod io;
pub mod jobs;
pub mod memory;
pub mod model;
pub mod pipeline;
pub mod reference;
pub mod report;
pub mod tuning;

pub use error::{Error, Result};
