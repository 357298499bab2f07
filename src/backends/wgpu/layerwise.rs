//! The layer-major walk ([`crate::engine::walk`]) on the GPU: the network walked once in
//! topological order, each node computed for all T timesteps at once next to the ANN on
//! the same images; at an IF layer its current for every timestep and the ANN's activation
//! are both on the GPU, where the layer-major kernels (layerwise.wgsl) measure it.
//!
//! Memory: a value of every timestep is `T × images × neurons` floats, so one walk takes as
//! many images as fit one storage binding ([`GpuBackend::max_images`]); values are dropped
//! as soon as their last reader has run.

use crate::backends::wgpu::buffers::{storage_from_f32, storage_zeroed, submit_and_read};
use crate::backends::wgpu::kernels::record_steps;
use crate::backends::wgpu::layers::{affine_step, Affine};
use crate::backends::wgpu::layerwise_layers::{
    error_analysis_step, if_scan_step, sum_partials_by_channel, threshold_search_step, ScanLayout, ThresholdSearch,
};
use crate::backends::wgpu::{GpuBackend, GpuContext, GpuError, GpuStep, Kernels};
use crate::convert::snn::{validate_layer, SpikingNetwork};
use crate::engine::schedule::{Fusing, Schedule};
use crate::engine::walk::{
    check_bias, network_setting, settings_of, AtLayer, LayerProbe, LayerSetting, ProbeSource, ScanShape, Walker,
    ERROR_STATS,
};
use crate::engine::EngineError;
use crate::model::graph::NodeId;

use super::ann::{node_steps, StepIo};

/// An IF layer's values on the GPU, where a walk reached it.
struct GpuProbe<'a> {
    ctx: &'a GpuContext,
    kernels: &'a Kernels,
    /// The layer's input current without its bias current.
    current: &'a wgpu::Buffer,
    /// The ANN's activation of the layer.
    reference: &'a wgpu::Buffer,
}

impl GpuProbe<'_> {
    fn error_sums(&self, scan: &ScanShape, thresholds: &[f32], bias_current: &[f32]) -> Result<Vec<f64>, GpuError> {
        let (ctx, kernels) = (self.ctx, self.kernels);
        let biased = biased_current(ctx, kernels, scan, self.current, bias_current)?;
        let thresholds = storage_from_f32(ctx, "analysed thresholds", thresholds)?;
        let partials = storage_zeroed(ctx, "error partial sums", scan.groups() * ERROR_STATS)?;
        let current = biased.as_ref().map_or(self.current, |(_, buffer)| buffer);
        let step = error_analysis_step(ctx, kernels, scan, current, &thresholds, self.reference, &partials)?;
        let steps: Vec<_> = biased.map(|(step, _)| step).into_iter().chain([step]).collect();
        let values = run_steps(ctx, &steps, &partials, scan.groups() * ERROR_STATS)?;
        Ok(sum_partials_by_channel(scan, &values, ERROR_STATS))
    }

    fn candidate_sums(
        &self,
        scan: &ScanShape,
        candidates: &[f32],
        per_channel: usize,
        bias_current: &[f32],
    ) -> Result<Vec<f64>, GpuError> {
        let (ctx, kernels) = (self.ctx, self.kernels);
        let biased = biased_current(ctx, kernels, scan, self.current, bias_current)?;
        let thresholds = storage_from_f32(ctx, "candidate thresholds", candidates)?;
        let partials = storage_zeroed(ctx, "candidate partial sums", scan.groups() * per_channel)?;
        let current = biased.as_ref().map_or(self.current, |(_, buffer)| buffer);
        let search = ThresholdSearch { scan, per_channel, thresholds: &thresholds, reference: self.reference };
        let step = threshold_search_step(ctx, kernels, &search, current, &partials)?;
        let steps: Vec<_> = biased.map(|(step, _)| step).into_iter().chain([step]).collect();
        let values = run_steps(ctx, &steps, &partials, scan.groups() * per_channel)?;
        Ok(sum_partials_by_channel(scan, &values, per_channel))
    }
}

impl ProbeSource for GpuProbe<'_> {
    fn error_sums(&self, scan: &ScanShape, thresholds: &[f32], bias_current: &[f32]) -> Result<Vec<f64>, EngineError> {
        GpuProbe::error_sums(self, scan, thresholds, bias_current).map_err(EngineError::backend)
    }

    fn candidate_sums(
        &self,
        scan: &ScanShape,
        candidates: &[f32],
        per_channel: usize,
        bias_current: &[f32],
    ) -> Result<Vec<f64>, EngineError> {
        GpuProbe::candidate_sums(self, scan, candidates, per_channel, bias_current).map_err(EngineError::backend)
    }
}

fn run_steps(ctx: &GpuContext, steps: &[GpuStep], partials: &wgpu::Buffer, len: usize) -> Result<Vec<f32>, GpuError> {
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("layer probe") });
    record_steps(&mut encoder, steps);
    submit_and_read(ctx, encoder, partials, 0, len)
}

/// The step that writes `current + bias_current` (per channel, every timestep) to a new
/// buffer, and that buffer; `None` when every bias current is 0 (the current as it is).
/// The IF kernels of the time-major plan add the same f32 values in the same order.
pub(crate) fn biased_current(
    ctx: &GpuContext,
    kernels: &Kernels,
    scan: &ScanShape,
    current: &wgpu::Buffer,
    bias_current: &[f32],
) -> Result<Option<(GpuStep, wgpu::Buffer)>, GpuError> {
    let channels = scan.shape.channels;
    check_bias(bias_current, channels).map_err(|e| GpuError::InvalidInput(e.to_string()))?;
    if bias_current.iter().all(|&b| b == 0.0) {
        return Ok(None);
    }
    let values = if scan.constant_current { scan.images } else { scan.images * scan.timesteps };
    // `1 × x + b` is `x + b` exactly.
    let scale_shift: Vec<f32> = std::iter::repeat_n(1.0, channels).chain(bias_current.iter().copied()).collect();
    let scale_shift = storage_from_f32(ctx, "bias current", &scale_shift)?;
    let output = storage_zeroed(ctx, "current with bias", values * scan.shape.len())?;
    let affine = Affine { scale_shift: &scale_shift, relu: false };
    let step = affine_step(ctx, kernels, affine, scan.shape, values, current, &output)?;
    Ok(Some((step, output)))
}

impl Walker for GpuBackend {
    /// Every node's values for all timesteps must fit one storage binding of the adapter.
    fn max_images(&self, snn: &SpikingNetwork, timesteps: usize) -> usize {
        let largest = snn.graph.largest_value();
        let per_image = (largest * timesteps.max(1) * 4) as u64;
        let by_binding = (self.ctx.max_binding_bytes() / per_image.max(1)) as usize;
        by_binding.min(u32::MAX as usize / (largest * timesteps.max(1)).max(1))
    }

    fn walk_layers(
        &self,
        snn: &SpikingNetwork,
        images: &[f32],
        count: usize,
        timesteps: usize,
        at_layer: &mut AtLayer<'_>,
    ) -> Result<Vec<LayerSetting>, EngineError> {
        let ctx = &self.ctx;
        // The hook's own error, kept to return as it was.
        let mut failure: Option<EngineError> = None;
        let result = ctx.checked("walking the SNN layer by layer", || {
            walk_checked(ctx, &self.kernels, snn, images, count, timesteps, &mut |probe| {
                at_layer(probe).map_err(|error| {
                    let message = error.to_string();
                    failure = Some(error);
                    GpuError::InvalidInput(message)
                })
            })
        });
        if let Some(error) = failure {
            return Err(error);
        }
        let chosen = result.map_err(EngineError::backend)?;
        settings_of(chosen, snn)
    }
}

fn walk_checked(
    ctx: &GpuContext,
    kernels: &Kernels,
    snn: &SpikingNetwork,
    images: &[f32],
    count: usize,
    timesteps: usize,
    at_layer: &mut dyn FnMut(&LayerProbe<'_>) -> Result<Option<LayerSetting>, GpuError>,
) -> Result<Vec<Option<LayerSetting>>, GpuError> {
    let graph = &snn.graph;
    let nodes = graph.nodes();
    let schedule =
        Schedule::snn(snn, Fusing::Epilogue { relu: false }).map_err(|e| GpuError::InvalidInput(e.to_string()))?;
    let constant = &schedule.static_node;

    // `ann[id]`: the ANN's value over the images (also the SNN's for static nodes);
    // `spiking[id]`: the SNN's value at every timestep; `repeated[id]`: a static value
    // copied for every timestep, for a per-timestep node that reads it.
    let mut ann: Vec<Option<wgpu::Buffer>> = vec![None; nodes.len()];
    let mut spiking: Vec<Option<wgpu::Buffer>> = vec![None; nodes.len()];
    let mut repeated: Vec<Option<wgpu::Buffer>> = vec![None; nodes.len()];
    ann[0] = Some(storage_from_f32(ctx, "layer-major input", images)?);
    let mut chosen: Vec<Option<LayerSetting>> = vec![None; snn.layers.len()];
    let missing =
        |id: NodeId| GpuError::InvalidInput(format!("node `{}` is read before it is computed", nodes[id].name));

    for step in &schedule.steps {
        let position = step.position;
        let node = &nodes[step.start];
        let shape = nodes[position].shape;
        let label = |what: &str| format!("{what} of {}", nodes[position].name);
        let new_encoder = || ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("walk") });

        let ann_value = storage_zeroed(ctx, &label("ANN value"), count * shape.len())?;
        let ann_of = |id: NodeId| ann[id].as_ref().ok_or_else(|| missing(id));
        let io = StepIo {
            batch: count,
            timesteps: None,
            buffer_of: &ann_of,
            spike_thresholds: &|_| None,
            output: &ann_value,
        };
        let ann_steps = node_steps(ctx, kernels, graph, step, &io)?;
        let mut encoder = new_encoder();
        record_steps(&mut encoder, &ann_steps);

        if !constant[position] {
            let spiking_value =
                storage_zeroed(ctx, &label("values of every timestep"), timesteps * count * shape.len())?;
            if let Some(index) = schedule.if_layer[position] {
                // The ANN activation must be computed before the probe reads it.
                ctx.queue.submit([std::mem::replace(&mut encoder, new_encoder()).finish()]);
                let source = node.inputs[0];
                let constant_current = constant[source];
                let current = if constant_current { ann[source].as_ref() } else { spiking[source].as_ref() }
                    .ok_or_else(|| missing(source))?;
                let network = network_setting(snn, index);
                let scan = ScanShape {
                    shape,
                    images: count,
                    timesteps,
                    constant_current,
                    v_init: network.v_init,
                    neuron: snn.neuron,
                };
                let source = GpuProbe { ctx, kernels, current, reference: &ann_value };
                let probe = LayerProbe::new(index, scan, network.bias_current.clone(), &source);
                let setting = at_layer(&probe)?.unwrap_or(network);
                let name = &snn.layers[index].name;
                validate_layer(
                    name,
                    &setting.thresholds,
                    Some(setting.v_init),
                    Some(&setting.bias_current),
                    shape.channels,
                )
                .map_err(|e| GpuError::InvalidInput(e.to_string()))?;
                let buffer = storage_from_f32(ctx, "IF thresholds", &setting.thresholds.per_channel(shape.channels))?;
                let scan = ScanShape { v_init: setting.v_init, ..scan };
                let biased = biased_current(ctx, kernels, &scan, current, &setting.bias_current)?;
                let current = biased.as_ref().map_or(current, |(_, buffer)| buffer);
                let step = if_scan_step(ctx, kernels, &scan, current, &buffer, &spiking_value, false)?;
                let steps: Vec<_> = biased.iter().map(|(step, _)| step.clone()).chain([step]).collect();
                record_steps(&mut encoder, &steps);
                chosen[index] = Some(setting);
            } else {
                for id in step.fusion.inputs(graph, step.start) {
                    if constant[id] && repeated[id].is_none() {
                        let value = ann[id].as_ref().ok_or_else(|| missing(id))?;
                        let bytes = (count * nodes[id].shape.len() * 4) as u64;
                        let copies = storage_zeroed(
                            ctx,
                            "static value per timestep",
                            timesteps * count * nodes[id].shape.len(),
                        )?;
                        for t in 0..timesteps as u64 {
                            encoder.copy_buffer_to_buffer(value, 0, &copies, t * bytes, bytes);
                        }
                        repeated[id] = Some(copies);
                    }
                }
                let buffer_of = |id: NodeId| {
                    if constant[id] { repeated[id].as_ref() } else { spiking[id].as_ref() }.ok_or_else(|| missing(id))
                };
                // Spikes of IF layers walked already (passed on by gated max pools too), at
                // the thresholds chosen for them.
                let spike_thresholds = |id: NodeId| {
                    let setting = chosen[schedule.spike_layer(id)?].as_ref()?;
                    Some(setting.thresholds.per_channel(nodes[id].shape.channels))
                };
                let io = StepIo {
                    batch: timesteps * count,
                    timesteps: Some(timesteps),
                    buffer_of: &buffer_of,
                    spike_thresholds: &spike_thresholds,
                    output: &spiking_value,
                };
                let steps = node_steps(ctx, kernels, graph, step, &io)?;
                record_steps(&mut encoder, &steps);
            }
            spiking[position] = Some(spiking_value);
        }
        ctx.queue.submit([encoder.finish()]);
        ann[position] = Some(ann_value);
        for id in schedule.dead_after(graph, step) {
            if id != position {
                ann[id] = None;
                spiking[id] = None;
                repeated[id] = None;
            }
        }
    }
    Ok(chosen)
}
