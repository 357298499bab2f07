//! Compiled plans that run networks on the GPU: [`ann`] runs the (non-spiking) network
//! itself, compiled once into a list of GPU steps; [`calibrate`](mod@calibrate) gathers
//! activation statistics through an observed ANN plan; [`snn`] simulates the converted
//! network over timesteps; [`layerwise`] walks it layer by layer over all timesteps at once
//! for [`analyze`](mod@analyze) (conversion errors per layer) and [`tune`](mod@tune) (TTRBR
//! threshold tuning; the walk and these two run on either backend: `WalkDevice` picks the
//! GPU kernels or the CPU engine); [`evaluate`] runs a plan over a whole dataset.

pub mod analyze;
pub mod ann;
pub mod calibrate;
pub mod evaluate;
pub mod layerwise;
mod lower;
pub mod snn;
pub mod tune;

pub use ann::AnnPlan;
pub use calibrate::calibrate;
pub use evaluate::{evaluate_ann, evaluate_snn, AnnAccuracy, SnnAccuracy};
pub use snn::{PassTime, SnnBatchResult, SnnPlan};

use crate::gpu::GpuError;

/// Checks that `images` holds `count` images of `input_len` values and that `count` fits a
/// plan compiled for `batch` images.
pub(crate) fn check_batch_input(images: &[f32], count: usize, batch: usize, input_len: usize) -> Result<(), GpuError> {
    if count > batch {
        return Err(GpuError::InvalidInput(format!("{count} images given to a plan compiled for batches of {batch}")));
    }
    if images.len() != count * input_len {
        return Err(GpuError::InvalidInput(format!(
            "expected {count} images of {input_len} values ({} values), got {} values",
            count * input_len,
            images.len()
        )));
    }
    Ok(())
}
