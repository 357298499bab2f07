//! Compiled plans that run networks on the GPU: [`ann`] runs the (non-spiking) network
//! itself, compiled once into a list of GPU steps.

pub mod ann;

pub use ann::AnnPlan;
pub mod evaluate;

pub use evaluate::{evaluate_ann, AnnAccuracy};
