//! The layer-major IF kernels (layerwise.wgsl) on the GPU: their parameter layout and the
//! [`GpuStep`]s that scan one IF layer over all timesteps, measure its conversion errors or
//! score candidate thresholds. [`crate::backends::wgpu::layerwise`] and the kernel tests share these.

use crate::engine::walk::{ScanShape, ERROR_STATS};

use super::kernels::workgroups_for;
use super::{GpuContext, GpuError, GpuStep, Kernel, Kernels};

/// Most candidate thresholds one search scores per channel (the kernel's private arrays).
pub const MAX_CANDIDATES: usize = 32;
/// Neurons per workgroup; a workgroup stays inside one channel plane of one image.
const NEURONS_PER_GROUP: usize = 64;

/// Uniform of the layer-major kernels (`ScanParams` in layerwise.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ScanParams {
    pub images: u32,
    pub channels: u32,
    pub plane: u32,
    pub timesteps: u32,
    /// Values between consecutive timesteps of the current; 0 for a constant current.
    pub time_stride: u32,
    pub candidates: u32,
    pub v_init: f32,
    /// 1 for signed neurons ([`crate::convert::Neuron::SignedIf`]), else 0.
    pub signed: u32,
}

/// How the layer-major kernels lay an IF layer ([`ScanShape`]) out in workgroups and
/// buffers.
pub trait ScanLayout {
    /// Workgroups of every layer-major kernel: one per 64 neurons of a channel plane.
    fn groups(&self) -> usize;
    /// Channel of each workgroup's partial sums, in output order.
    fn group_channel(&self, group: usize) -> usize;
    /// Values of one timestep over the batch.
    fn step_values(&self) -> usize;
    /// Values of the current: one step's when constant, else every step's.
    fn current_len(&self) -> usize;
    /// The kernels' uniform for a scan scoring `candidates` thresholds per channel.
    fn params(&self, candidates: usize) -> Result<ScanParams, GpuError>;
}

impl ScanLayout for ScanShape {
    fn groups(&self) -> usize {
        self.images * self.shape.channels * self.shape.plane().div_ceil(NEURONS_PER_GROUP)
    }

    fn group_channel(&self, group: usize) -> usize {
        (group / self.shape.plane().div_ceil(NEURONS_PER_GROUP)) % self.shape.channels
    }

    fn step_values(&self) -> usize {
        self.images * self.shape.len()
    }

    fn params(&self, candidates: usize) -> Result<ScanParams, GpuError> {
        let u32_of = |value: usize, what: &str| {
            u32::try_from(value)
                .map_err(|_| GpuError::InvalidInput(format!("{what} ({value}) does not fit in 32 bits")))
        };
        let total = self.step_values().saturating_mul(self.timesteps);
        u32_of(total, "values of all timesteps")?;
        if self.timesteps == 0 || self.shape.is_empty() {
            return Err(GpuError::InvalidInput("an IF scan needs at least one timestep and one neuron".into()));
        }
        Ok(ScanParams {
            images: u32_of(self.images, "images")?,
            channels: u32_of(self.shape.channels, "channels")?,
            plane: u32_of(self.shape.plane(), "plane")?,
            timesteps: u32_of(self.timesteps, "timesteps")?,
            time_stride: if self.constant_current { 0 } else { u32_of(self.step_values(), "values per step")? },
            candidates: u32_of(candidates, "candidates")?,
            v_init: self.v_init,
            signed: u32::from(self.neuron.signed()),
        })
    }

    fn current_len(&self) -> usize {
        if self.constant_current {
            self.step_values()
        } else {
            self.step_values() * self.timesteps
        }
    }
}

fn check_size(buffer: &wgpu::Buffer, floats: usize, what: &str) -> Result<(), GpuError> {
    let bytes = floats as u64 * 4;
    if buffer.size() < bytes {
        return Err(GpuError::InvalidInput(format!(
            "layer-major {what} buffer holds {} bytes, {bytes} needed",
            buffer.size()
        )));
    }
    Ok(())
}

fn step(
    ctx: &GpuContext,
    kernels: &Kernels,
    kernel: Kernel,
    scan: &ScanShape,
    candidates: usize,
    buffers: [&wgpu::Buffer; 4],
) -> Result<GpuStep, GpuError> {
    let [current, thresholds, reference, output] = buffers;
    check_size(current, scan.current_len(), "current")?;
    check_size(thresholds, scan.shape.channels * candidates, "thresholds")?;
    let params = scan.params(candidates)?;
    let workgroups = workgroups_for(scan.groups(), 1, 1)?;
    let inputs = [current, thresholds, reference].map(|b| Some(b.as_entire_buffer_binding()));
    Ok(kernels.step(ctx, kernel, &params, &inputs, output, workgroups))
}

/// Runs the IF neurons over every timestep of `current` with one threshold per channel,
/// writing each step's values (`threshold` or 0) to `output` (`timesteps × step_values`).
/// With `count_spikes`, `output` then also holds the spike count of each of the scan's
/// [`ScanShape::groups`] workgroups (f32, exact below 2^24), image-major, so the first `k`
/// images' counts come first.
pub fn if_scan_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    scan: &ScanShape,
    current: &wgpu::Buffer,
    thresholds: &wgpu::Buffer,
    output: &wgpu::Buffer,
    count_spikes: bool,
) -> Result<GpuStep, GpuError> {
    let counts = if count_spikes { scan.groups() } else { 0 };
    check_size(output, scan.step_values() * scan.timesteps + counts, "output")?;
    let kernel = if count_spikes { Kernel::IfScanCounted } else { Kernel::IfScan };
    // `reference` is unused by the scans; the thresholds fill its binding.
    step(ctx, kernels, kernel, scan, 1, [current, thresholds, thresholds, output])
}

/// Measures every neuron's errors against `reference` (the ANN activations, one step's
/// values) and writes [`ERROR_STATS`] partial sums per workgroup to `output`.
pub fn error_analysis_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    scan: &ScanShape,
    current: &wgpu::Buffer,
    thresholds: &wgpu::Buffer,
    reference: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<GpuStep, GpuError> {
    check_size(reference, scan.step_values(), "reference")?;
    check_size(output, scan.groups() * ERROR_STATS, "error statistics")?;
    step(ctx, kernels, Kernel::ErrorAnalysis, scan, 1, [current, thresholds, reference, output])
}

/// What a threshold search scores: `per_channel` candidate thresholds for every channel of
/// `scan` (`thresholds`: channel-major) against `reference` (the ANN activations).
pub struct ThresholdSearch<'a> {
    pub scan: &'a ScanShape,
    pub per_channel: usize,
    pub thresholds: &'a wgpu::Buffer,
    pub reference: &'a wgpu::Buffer,
}

/// Scores a [`ThresholdSearch`]'s candidates by the tracking error against its reference
/// (see [`crate::reference::layerwise::tracking_error`]), writing `per_channel` partial
/// sums per workgroup to `output`.
pub fn threshold_search_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    search: &ThresholdSearch<'_>,
    current: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<GpuStep, GpuError> {
    let ThresholdSearch { scan, per_channel: candidates, thresholds, reference } = *search;
    if candidates == 0 || candidates > MAX_CANDIDATES {
        return Err(GpuError::InvalidInput(format!(
            "{candidates} candidate thresholds; the search takes 1 to {MAX_CANDIDATES}"
        )));
    }
    check_size(reference, scan.step_values(), "reference")?;
    check_size(output, scan.groups() * candidates, "candidate errors")?;
    step(ctx, kernels, Kernel::ThresholdSearch, scan, candidates, [current, thresholds, reference, output])
}

/// Adds workgroup partial sums (`values_per_group` each) per channel, in workgroup order
/// (deterministic), in f64: `channels × values_per_group`.
pub fn sum_partials_by_channel(scan: &ScanShape, partials: &[f32], values_per_group: usize) -> Vec<f64> {
    let mut sums = vec![0.0f64; scan.shape.channels * values_per_group];
    for (group, values) in partials.chunks_exact(values_per_group).take(scan.groups()).enumerate() {
        let channel = scan.group_channel(group);
        for (sum, &value) in sums[channel * values_per_group..].iter_mut().zip(values) {
            *sum += f64::from(value);
        }
    }
    sums
}
