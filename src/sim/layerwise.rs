//! Layer-major simulation of a [`SpikingNetwork`]: the network is walked once in
//! topological order and each node is computed for all T timesteps at once, next to the
//! ANN on the same images. This is what error analysis and threshold tuning need: when an
//! IF layer is reached, its input current for every timestep (the real spiking input of the
//! layers already converted) and the ANN's activation are both on the GPU, so the layer can
//! be measured, or its thresholds chosen, before any later layer sees its spikes.
//!
//! Why it is exact: every node other than an IF layer is linear and time-independent, so a
//! node's values at all timesteps are that node applied to a batch of `T × images` inputs
//! (timestep-major: `(t × images + b)`); only the IF layers carry state across time, and
//! [`if_scan_step`] runs each neuron's T steps in order with the update of the time-major
//! reference. The GPU simulation ([`super::SnnPlan`]) runs the same way, without the ANN.
//!
//! Memory: a value of every timestep is `T × images × neurons` floats, so one walk takes as
//! many images as fit one storage binding ([`max_images`]); ResNet values are dropped as
//! soon as their last reader has run.

use crate::convert::bias_correction::mean_errors;
use crate::convert::snn::{static_nodes, validate_layer, validate_v_init, SpikingNetwork};
use crate::convert::threshold::Thresholds;
use crate::gpu::buffers::{storage_from_f32, storage_zeroed, submit_and_read};
use crate::gpu::kernels::record_steps;
use crate::gpu::layers::affine_step;
use crate::gpu::layerwise_layers::{
    error_analysis_step, if_scan_step, sum_partials_by_channel, threshold_search_step, ScanShape, ERROR_STATS,
    SIGNED_TOTAL_STAT,
};
use crate::gpu::snn_layers::channel_thresholds;
use crate::gpu::{GpuContext, GpuError, GpuStep, Kernels};
use crate::model::graph::{NodeId, Op};

use super::ann::node_steps;
use super::check_batch_input;
use super::lower::Lowering;

/// Where a walk runs: the wgpu kernels on a GPU adapter, or the CPU backend's engine
/// ([`crate::cpu::CpuSnn::walk`], with [`crate::cpu::probe`] measuring each layer).
#[derive(Clone, Copy)]
pub enum WalkDevice<'a> {
    Gpu(&'a GpuContext, &'a Kernels),
    Cpu,
}

/// The IF layer a walk has reached: its current for every timestep and the ANN's activation
/// (on the GPU or in memory); [`LayerProbe::error_sums`] and [`LayerProbe::search`] measure it.
pub struct LayerProbe<'a> {
    /// Index of the layer in [`SpikingNetwork::layers`].
    pub layer: usize,
    /// The layer, its images and timesteps.
    pub scan: ScanShape,
    /// The layer's bias current per channel in the network walked (zeros where it has none).
    pub bias_current: Vec<f32>,
    source: ProbeSource<'a>,
}

/// Where a probe's values live.
enum ProbeSource<'a> {
    Gpu {
        ctx: &'a GpuContext,
        kernels: &'a Kernels,
        /// The layer's input current without its bias current.
        current: &'a wgpu::Buffer,
        reference: &'a wgpu::Buffer,
    },
    Cpu(crate::cpu::probe::LayerInput<'a>),
}

impl LayerProbe<'_> {
    /// The layer's error statistics with `thresholds` (and the layer's `v_init` and bias
    /// current): per channel, the [`ERROR_STATS`] sums over its neurons and images
    /// (`channels × ERROR_STATS`, see [`crate::reference::layerwise::neuron_errors`]).
    pub fn error_sums(&self, thresholds: &Thresholds) -> Result<Vec<f64>, GpuError> {
        self.error_sums_with(thresholds, self.scan.v_init, &self.bias_current)
    }

    /// [`Self::error_sums`] with membranes starting at `v_init` × the threshold and
    /// `bias_current` (one value per channel) added to the current every step.
    pub fn error_sums_with(
        &self,
        thresholds: &Thresholds,
        v_init: f32,
        bias_current: &[f32],
    ) -> Result<Vec<f64>, GpuError> {
        let channels = self.scan.shape.channels;
        validate_v_init(v_init).map_err(|e| GpuError::InvalidInput(e.to_string()))?;
        let (ctx, kernels, current, reference) = match &self.source {
            ProbeSource::Cpu(input) => {
                check_bias(bias_current, channels)?;
                let thresholds = channel_thresholds(thresholds, channels);
                return Ok(crate::cpu::probe::error_sums(input, &thresholds, v_init, bias_current));
            }
            ProbeSource::Gpu { ctx, kernels, current, reference } => (*ctx, *kernels, *current, *reference),
        };
        let biased = biased_current(ctx, kernels, &self.scan, current, bias_current)?;
        let thresholds = storage_from_f32(ctx, "analysed thresholds", &channel_thresholds(thresholds, channels))?;
        let partials = storage_zeroed(ctx, "error partial sums", self.scan.groups() * ERROR_STATS)?;
        let scan = ScanShape { v_init, ..self.scan };
        let current = biased.as_ref().map_or(current, |(_, buffer)| buffer);
        let step = error_analysis_step(ctx, kernels, &scan, current, &thresholds, reference, &partials)?;
        let steps: Vec<_> = biased.map(|(step, _)| step).into_iter().chain([step]).collect();
        let values = run_steps(ctx, &steps, &partials, self.scan.groups() * ERROR_STATS)?;
        Ok(sum_partials_by_channel(&self.scan, &values, ERROR_STATS))
    }

    /// Each channel's mean signed error `n θ / T − a` over its neurons and images, from
    /// the sums of [`Self::error_sums`] or [`Self::error_sums_with`].
    pub fn channel_mean_errors(&self, sums: &[f64]) -> Vec<f64> {
        let signed: Vec<f64> = sums.chunks_exact(ERROR_STATS).map(|channel| channel[SIGNED_TOTAL_STAT]).collect();
        mean_errors(&signed, self.scan.images * self.scan.shape.plane())
    }

    /// Tracking errors against the ANN under each candidate threshold, every membrane
    /// starting at `v_init` × its threshold and `bias_current` (one per channel) added every
    /// step: `candidates` holds `per_channel` thresholds for every channel (channel-major);
    /// the result is `channels × per_channel` sums over the channel's neurons and images.
    pub fn search(
        &self,
        candidates: &[f32],
        per_channel: usize,
        v_init: f32,
        bias_current: &[f32],
    ) -> Result<Vec<f64>, GpuError> {
        if candidates.len() != self.scan.shape.channels * per_channel {
            return Err(GpuError::InvalidInput(format!(
                "{} candidate thresholds for {} channels × {per_channel}",
                candidates.len(),
                self.scan.shape.channels
            )));
        }
        validate_v_init(v_init).map_err(|e| GpuError::InvalidInput(e.to_string()))?;
        let (ctx, kernels, current, reference) = match &self.source {
            ProbeSource::Cpu(input) => {
                check_bias(bias_current, self.scan.shape.channels)?;
                return Ok(crate::cpu::probe::candidate_sums(input, candidates, per_channel, v_init, bias_current));
            }
            ProbeSource::Gpu { ctx, kernels, current, reference } => (*ctx, *kernels, *current, *reference),
        };
        let biased = biased_current(ctx, kernels, &self.scan, current, bias_current)?;
        let thresholds = storage_from_f32(ctx, "candidate thresholds", candidates)?;
        let partials = storage_zeroed(ctx, "candidate partial sums", self.scan.groups() * per_channel)?;
        let current = biased.as_ref().map_or(current, |(_, buffer)| buffer);
        let step = threshold_search_step(
            ctx,
            kernels,
            &ScanShape { v_init, ..self.scan },
            per_channel,
            current,
            &thresholds,
            reference,
            &partials,
        )?;
        let steps: Vec<_> = biased.map(|(step, _)| step).into_iter().chain([step]).collect();
        let values = run_steps(ctx, &steps, &partials, self.scan.groups() * per_channel)?;
        Ok(sum_partials_by_channel(&self.scan, &values, per_channel))
    }
}

/// A bias current must have one value per channel.
fn check_bias(bias_current: &[f32], channels: usize) -> Result<(), GpuError> {
    if bias_current.len() == channels {
        Ok(())
    } else {
        Err(GpuError::InvalidInput(format!("{} bias currents for {channels} channels", bias_current.len())))
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
    check_bias(bias_current, channels)?;
    if bias_current.iter().all(|&b| b == 0.0) {
        return Ok(None);
    }
    let values = if scan.constant_current { scan.images } else { scan.images * scan.timesteps };
    // `1 × x + b` is `x + b` exactly.
    let scale_shift: Vec<f32> = std::iter::repeat_n(1.0, channels).chain(bias_current.iter().copied()).collect();
    let scale_shift = storage_from_f32(ctx, "bias current", &scale_shift)?;
    let output = storage_zeroed(ctx, "current with bias", values * scan.shape.len())?;
    let step = affine_step(ctx, kernels, &scale_shift, scan.shape, values, false, current, &output)?;
    Ok(Some((step, output)))
}

/// What an IF layer spikes with in a walk: its thresholds, initial membrane fraction and
/// bias current (one per channel).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSetting {
    pub thresholds: Thresholds,
    pub v_init: f32,
    pub bias_current: Vec<f32>,
}

/// Bytes of values a walk on the CPU may hold: a few values of every timestep at once.
const CPU_WALK_BYTES: usize = 8 << 30;

/// The most images one walk of `snn` over `timesteps` steps can take: on a GPU every
/// node's values for all timesteps must fit one storage binding of the adapter; on the CPU
/// a few such values (a node's inputs, its output, a residual) must fit [`CPU_WALK_BYTES`]
/// and the memory budget ([`crate::memory::budget`]).
pub fn max_images(device: WalkDevice<'_>, snn: &SpikingNetwork, timesteps: usize) -> usize {
    let largest = snn.graph.largest_value();
    let per_image = (largest * timesteps.max(1) * 4) as u64;
    match device {
        WalkDevice::Gpu(ctx, _) => {
            let by_binding = (ctx.max_binding_bytes() / per_image) as usize;
            by_binding.min(u32::MAX as usize / (largest * timesteps.max(1)))
        }
        WalkDevice::Cpu => {
            let budget = crate::memory::budget().map_or(CPU_WALK_BYTES, |b| (b as usize).min(CPU_WALK_BYTES));
            budget / (4 * per_image as usize)
        }
    }
}

/// Walks `snn` layer by layer over `count` normalized images (`images`, NCHW) for
/// `timesteps` steps. At every IF layer, `at_layer` gets a [`LayerProbe`] and may return
/// a new setting for that layer (`None` keeps the network's); the layer then spikes with
/// it for all later layers. Returns the setting every layer spiked with, in
/// [`SpikingNetwork::layers`] order.
pub fn walk(
    device: WalkDevice<'_>,
    snn: &SpikingNetwork,
    images: &[f32],
    count: usize,
    timesteps: usize,
    mut at_layer: impl FnMut(&LayerProbe<'_>) -> Result<Option<LayerSetting>, GpuError>,
) -> Result<Vec<LayerSetting>, GpuError> {
    let graph = &snn.graph;
    check_batch_input(images, count, count, graph.input_shape().len())?;
    if count == 0 || timesteps == 0 {
        return Err(GpuError::InvalidInput("a layer-major walk needs at least one image and one timestep".into()));
    }
    let fits = max_images(device, snn, timesteps);
    if count > fits {
        return Err(GpuError::InvalidInput(format!(
            "{count} images × {timesteps} timesteps do not fit one storage binding; at most {fits} images"
        )));
    }
    match device {
        WalkDevice::Gpu(ctx, kernels) => ctx.checked("walking the SNN layer by layer", || {
            walk_checked(ctx, kernels, snn, images, count, timesteps, &mut at_layer)
        }),
        WalkDevice::Cpu => walk_cpu(snn, images, count, timesteps, &mut at_layer),
    }
}

/// [`walk`] on the CPU backend's engine.
fn walk_cpu(
    snn: &SpikingNetwork,
    images: &[f32],
    count: usize,
    timesteps: usize,
    at_layer: &mut dyn FnMut(&LayerProbe<'_>) -> Result<Option<LayerSetting>, GpuError>,
) -> Result<Vec<LayerSetting>, GpuError> {
    let invalid = |e: crate::cpu::CpuError| GpuError::InvalidInput(e.to_string());
    let engine = crate::cpu::CpuSnn::new(snn).map_err(invalid)?;
    // The probe callback's own error, kept to return as it was, and every layer's setting.
    let mut failure: Option<GpuError> = None;
    let mut chosen: Vec<Option<LayerSetting>> = vec![None; snn.layers.len()];
    let result = engine.walk(images, count, timesteps, &mut |index, input| {
        let shape = input.shape;
        let v_init = snn.layer_v_init(index);
        let bias_current = snn.layer_bias_current(index);
        let scan = ScanShape { shape, images: count, timesteps, constant_current: input.constant, v_init };
        let probe =
            LayerProbe { layer: index, scan, bias_current: bias_current.clone(), source: ProbeSource::Cpu(input) };
        let setting = match at_layer(&probe) {
            Ok(setting) => setting,
            Err(error) => {
                let message = error.to_string();
                failure = Some(error);
                return Err(crate::cpu::CpuError::InvalidInput(message));
            }
        };
        let setting = setting.unwrap_or_else(|| LayerSetting {
            thresholds: snn.layers[index].thresholds.clone(),
            v_init,
            bias_current,
        });
        let params = crate::cpu::ops::IfParams {
            thresholds: channel_thresholds(&setting.thresholds, shape.channels),
            bias_current: setting.bias_current.clone(),
            v_init: setting.v_init,
        };
        chosen[index] = Some(setting);
        Ok(params)
    });
    if let Some(error) = failure {
        return Err(error);
    }
    result.map_err(invalid)?;
    settings_of(chosen, snn)
}

/// Every layer's setting from a walk, or an error naming a layer it never reached.
fn settings_of(chosen: Vec<Option<LayerSetting>>, snn: &SpikingNetwork) -> Result<Vec<LayerSetting>, GpuError> {
    chosen
        .into_iter()
        .zip(&snn.layers)
        .map(|(setting, layer)| {
            setting.ok_or_else(|| GpuError::InvalidInput(format!("IF layer `{}` is never reached", layer.name)))
        })
        .collect()
}

fn walk_checked(
    ctx: &GpuContext,
    kernels: &Kernels,
    snn: &SpikingNetwork,
    images: &[f32],
    count: usize,
    timesteps: usize,
    at_layer: &mut dyn FnMut(&LayerProbe<'_>) -> Result<Option<LayerSetting>, GpuError>,
) -> Result<Vec<LayerSetting>, GpuError> {
    let graph = &snn.graph;
    let nodes = graph.nodes();
    let lowering = Lowering::new(graph, false);
    let constant = static_nodes(graph);
    let group_inputs = |start: NodeId| lowering.inputs(graph, start);

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

    for (position, start, fusion) in lowering.steps() {
        let node = &nodes[start];
        let shape = nodes[position].shape;
        let label = |what: &str| format!("{what} of {}", nodes[position].name);
        let new_encoder = || ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("walk") });

        let ann_value = storage_zeroed(ctx, &label("ANN value"), count * shape.len())?;
        let ann_steps = node_steps(
            ctx,
            kernels,
            graph,
            start,
            fusion,
            count,
            &|id| ann[id].as_ref().ok_or_else(|| missing(id)),
            &|_| None,
            &ann_value,
        )?;
        let mut encoder = new_encoder();
        record_steps(&mut encoder, &ann_steps);

        if !constant[position] {
            let spiking_value =
                storage_zeroed(ctx, &label("values of every timestep"), timesteps * count * shape.len())?;
            if matches!(node.op, Op::Relu) {
                let index = snn.layer_of(position).ok_or_else(|| {
                    GpuError::InvalidInput(format!("ReLU node `{}` has no IF layer (no thresholds)", node.name))
                })?;
                // The ANN activation must be computed before the probe reads it.
                ctx.queue.submit([std::mem::replace(&mut encoder, new_encoder()).finish()]);
                let source = node.inputs[0];
                let constant_current = constant[source];
                let current = if constant_current { ann[source].as_ref() } else { spiking[source].as_ref() }
                    .ok_or_else(|| missing(source))?;
                let v_init = snn.layer_v_init(index);
                let bias_current = snn.layer_bias_current(index);
                let scan = ScanShape { shape, images: count, timesteps, constant_current, v_init };
                let probe = LayerProbe {
                    layer: index,
                    scan,
                    bias_current: bias_current.clone(),
                    source: ProbeSource::Gpu { ctx, kernels, current, reference: &ann_value },
                };
                let setting = at_layer(&probe)?.unwrap_or_else(|| LayerSetting {
                    thresholds: snn.layers[index].thresholds.clone(),
                    v_init,
                    bias_current,
                });
                let name = &snn.layers[index].name;
                validate_layer(
                    name,
                    &setting.thresholds,
                    Some(setting.v_init),
                    Some(&setting.bias_current),
                    shape.channels,
                )
                .map_err(|e| GpuError::InvalidInput(e.to_string()))?;
                let buffer =
                    storage_from_f32(ctx, "IF thresholds", &channel_thresholds(&setting.thresholds, shape.channels))?;
                let scan = ScanShape { v_init: setting.v_init, ..scan };
                let biased = biased_current(ctx, kernels, &scan, current, &setting.bias_current)?;
                let current = biased.as_ref().map_or(current, |(_, buffer)| buffer);
                let step = if_scan_step(ctx, kernels, &scan, current, &buffer, &spiking_value, false)?;
                let steps: Vec<_> = biased.iter().map(|(step, _)| step.clone()).chain([step]).collect();
                record_steps(&mut encoder, &steps);
                chosen[index] = Some(setting);
            } else {
                for id in group_inputs(start) {
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
                // Spikes of IF layers walked already, at the thresholds chosen for them.
                let spike_thresholds = |id: NodeId| {
                    let setting = chosen[snn.layer_of(id)?].as_ref()?;
                    Some(channel_thresholds(&setting.thresholds, nodes[id].shape.channels))
                };
                let steps = node_steps(
                    ctx,
                    kernels,
                    graph,
                    start,
                    fusion,
                    timesteps * count,
                    &buffer_of,
                    &spike_thresholds,
                    &spiking_value,
                )?;
                record_steps(&mut encoder, &steps);
            }
            spiking[position] = Some(spiking_value);
        }
        ctx.queue.submit([encoder.finish()]);
        ann[position] = Some(ann_value);
        for id in lowering.dead_after(graph, start, position) {
            if id != position {
                ann[id] = None;
                spiking[id] = None;
                repeated[id] = None;
            }
        }
    }
    settings_of(chosen, snn)
}
