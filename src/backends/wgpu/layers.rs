//! One network operation on the GPU: uploads its parameters in the layout its kernel
//! reads and builds the [`GpuStep`] that runs it over a batch. Plans and tests share these.

use crate::model::graph::{Conv2d, Linear, Pool2d, Shape};

use super::buffers::{storage_from_f32, weights_from_f32};
use super::kernels::{
    workgroups_for, ConvParams, ElementwiseParams, PoolParams, CONV_WEIGHT_WINDOW_BYTES, FLAG_RELU, FLAG_RESIDUAL,
    FLAG_SPIKES, MAX_GATED_WINDOW,
};
use super::{ConvKernels, GpuContext, GpuError, GpuStep, Kernel, KernelStrategy, Kernels};

/// Output channels per conv work item: the kernels hold them as two vec4s.
pub const CHANNEL_BLOCK: usize = 8;
/// Adjacent output pixels per work item of the 3x3 kernels.
const TILE_WIDTH: usize = 4;
/// Floats of the epilogue at the end of each packed channel block: bias, scale, shift.
const EPILOGUE_FLOATS: usize = 3 * CHANNEL_BLOCK;
/// Output pixels and channels of one workgroup's tile in conv_tiled.wgsl.
const TILED_PIXELS: usize = 64;
const TILED_CHANNELS: usize = 64;

fn to_u32(value: usize, what: &str) -> Result<u32, GpuError> {
    u32::try_from(value).map_err(|_| GpuError::InvalidInput(format!("{what} ({value}) does not fit in 32 bits")))
}

/// Floats of one packed block of 8 output channels: weights, then the epilogue.
fn block_floats(in_channels: usize, kernel: usize) -> usize {
    in_channels * kernel * kernel * CHANNEL_BLOCK + EPILOGUE_FLOATS
}

/// Conv weights repacked to `[channel block][ky][kx][in channel][8 channels]` (zero-padded
/// to whole blocks, taps outermost: the kernels sum in that order, as the CPU backend
/// does), so each input value meets its 8 weights as two consecutive vec4s; each
/// block ends with its channels' `[bias | scale | shift]` (8 values each), where `affine` =
/// `(scale, shift)` is applied after the bias, as an unfolded BatchNorm behind the conv
/// would be (scale 1, shift 0 without it). The kernels read the whole block through one
/// uniform window, so the epilogue costs no storage loads. With `spike_thresholds` (one
/// per input channel: the conv reads spikes) each weight is multiplied by its input
/// channel's threshold, the value of a spike there (see [`FLAG_SPIKES`]); the product is
/// the f32 product the CPU backend forms ([`crate::backends::cpu::conv::ConvWeights::over_spikes`]).
pub fn pack_conv_weights(
    conv: &Conv2d,
    affine: Option<(&[f32], &[f32])>,
    spike_thresholds: Option<&[f32]>,
) -> Vec<f32> {
    let taps = conv.kernel * conv.kernel;
    let blocks = conv.out_channels.div_ceil(CHANNEL_BLOCK);
    let block_len = block_floats(conv.in_channels, conv.kernel);
    let mut packed = vec![0.0f32; blocks * block_len];
    for oc in 0..conv.out_channels {
        let (block, lane) = (oc / CHANNEL_BLOCK, oc % CHANNEL_BLOCK);
        for ic in 0..conv.in_channels {
            for tap in 0..taps {
                let source = (oc * conv.in_channels + ic) * taps + tap;
                let target = block * block_len + (tap * conv.in_channels + ic) * CHANNEL_BLOCK + lane;
                packed[target] = spike_thresholds.map_or(conv.weight[source], |t| t[ic] * conv.weight[source]);
            }
        }
        let epilogue = block * block_len + block_len - EPILOGUE_FLOATS + lane;
        let (scale, shift) = affine.map_or((1.0, 0.0), |(scale, shift)| (scale[oc], shift[oc]));
        packed[epilogue] = conv.bias.as_ref().map_or(0.0, |bias| bias[oc]);
        packed[epilogue + CHANNEL_BLOCK] = scale;
        packed[epilogue + 2 * CHANNEL_BLOCK] = shift;
    }
    packed
}

/// A convolution's parameters on the GPU, with the per-channel affine of a BatchNorm that
/// directly follows it (if any) merged into the epilogue.
#[derive(Debug)]
pub struct ConvWeights {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// Packed weights and epilogue, see [`pack_conv_weights`], followed by one window of
    /// zeros when they are read through the uniform window.
    pub weight: wgpu::Buffer,
    /// Channel blocks per 64 KiB uniform window; `None` when the weights are one storage
    /// buffer (the strategy's choice, or one block exceeds a window).
    blocks_per_window: Option<usize>,
    /// The kernels that run this conv.
    family: ConvKernels,
    /// Whether the input is spikes (weights packed times their thresholds).
    over_spikes: bool,
}

/// One run of a [`ConvWeights`] over a batch: what [`ConvWeights::step`] reads and writes.
#[derive(Clone, Copy, Debug)]
pub struct ConvStep<'a> {
    /// Shape of one input image.
    pub in_shape: Shape,
    /// Images in the batch.
    pub batch: usize,
    /// `batch` images of `in_shape`.
    pub input: &'a wgpu::Buffer,
    /// Added to the conv's result (output-shaped) before the ReLU, if any.
    pub residual: Option<&'a wgpu::Buffer>,
    /// Whether a ReLU follows.
    pub relu: bool,
    /// `batch` images of the output shape.
    pub output: &'a wgpu::Buffer,
}

/// The conv kernel for a `kernel × kernel` convolution of `stride` in the `family`.
pub fn conv_kernel(kernel: usize, stride: usize, family: ConvKernels) -> Kernel {
    match (family, kernel, stride) {
        (ConvKernels::Tiled, _, _) => Kernel::ConvTiled,
        (ConvKernels::UniformWindows, 3, 1) => Kernel::Conv3x3Stride1,
        (ConvKernels::UniformWindows, 3, 2) => Kernel::Conv3x3Stride2,
        (ConvKernels::UniformWindows, _, _) => Kernel::Conv2d,
        (ConvKernels::Direct, 3, 1) => Kernel::Conv3x3Stride1Large,
        (ConvKernels::Direct, _, _) => Kernel::Conv2dLarge,
    }
}

impl ConvWeights {
    /// Uploads `conv`; `affine` = `(scale, shift)` is applied after the bias, as an
    /// unfolded BatchNorm behind the conv would be.
    pub fn upload(ctx: &GpuContext, conv: &Conv2d, affine: Option<(&[f32], &[f32])>) -> Result<ConvWeights, GpuError> {
        Self::upload_for(ctx, conv, affine, ctx.strategy)
    }

    /// [`ConvWeights::upload`] for the kernels of `strategy` instead of the adapter's own
    /// (tests run the GPU variants on a CPU adapter this way).
    pub fn upload_for(
        ctx: &GpuContext,
        conv: &Conv2d,
        affine: Option<(&[f32], &[f32])>,
        strategy: KernelStrategy,
    ) -> Result<ConvWeights, GpuError> {
        Self::upload_packed(ctx, conv, affine, None, strategy)
    }

    /// Uploads `conv` to read the spikes of an IF layer with `thresholds` (one per input
    /// channel), as the value of a spike: sums of exact products, the same on every
    /// backend and driver (see [`FLAG_SPIKES`]).
    pub fn upload_over_spikes(
        ctx: &GpuContext,
        conv: &Conv2d,
        thresholds: &[f32],
        strategy: KernelStrategy,
    ) -> Result<ConvWeights, GpuError> {
        if thresholds.len() != conv.in_channels {
            return Err(GpuError::InvalidInput(format!(
                "{} spike thresholds for a conv of {} input channels",
                thresholds.len(),
                conv.in_channels
            )));
        }
        Self::upload_packed(ctx, conv, None, Some(thresholds), strategy)
    }

    fn upload_packed(
        ctx: &GpuContext,
        conv: &Conv2d,
        affine: Option<(&[f32], &[f32])>,
        spike_thresholds: Option<&[f32]>,
        strategy: KernelStrategy,
    ) -> Result<ConvWeights, GpuError> {
        let block_bytes = (block_floats(conv.in_channels, conv.kernel) * 4) as u64;
        let blocks = conv.out_channels.div_ceil(CHANNEL_BLOCK) as u64;
        // Windows start at block boundaries, which must honour the adapter's uniform
        // offset alignment unless all blocks fit the first window.
        let alignment = u64::from(ctx.limits.min_uniform_buffer_offset_alignment).max(1);
        let windows_fit = strategy.conv == ConvKernels::UniformWindows
            && (blocks * block_bytes <= CONV_WEIGHT_WINDOW_BYTES
                || (block_bytes <= CONV_WEIGHT_WINDOW_BYTES && block_bytes.is_multiple_of(alignment)));
        let blocks_per_window = windows_fit.then(|| (CONV_WEIGHT_WINDOW_BYTES / block_bytes.max(1)) as usize);
        let packed = pack_conv_weights(conv, affine, spike_thresholds);
        let weight = match blocks_per_window {
            // Trailing zeros keep the last block's window a full 64 KiB.
            Some(_) => weights_from_f32(ctx, "conv weight", &packed, CONV_WEIGHT_WINDOW_BYTES as usize / 4)?,
            None => storage_from_f32(ctx, "conv weight", &packed)?,
        };
        Ok(ConvWeights {
            in_channels: conv.in_channels,
            out_channels: conv.out_channels,
            kernel: conv.kernel,
            stride: conv.stride,
            padding: conv.padding,
            weight,
            blocks_per_window,
            family: match (strategy.conv, blocks_per_window) {
                (ConvKernels::UniformWindows, None) => ConvKernels::Direct,
                (family, _) => family,
            },
            over_spikes: spike_thresholds.is_some(),
        })
    }

    /// Output shape for an input of `input` shape.
    pub fn output_shape(&self, input: Shape) -> Shape {
        let size = |s: usize| (s + 2 * self.padding - self.kernel) / self.stride + 1;
        Shape::new(self.out_channels, size(input.height), size(input.width))
    }

    /// The steps computing this conv as `run` describes: over `run.batch` images of
    /// `run.in_shape` from `run.input` into `run.output`, adding `run.residual` and
    /// applying ReLU when asked: one per window of weights (see
    /// [`crate::backends::wgpu::KernelStrategy`]), else one.
    pub fn step(&self, ctx: &GpuContext, kernels: &Kernels, run: ConvStep<'_>) -> Result<Vec<GpuStep>, GpuError> {
        let ConvStep { in_shape, batch, input, residual, relu, output } = run;
        let out = self.output_shape(in_shape);
        let tiles_per_row = out.width.div_ceil(TILE_WIDTH);
        let kernel = conv_kernel(self.kernel, self.stride, self.family);
        // One work item per pixel in the generic kernels, per 4-pixel tile in the others;
        // the tiled kernel takes 64 pixels of the batch per workgroup.
        let items_per_image = if matches!(kernel, Kernel::Conv2d | Kernel::Conv2dLarge) {
            out.plane()
        } else {
            out.height * tiles_per_row
        };
        let blocks = self.out_channels.div_ceil(CHANNEL_BLOCK);
        let mut flags = 0;
        if residual.is_some() {
            flags |= FLAG_RESIDUAL;
        }
        if relu {
            flags |= FLAG_RELU;
        }
        if self.over_spikes {
            flags |= FLAG_SPIKES;
        }
        let params = ConvParams {
            batch: to_u32(batch, "batch")?,
            in_channels: to_u32(in_shape.channels, "input channels")?,
            in_height: to_u32(in_shape.height, "input height")?,
            in_width: to_u32(in_shape.width, "input width")?,
            out_channels: to_u32(out.channels, "output channels")?,
            out_height: to_u32(out.height, "output height")?,
            out_width: to_u32(out.width, "output width")?,
            kernel: to_u32(self.kernel, "kernel")?,
            stride: to_u32(self.stride, "stride")?,
            padding: to_u32(self.padding, "padding")?,
            flags,
            tiles_per_row: to_u32(tiles_per_row, "tiles per row")?,
            items: 0,
            input_offset: 0,
            first_block: 0,
            first_image: 0,
        };
        to_u32(batch * in_shape.len(), "conv input values")?;
        to_u32(batch * out.len(), "conv output values")?;
        if kernel == Kernel::ConvTiled {
            let tiles = (batch * out.plane()).div_ceil(TILED_PIXELS);
            let channel_tiles = to_u32(out.channels.div_ceil(TILED_CHANNELS), "channel tiles")?;
            let params = ConvParams { items: to_u32(tiles, "pixel tiles")?, ..params };
            let workgroups = workgroups_for(tiles, 1, channel_tiles)?;
            let bindings = [
                Some(input.as_entire_buffer_binding()),
                Some(self.weight.as_entire_buffer_binding()),
                residual.map(wgpu::Buffer::as_entire_buffer_binding),
            ];
            return Ok(vec![kernels.step(ctx, kernel, &params, &bindings, output, workgroups)]);
        }
        let block_bytes = (block_floats(self.in_channels, self.kernel) * 4) as u64;
        let per_dispatch = self.blocks_per_window.unwrap_or(blocks).max(1);
        let mut steps = Vec::new();
        for first_block in (0..blocks).step_by(per_dispatch) {
            let count = per_dispatch.min(blocks - first_block);
            let weight = match self.blocks_per_window {
                Some(_) => wgpu::BufferBinding {
                    buffer: &self.weight,
                    offset: first_block as u64 * block_bytes,
                    size: std::num::NonZeroU64::new(CONV_WEIGHT_WINDOW_BYTES),
                },
                None => self.weight.as_entire_buffer_binding(),
            };
            let items = batch * items_per_image;
            let params = ConvParams {
                items: to_u32(items, "conv work items")?,
                first_block: to_u32(first_block, "channel block")?,
                ..params
            };
            let workgroups = workgroups_for(items, kernel.workgroup_size(), to_u32(count, "channel blocks")?)?;
            steps.push(kernels.step(
                ctx,
                kernel,
                &params,
                &[
                    Some(input.as_entire_buffer_binding()),
                    Some(weight),
                    residual.map(wgpu::Buffer::as_entire_buffer_binding),
                ],
                output,
                workgroups,
            ));
        }
        Ok(steps)
    }
}

fn elementwise_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    kernel: Kernel,
    params: ElementwiseParams,
    inputs: [Option<&wgpu::Buffer>; 2],
    output: &wgpu::Buffer,
) -> Result<GpuStep, GpuError> {
    let workgroups = workgroups_for(params.total as usize, kernel.workgroup_size(), 1)?;
    let inputs = inputs.map(|input| input.map(wgpu::Buffer::as_entire_buffer_binding));
    Ok(kernels.step(ctx, kernel, &params, &inputs, output, workgroups))
}

/// A per-channel affine `y = scale[c] * x + shift[c]` on the GPU (an unfolded BatchNorm, a
/// bias current), as [`affine_step`] applies it.
#[derive(Clone, Copy, Debug)]
pub struct Affine<'a> {
    /// `[scale | shift]`, one value per channel each.
    pub scale_shift: &'a wgpu::Buffer,
    /// Whether a ReLU follows.
    pub relu: bool,
}

/// `affine` over `batch` images of `shape`: per channel `y = scale[c] * x + shift[c]`,
/// then ReLU when asked.
pub fn affine_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    affine: Affine<'_>,
    shape: Shape,
    batch: usize,
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<GpuStep, GpuError> {
    let Affine { scale_shift, relu } = affine;
    let params = ElementwiseParams {
        total: to_u32(batch * shape.len(), "affine values")?,
        channels: to_u32(shape.channels, "channels")?,
        plane: to_u32(shape.plane(), "plane")?,
        flags: if relu { FLAG_RELU } else { 0 },
        ..Default::default()
    };
    elementwise_step(ctx, kernels, Kernel::Affine, params, [Some(input), Some(scale_shift)], output)
}

/// `y = max(x, 0)` over `len` values.
pub fn relu_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    len: usize,
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<GpuStep, GpuError> {
    let params = ElementwiseParams { total: to_u32(len, "relu values")?, ..Default::default() };
    elementwise_step(ctx, kernels, Kernel::Relu, params, [Some(input), None], output)
}

/// `y = a + b` over `len` values (then ReLU when asked).
pub fn add_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    len: usize,
    relu: bool,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<GpuStep, GpuError> {
    let params = ElementwiseParams {
        total: to_u32(len, "add values")?,
        flags: if relu { FLAG_RELU } else { 0 },
        ..Default::default()
    };
    elementwise_step(ctx, kernels, Kernel::Add, params, [Some(a), Some(b)], output)
}

/// The parameter-free option-A shortcut of a ResNet block (`Op::ShortcutA`): subsample by
/// `stride`, then pad with `pad_before` zero channels in front and `pad_after` behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortcutA {
    pub stride: usize,
    pub pad_before: usize,
    pub pad_after: usize,
}

/// `shortcut` over `batch` images of `in_shape`.
pub fn shortcut_a_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    shortcut: ShortcutA,
    in_shape: Shape,
    batch: usize,
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<GpuStep, GpuError> {
    let ShortcutA { stride, pad_before, pad_after } = shortcut;
    let out = Shape::new(
        in_shape.channels + pad_before + pad_after,
        in_shape.height.div_ceil(stride),
        in_shape.width.div_ceil(stride),
    );
    let params = ElementwiseParams {
        total: to_u32(batch * out.len(), "shortcut values")?,
        channels: to_u32(out.channels, "channels")?,
        plane: to_u32(out.plane(), "plane")?,
        flags: 0,
        in_channels: to_u32(in_shape.channels, "channels")?,
        in_height: to_u32(in_shape.height, "height")?,
        in_width: to_u32(in_shape.width, "width")?,
        stride: to_u32(stride, "stride")?,
        pad_before: to_u32(pad_before, "padding")?,
        out_width: to_u32(out.width, "width")?,
        _pad: [0; 2],
    };
    elementwise_step(ctx, kernels, Kernel::ShortcutA, params, [Some(input), None], output)
}

/// Mean of each channel plane: `batch × shape.channels` values.
pub fn global_avg_pool_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    shape: Shape,
    batch: usize,
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<GpuStep, GpuError> {
    let params = ElementwiseParams {
        total: to_u32(batch * shape.channels, "pooled values")?,
        channels: to_u32(shape.channels, "channels")?,
        plane: to_u32(shape.plane(), "plane")?,
        ..Default::default()
    };
    elementwise_step(ctx, kernels, Kernel::GlobalAvgPool, params, [Some(input), None], output)
}

/// What a pooling window computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The largest value of each window (padding never counts).
    Max,
    /// Each window's sum in `(y, x)` order divided by `kernel²` (padding counts as zeros).
    Avg,
    /// The spiking network's max pool over `timesteps` steps of time-varying values: each
    /// window passes the current value of its input with the largest running sum (the
    /// first in `(y, x)` order on ties), as [`crate::convert::pooling`] defines it.
    GatedMax { timesteps: usize },
}

/// A pooling node on the GPU: its window and what it computes there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolWindow {
    pub pool: Pool2d,
    pub kind: PoolKind,
}

/// `window` over `batch` NCHW samples of `in_shape` (for [`PoolKind::GatedMax`], `batch`
/// is `timesteps × images`, timestep-major, and must be a multiple of `timesteps`). One
/// dispatch: an invocation per output value, or per output neuron of one image scanning
/// every timestep for the gated max.
pub fn pool_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    window: PoolWindow,
    in_shape: Shape,
    batch: usize,
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<GpuStep, GpuError> {
    let PoolWindow { pool, kind } = window;
    let size = |s: usize| {
        pool.output_size(s).ok_or_else(|| {
            GpuError::InvalidInput(format!("pooling window {pool:?} does not fit an input of {in_shape}"))
        })
    };
    let out = Shape::new(in_shape.channels, size(in_shape.height)?, size(in_shape.width)?);
    to_u32(batch * in_shape.len(), "pooling input values")?;
    to_u32(batch * out.len(), "pooling output values")?;
    let (kernel, timesteps) = match kind {
        PoolKind::Max => (Kernel::MaxPool, 1),
        PoolKind::Avg => (Kernel::AvgPool, 1),
        PoolKind::GatedMax { timesteps } => {
            if timesteps == 0 || !batch.is_multiple_of(timesteps) {
                return Err(GpuError::InvalidInput(format!(
                    "a gated max pool over {timesteps} timesteps cannot take a batch of {batch} samples"
                )));
            }
            if pool.kernel * pool.kernel > MAX_GATED_WINDOW {
                return Err(GpuError::InvalidInput(format!(
                    "the spiking network's max pool of kernel {} holds more than {MAX_GATED_WINDOW} inputs per \
                     window, the most the wgpu kernel keeps; use --backend cpu",
                    pool.kernel
                )));
            }
            (Kernel::GatedMaxPool, timesteps)
        }
    };
    // The gated max scans the steps in each invocation: one item per output of one step.
    let items = batch / timesteps * out.len();
    let params = PoolParams {
        total: to_u32(items, "pooled values")?,
        in_height: to_u32(in_shape.height, "height")?,
        in_width: to_u32(in_shape.width, "width")?,
        out_height: to_u32(out.height, "height")?,
        out_width: to_u32(out.width, "width")?,
        kernel: to_u32(pool.kernel, "pooling kernel")?,
        stride: to_u32(pool.stride, "pooling stride")?,
        padding: to_u32(pool.padding, "pooling padding")?,
        timesteps: to_u32(timesteps, "timesteps")?,
        in_step: to_u32(batch / timesteps * in_shape.len(), "pooling input values per step")?,
        _pad: [0; 2],
    };
    let workgroups = workgroups_for(items, kernel.workgroup_size(), 1)?;
    Ok(kernels.step(ctx, kernel, &params, &[Some(input.as_entire_buffer_binding())], output, workgroups))
}

/// A linear layer's `[weight | bias]` on the GPU.
pub fn upload_linear(ctx: &GpuContext, layer: &Linear) -> Result<wgpu::Buffer, GpuError> {
    let mut packed = Vec::with_capacity(layer.weight.len() + layer.bias.len());
    packed.extend_from_slice(&layer.weight);
    packed.extend_from_slice(&layer.bias);
    storage_from_f32(ctx, "linear weight and bias", &packed)
}

/// The layout of a fully connected layer: `out_features × in_features` weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearShape {
    pub in_features: usize,
    pub out_features: usize,
}

impl LinearShape {
    /// The layout of `layer`.
    pub fn of(layer: &Linear) -> LinearShape {
        LinearShape { in_features: layer.in_features, out_features: layer.out_features }
    }
}

/// Fully connected layer of `shape` over `batch` flattened inputs; `weight_bias` from
/// [`upload_linear`].
pub fn linear_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    weight_bias: &wgpu::Buffer,
    shape: LinearShape,
    batch: usize,
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<GpuStep, GpuError> {
    let LinearShape { in_features, out_features } = shape;
    let params = ElementwiseParams {
        total: to_u32(batch * out_features, "linear outputs")?,
        channels: to_u32(out_features, "out features")?,
        plane: to_u32(in_features, "in features")?,
        ..Default::default()
    };
    elementwise_step(ctx, kernels, Kernel::Linear, params, [Some(input), Some(weight_bias)], output)
}
