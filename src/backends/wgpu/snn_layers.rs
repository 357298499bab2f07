//! The readout and calibration operations on the GPU: parameter layouts of
//! snn_readout.wgsl and calibration.wgsl and the [`GpuStep`]s that run them. The compiled
//! plans ([`crate::backends::wgpu::snn`], [`crate::backends::wgpu::calibrate`](mod@crate::backends::wgpu::calibrate)) and the kernel tests share these.

use crate::model::graph::Shape;

use super::kernels::workgroups_for;
use super::{GpuContext, GpuError, GpuStep, Kernel, Kernels};

/// `counters[0]`: real images of the batch, written by the host before a run.
pub const COUNT_SLOT: usize = 0;
/// Values a calibration workgroup should see at least (it holds 256 invocations).
const VALUES_PER_CALIBRATION_GROUP: usize = 1024;

/// Uniform of the readout kernel (`ReadoutParams` in snn_readout.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ReadoutParams {
    pub batch: u32,
    pub classes: u32,
    pub timesteps: u32,
    pub correct_slot: u32,
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

/// The size of a layer-major readout: `timesteps` steps of `batch` images' `classes` outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadoutSize {
    pub batch: usize,
    pub classes: usize,
    pub timesteps: usize,
}

/// The buffers [`readout_timesteps_step`] reads and writes.
#[derive(Clone, Copy, Debug)]
pub struct ReadoutBuffers<'a> {
    /// The output node for every step (`timesteps × batch × classes`, timestep-major).
    pub values: &'a wgpu::Buffer,
    /// One label per image of the batch.
    pub labels: &'a wgpu::Buffer,
    /// The summed output (`batch × classes`).
    pub accumulated: &'a wgpu::Buffer,
    /// u32 counters: `counters[0]` the real images (see [`COUNT_SLOT`]), the correct
    /// images after each step from `counters[correct_slot]` on.
    pub counters: &'a wgpu::Buffer,
    /// The counter of the correct images after the first step.
    pub correct_slot: usize,
}

/// The readout of a layer-major run of `size`: `buffers.values` holds the output node for
/// every step. Per image `n < counters[0]`, adds the steps in order into `accumulated` and
/// counts the image as correct after step `t` in `counters[correct_slot + t]` when the
/// argmax (first index on ties) equals `labels[n]`.
pub fn readout_timesteps_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    size: ReadoutSize,
    buffers: ReadoutBuffers<'_>,
) -> Result<GpuStep, GpuError> {
    let ReadoutSize { batch, classes, timesteps } = size;
    let ReadoutBuffers { values, labels, accumulated, counters, correct_slot } = buffers;
    let params = ReadoutParams {
        batch: to_u32(batch, "batch")?,
        classes: to_u32(classes, "classes")?,
        timesteps: to_u32(timesteps, "timesteps")?,
        correct_slot: to_u32(correct_slot, "correct slot")?,
    };
    to_u32(timesteps * batch * classes, "output values")?;
    let sizes = [
        (values, timesteps * batch * classes, "output values"),
        (labels, batch, "labels"),
        (accumulated, batch * classes, "accumulated output"),
        (counters, correct_slot + timesteps, "counters"),
    ];
    for (buffer, floats, what) in sizes {
        if buffer.size() < (floats * 4) as u64 {
            return Err(GpuError::InvalidInput(format!(
                "readout {what} buffer holds {} bytes, {} needed",
                buffer.size(),
                floats * 4
            )));
        }
    }
    let inputs = [Some(values.as_entire_buffer_binding()), Some(labels.as_entire_buffer_binding())];
    let workgroups = workgroups_for(batch, Kernel::ReadoutTimesteps.workgroup_size(), 1)?;
    Ok(kernels.step_with_outputs(
        ctx,
        Kernel::ReadoutTimesteps,
        &params,
        &inputs,
        &[accumulated.as_entire_buffer_binding(), counters.as_entire_buffer_binding()],
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

/// The bins of one observed node's histograms, which calibration pass 2
/// ([`histogram_step`]) fills: how many per row, the range each row spans, the counts.
#[derive(Clone, Debug)]
pub struct HistogramBins<'a> {
    /// Bins per histogram row.
    pub bins: usize,
    /// `[layer max | channel max × channels]`: the range each row spans.
    pub ranges: wgpu::BufferBinding<'a>,
    /// `[layer row (bins) | channel rows (channels × bins)]` (u32, cleared before a batch).
    pub stats: wgpu::BufferBinding<'a>,
}

/// Calibration pass 2 for one observed node of `shape` over `batch` images: counts the
/// positive values of the first `run_info[0]` images into `histogram.stats`, over
/// `histogram.ranges`. Reference: `reference::calibration::observe_histogram`.
pub fn histogram_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    shape: Shape,
    batch: usize,
    activation: &wgpu::Buffer,
    run_info: &wgpu::Buffer,
    histogram: HistogramBins<'_>,
) -> Result<GpuStep, GpuError> {
    let HistogramBins { bins, ranges, stats } = histogram;
    let (params, workgroups) = calibration_layout(shape, batch, bins)?;
    let inputs = [Some(activation.as_entire_buffer_binding()), Some(ranges), Some(run_info.as_entire_buffer_binding())];
    Ok(kernels.step_with_outputs(ctx, Kernel::Histogram, &params, &inputs, &[stats], workgroups))
}
