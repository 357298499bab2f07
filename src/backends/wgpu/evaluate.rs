//! Whole datasets on the wgpu backend: compiled plans run through the dataset loops every
//! backend shares ([`crate::engine::evaluate`]), one plan batch per submission.

use crate::engine::{ann_accuracy, snn_accuracy, AnnAccuracy, EvaluationSet, SnnAccuracy};

use super::{AnnPlan, GpuContext, GpuError, SnnPlan};

/// Runs `plan` over `set`, one plan batch per submission; `progress` is called with the
/// images done so far.
pub fn evaluate_ann(
    ctx: &GpuContext,
    plan: &AnnPlan,
    set: EvaluationSet<'_>,
    progress: impl FnMut(usize),
) -> Result<AnnAccuracy, GpuError> {
    let logits = |images: &[f32], count: usize| plan.run(ctx, images, count);
    ann_accuracy(set, plan.batch(), plan.num_classes(), logits, progress)
}

/// Simulates `plan` for `timesteps` steps over `set`, one plan batch at a time; `progress`
/// is called with the images done so far.
pub fn evaluate_snn(
    ctx: &GpuContext,
    plan: &SnnPlan,
    set: EvaluationSet<'_>,
    timesteps: usize,
    progress: impl FnMut(usize),
) -> Result<SnnAccuracy, GpuError> {
    let run = |images: &[f32], labels: &[u32], count: usize| plan.run(ctx, images, labels, count, timesteps);
    snn_accuracy(set, timesteps, plan.batch(), run, progress)
}
