//! Compiled plans that run networks on the GPU: [`ann`] runs the (non-spiking) network
//! itself, compiled once into a list of GPU steps.

pub mod ann;
pub mod calibrate;
pub mod snn;

pub use ann::AnnPlan;
pub use calibrate::calibrate;
pub use snn::{SnnBatchResult, SnnPlan};
pub mod evaluate;

pub use evaluate::{evaluate_ann, evaluate_snn, AnnAccuracy, SnnAccuracy};
