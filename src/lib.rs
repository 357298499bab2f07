//! spikeconv: convert trained CIFAR ResNets into integrate-and-fire spiking neural
//! networks and simulate them on the GPU with wgpu.
//!
//! Data flows checkpoint → [`model`] (graph) → [`convert`] (BN folding, thresholds) →
//! [`gpu`] / [`sim`] (compiled plans run on the GPU) → [`report`]. [`reference`](mod@reference) holds the
//! CPU reference of every GPU kernel; [`data`] reads datasets. See `ARCHITECTURE.md`.

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
