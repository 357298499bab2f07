//! The spiking and calibration operations on the GPU: parameter layouts of snn.wgsl,
//! snn_readout.wgsl and calibration.wgsl and the [`GpuStep`]s that run them. The compiled
//! plans ([`crate::sim::snn`], [`crate::sim::calibrate`](mod@crate::sim::calibrate)) and the kernel tests share these.

use crate::convert::threshold::Thresholds;
use crate::model::graph::Shape;

use super::kernels::workgroups_for;
use super::{GpuContext, GpuError, GpuStep, Kernel, Kernels};

/// `counters[0]`: real images of the batch, written by the host before a run.
pub const COUNT_SLOT: usize = 0;
/// `counters[1]`: timesteps done, advanced by the readout kernel.
pub const STEP_SLOT: usize = 1;
/// `counters[2 + 2 l]`, `counters[3 + 2 l]`: low and high word of IF layer `l`'s spike total.
pub const TOTALS_SLOT: usize = 2;
/// Spike counts one `spike_totals` workgroup sums (256 invocations × 4).
const COUNTS_PER_TOTALS_GROUP: usize = 1024;
/// Values a calibration workgroup should see at least (it holds 256 invocations).
const VALUES_PER_CALIBRATION_GROUP: usize = 1024;

/// Shape uniform of the IF kernels (`IfParams` in snn.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct IfParams {
    /// Neurons of the whole batch.
    pub total: u32,
    pub channels: u32,
    pub plane: u32,
    /// Initial membrane as a fraction of the threshold.
    pub v_init: f32,
}

/// Uniform of the readout and spike-total kernels (`ReadoutParams` in snn_readout.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ReadoutParams {
    pub batch: u32,
    pub classes: u32,
    pub neurons: u32,
    pub total_slot: u32,
    pub correct_slot: u32,
    pub ring: u32,
    pub _pad: [u32; 2],
}

/// Uniform of the calibration kernels (`CalibrationParams` in calibration.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CalibrationParams {
    pub channels: u32,
    pub plane: u32,
    pub images_per_group: u32,
    pub bins: u32,
}

fn to_u32(value: usize, what: &str) -> Result<u32, GpuError> {
    u32::try_from(value).map_err(|_| GpuError::InvalidInput(format!("{what} ({value}) does not fit in 32 bits")))
}

/// One threshold per channel, as the IF kernels read them (a layer threshold broadcast).
pub fn channel_thresholds(thresholds: &Thresholds, channels: usize) -> Vec<f32> {
    (0..channels).map(|c| thresholds.for_channel(c)).collect()
}

/// Values a buffer of `values` values must hold for the IF kernels, which work on vec4s:
/// `values` rounded up to a multiple of 4.
pub fn if_padded_len(values: usize) -> usize {
    values.div_ceil(4) * 4
}

/// The buffers of one IF layer over a batch; each holds at least [`if_padded_len`] values.
#[derive(Clone, Copy)]
pub struct IfBuffers<'a> {
    /// One threshold per channel, see [`channel_thresholds`].
    pub thresholds: &'a wgpu::Buffer,
    /// One bias current per channel (zeros for a layer without one).
    pub bias_current: &'a wgpu::Buffer,
    /// The ReLU's input value this step.
    pub current: &'a wgpu::Buffer,
    pub membrane: &'a wgpu::Buffer,
    /// u32 per neuron.
    pub spike_count: &'a wgpu::Buffer,
    /// The layer's value this step (`threshold` where it spiked, else 0).
    pub output: &'a wgpu::Buffer,
}

/// The `(update, reset)` steps of an IF layer of `shape` over `batch` images: one timestep
/// (see `reference::snn::if_layer_step`), and membranes to `v_init × threshold` with
/// spike counts to 0 (see `reference::snn::initial_membranes`).
pub fn if_steps(
    ctx: &GpuContext,
    kernels: &Kernels,
    shape: Shape,
    batch: usize,
    v_init: f32,
    buffers: &IfBuffers<'_>,
) -> Result<(GpuStep, GpuStep), GpuError> {
    let params = IfParams {
        total: to_u32(batch * shape.len(), "IF neurons")?,
        channels: to_u32(shape.channels, "channels")?,
        plane: to_u32(shape.plane().max(1), "plane")?,
        v_init,
    };
    let padded_bytes = (if_padded_len(batch * shape.len()) * 4) as u64;
    for (name, buffer) in [
        ("current", buffers.current),
        ("membrane", buffers.membrane),
        ("spike count", buffers.spike_count),
        ("output", buffers.output),
    ] {
        if buffer.size() < padded_bytes {
            return Err(GpuError::InvalidInput(format!(
                "IF {name} buffer holds {} bytes, the vec4 kernels need {padded_bytes}",
                buffer.size()
            )));
        }
    }
    let workgroups = workgroups_for((batch * shape.len()).div_ceil(4), Kernel::IfUpdate.workgroup_size(), 1)?;
    let bias_bytes = (shape.channels * 4) as u64;
    if buffers.bias_current.size() < bias_bytes {
        return Err(GpuError::InvalidInput(format!(
            "IF bias current buffer holds {} bytes, {} channels need {bias_bytes}",
            buffers.bias_current.size(),
            shape.channels
        )));
    }
    let inputs = [buffers.current, buffers.thresholds, buffers.bias_current]
        .map(|buffer| Some(buffer.as_entire_buffer_binding()));
    let outputs = [buffers.membrane, buffers.spike_count, buffers.output].map(wgpu::Buffer::as_entire_buffer_binding);
    let step = |kernel| kernels.step_with_outputs(ctx, kernel, &params, &inputs, &outputs, workgroups);
    Ok((step(Kernel::IfUpdate), step(Kernel::IfReset)))
}

/// The per-step readout: adds `values` (the output node, `batch × classes`) to
/// `accumulated`, and stores the number of images `n < counters[0]` whose argmax equals
/// `labels[n]` at `counters[correct_slot + counters[1] % ring]`, then advances `counters[1]`.
#[allow(clippy::too_many_arguments)]
pub fn readout_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    batch: usize,
    classes: usize,
    values: &wgpu::Buffer,
    labels: &wgpu::Buffer,
    accumulated: &wgpu::Buffer,
    counters: &wgpu::Buffer,
    correct_slot: usize,
    ring: usize,
) -> Result<GpuStep, GpuError> {
    let params = ReadoutParams {
        batch: to_u32(batch, "batch")?,
        classes: to_u32(classes, "classes")?,
        correct_slot: to_u32(correct_slot, "correct slot")?,
        ring: to_u32(ring.max(1), "ring")?,
        ..Default::default()
    };
    let inputs = [Some(values.as_entire_buffer_binding()), Some(labels.as_entire_buffer_binding())];
    // One workgroup: see the kernel's comment for why.
    Ok(kernels.step_with_outputs(
        ctx,
        Kernel::Readout,
        &params,
        &inputs,
        &[accumulated.as_entire_buffer_binding(), counters.as_entire_buffer_binding()],
        [1, 1, 1],
    ))
}

/// Adds the spike counts of the first `counters[0]` images of one IF layer (`batch ×
/// neurons` u32 in `spike_counts`) into the 64-bit total at `counters[total_slot..+2]`.
/// `scratch` fills the kernel's unused read-write binding (it is not touched).
#[allow(clippy::too_many_arguments)]
pub fn spike_totals_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    neurons: usize,
    batch: usize,
    spike_counts: &wgpu::Buffer,
    scratch: &wgpu::Buffer,
    counters: &wgpu::Buffer,
    total_slot: usize,
) -> Result<GpuStep, GpuError> {
    let params = ReadoutParams {
        neurons: to_u32(neurons, "neurons")?,
        total_slot: to_u32(total_slot, "total slot")?,
        ..Default::default()
    };
    to_u32(batch * neurons, "spike counts")?;
    let workgroups = workgroups_for(batch * neurons, COUNTS_PER_TOTALS_GROUP as u32, 1)?;
    let inputs = [None, Some(spike_counts.as_entire_buffer_binding())];
    Ok(kernels.step_with_outputs(
        ctx,
        Kernel::SpikeTotals,
        &params,
        &inputs,
        &[scratch.as_entire_buffer_binding(), counters.as_entire_buffer_binding()],
        workgroups,
    ))
}

fn calibration_layout(shape: Shape, batch: usize, bins: usize) -> Result<(CalibrationParams, [u32; 3]), GpuError> {
    let plane = shape.plane().max(1);
    let images_per_group = VALUES_PER_CALIBRATION_GROUP.div_ceil(plane).clamp(1, batch.max(1));
    let params = CalibrationParams {
        channels: to_u32(shape.channels, "channels")?,
        plane: to_u32(plane, "plane")?,
        images_per_group: to_u32(images_per_group, "images per group")?,
        bins: to_u32(bins.max(1), "bins")?,
    };
    to_u32(batch * shape.len(), "observed values")?;
    let groups = workgroups_for(batch.div_ceil(images_per_group), 1, to_u32(shape.channels.max(1), "channels")?)?;
    if groups[2] != 1 {
        return Err(GpuError::InvalidInput(format!(
            "a batch of {batch} images is too large to calibrate; use a smaller one"
        )));
    }
    Ok((params, groups))
}

/// Calibration pass 1 for one observed node of `shape` over `batch` images: atomic max of
/// each channel into `stats[c]` (f32 bits, u32 per channel; clear `stats` before a batch).
/// Only images `n < run_info[0]` count. Reference: `reference::calibration::observe_range`.
pub fn channel_max_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    shape: Shape,
    batch: usize,
    activation: &wgpu::Buffer,
    run_info: &wgpu::Buffer,
    stats: wgpu::BufferBinding<'_>,
) -> Result<GpuStep, GpuError> {
    let (params, workgroups) = calibration_layout(shape, batch, 1)?;
    let inputs = [Some(activation.as_entire_buffer_binding()), None, Some(run_info.as_entire_buffer_binding())];
    Ok(kernels.step_with_outputs(ctx, Kernel::ChannelMax, &params, &inputs, &[stats], workgroups))
}

/// Calibration pass 2: counts the positive values of the first `run_info[0]` images in
/// `stats` = `[layer row (bins) | channel rows (channels × bins)]` (u32, cleared before a
/// batch), over `ranges` = `[layer max | channel max × channels]`.
/// Reference: `reference::calibration::observe_histogram`.
#[allow(clippy::too_many_arguments)]
pub fn histogram_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    shape: Shape,
    batch: usize,
    bins: usize,
    activation: &wgpu::Buffer,
    ranges: wgpu::BufferBinding<'_>,
    run_info: &wgpu::Buffer,
    stats: wgpu::BufferBinding<'_>,
) -> Result<GpuStep, GpuError> {
    let (params, workgroups) = calibration_layout(shape, batch, bins)?;
    let inputs = [Some(activation.as_entire_buffer_binding()), Some(ranges), Some(run_info.as_entire_buffer_binding())];
    Ok(kernels.step_with_outputs(ctx, Kernel::Histogram, &params, &inputs, &[stats], workgroups))
}
