//! The kernel registry: every WGSL entry point behind the [`Kernel`] enum, their sources
//! embedded once, pipelines and bind-group layouts created once ([`Kernels`]), the shape
//! uniforms they read, and [`GpuStep`], one recorded dispatch.

use super::{GpuContext, GpuError};

/// conv.wgsl behind the headers that declare its weights (a 64 KiB uniform window, fast on
/// software rasterizers, or a storage buffer of any size) and its input (a storage buffer).
const CONV_UNIFORM_SOURCE: &str = concat!(
    include_str!("shaders/conv_weights_uniform.wgsl"),
    include_str!("shaders/conv_input_storage.wgsl"),
    include_str!("shaders/conv.wgsl")
);
const CONV_STORAGE_SOURCE: &str = concat!(
    include_str!("shaders/conv_weights_storage.wgsl"),
    include_str!("shaders/conv_input_storage.wgsl"),
    include_str!("shaders/conv.wgsl"),
    include_str!("shaders/conv_tiled.wgsl")
);
const ELEMENTWISE_SOURCE: &str =
    concat!(include_str!("shaders/elementwise_params.wgsl"), include_str!("shaders/elementwise.wgsl"));
const HEAD_SOURCE: &str = concat!(include_str!("shaders/elementwise_params.wgsl"), include_str!("shaders/head.wgsl"));
const POOLING_SOURCE: &str = include_str!("shaders/pooling.wgsl");
const SNN_READOUT_SOURCE: &str = include_str!("shaders/snn_readout.wgsl");
const CALIBRATION_SOURCE: &str = include_str!("shaders/calibration.wgsl");
const LAYERWISE_SOURCE: &str = include_str!("shaders/layerwise.wgsl");

/// Every WGSL module the kernels are compiled from, by name, as compiled (headers included):
/// what `tests/shaders.rs` translates for every GPU API.
pub const WGSL_MODULES: [(&str, &str); 8] = [
    ("conv (uniform weight window)", CONV_UNIFORM_SOURCE),
    ("conv (storage weights, tiled)", CONV_STORAGE_SOURCE),
    ("elementwise", ELEMENTWISE_SOURCE),
    ("head", HEAD_SOURCE),
    ("pooling", POOLING_SOURCE),
    ("snn_readout", SNN_READOUT_SOURCE),
    ("calibration", CALIBRATION_SOURCE),
    ("layerwise", LAYERWISE_SOURCE),
];

/// Most workgroups one dispatch dimension may hold (WebGPU's and lavapipe's limit).
pub const MAX_WORKGROUPS_PER_DIMENSION: u32 = 65_535;
/// Bytes of the uniform weight window of the conv kernels (`array<vec4<f32>, 4096>`).
pub const CONV_WEIGHT_WINDOW_BYTES: u64 = 65_536;

/// One compute entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Convolution of any kernel size, stride and padding, fused epilogue; weights in a
    /// 64 KiB uniform window.
    Conv2d,
    /// Register-blocked 3x3 stride-1 convolution (the bulk of a CIFAR ResNet), fused
    /// epilogue; weights in a 64 KiB uniform window.
    Conv3x3Stride1,
    /// [`Kernel::Conv2d`] reading weights from a storage buffer (blocks over 64 KiB).
    Conv2dLarge,
    /// [`Kernel::Conv3x3Stride1`] reading weights from a storage buffer.
    Conv3x3Stride1Large,
    /// Any convolution as an implicit GEMM with 64 x 64 tiles in workgroup memory,
    /// weights from a storage buffer (conv_tiled.wgsl): GPUs.
    ConvTiled,
    /// Register-blocked 3x3 stride-2 convolution (the downsampling convs); weights in a
    /// 64 KiB uniform window.
    Conv3x3Stride2,
    /// Per-channel `scale * x + shift` (an unfolded BatchNorm), optional ReLU.
    Affine,
    Relu,
    /// Element-wise sum, optional ReLU.
    Add,
    /// Option-A shortcut: subsample, zero-pad channels.
    ShortcutA,
    /// Maximum over each pooling window (pooling.wgsl).
    MaxPool,
    /// Mean over each pooling window, padding counted as zeros (pooling.wgsl).
    AvgPool,
    /// The spiking network's gated max pool over all timesteps of a layer-major run: each
    /// window passes the input with the largest running sum (pooling.wgsl).
    GatedMaxPool,
    GlobalAvgPool,
    Linear,
    /// Accumulates the SNN output of every step of a layer-major run and counts correct
    /// predictions after each (snn_readout.wgsl).
    ReadoutTimesteps,
    /// Calibration pass 1: per-channel maximum of an activation (calibration.wgsl).
    ChannelMax,
    /// Calibration pass 2: layer and per-channel histograms (calibration.wgsl).
    Histogram,
    /// All timesteps of one IF layer, layer-major (layerwise.wgsl).
    IfScan,
    /// [`Kernel::IfScan`] that also writes each workgroup's spike count (layerwise.wgsl).
    IfScanCounted,
    /// Per-neuron quantization and deviation errors, reduced per workgroup (layerwise.wgsl).
    ErrorAnalysis,
    /// Squared errors under candidate thresholds, reduced per workgroup (layerwise.wgsl).
    ThresholdSearch,
}

/// The WGSL file a kernel lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    ConvUniform,
    ConvStorage,
    Elementwise,
    Pooling,
    Head,
    SnnReadout,
    Calibration,
    Layerwise,
}

impl Family {
    const ALL: [Family; 8] = [
        Family::ConvUniform,
        Family::ConvStorage,
        Family::Elementwise,
        Family::Pooling,
        Family::Head,
        Family::SnnReadout,
        Family::Calibration,
        Family::Layerwise,
    ];

    fn source(self) -> &'static str {
        match self {
            Family::ConvUniform => CONV_UNIFORM_SOURCE,
            Family::ConvStorage => CONV_STORAGE_SOURCE,
            Family::Elementwise => ELEMENTWISE_SOURCE,
            Family::Pooling => POOLING_SOURCE,
            Family::Head => HEAD_SOURCE,
            Family::SnnReadout => SNN_READOUT_SOURCE,
            Family::Calibration => CALIBRATION_SOURCE,
            Family::Layerwise => LAYERWISE_SOURCE,
        }
    }

    /// Read-only storage bindings after the uniform (binding 0); the read-write output follows them.
    fn inputs(self) -> u32 {
        match self {
            Family::ConvUniform | Family::ConvStorage => 3,
            Family::Elementwise | Family::Head | Family::SnnReadout => 2,
            Family::Pooling => 1,
            Family::Calibration | Family::Layerwise => 3,
        }
    }

    /// Read-write storage bindings after the inputs (a kernel's outputs and state).
    fn outputs(self) -> u32 {
        match self {
            Family::SnnReadout => 2,
            _ => 1,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Whether input `binding` is a uniform buffer instead of a read-only storage buffer:
    /// the conv weight window (2).
    fn uniform_input(self, binding: u32) -> bool {
        match self {
            Family::ConvUniform => binding == 2,
            _ => false,
        }
    }
}

impl Kernel {
    /// Every kernel, in declaration order.
    pub const ALL: [Kernel; 22] = [
        Kernel::Conv2d,
        Kernel::Conv3x3Stride1,
        Kernel::Conv2dLarge,
        Kernel::Conv3x3Stride1Large,
        Kernel::ConvTiled,
        Kernel::Conv3x3Stride2,
        Kernel::Affine,
        Kernel::Relu,
        Kernel::Add,
        Kernel::ShortcutA,
        Kernel::MaxPool,
        Kernel::AvgPool,
        Kernel::GatedMaxPool,
        Kernel::GlobalAvgPool,
        Kernel::Linear,
        Kernel::ReadoutTimesteps,
        Kernel::ChannelMax,
        Kernel::Histogram,
        Kernel::IfScan,
        Kernel::IfScanCounted,
        Kernel::ErrorAnalysis,
        Kernel::ThresholdSearch,
    ];

    /// The WGSL entry point's name.
    pub fn entry_point(self) -> &'static str {
        match self {
            Kernel::Conv2d | Kernel::Conv2dLarge => "conv2d",
            Kernel::ConvTiled => "conv_tiled",
            Kernel::Conv3x3Stride1 | Kernel::Conv3x3Stride1Large => "conv3x3_s1",
            Kernel::Conv3x3Stride2 => "conv3x3_s2",
            Kernel::Affine => "affine",
            Kernel::Relu => "relu",
            Kernel::Add => "add",
            Kernel::ShortcutA => "shortcut_a",
            Kernel::MaxPool => "max_pool",
            Kernel::AvgPool => "avg_pool",
            Kernel::GatedMaxPool => "gated_max_pool",
            Kernel::GlobalAvgPool => "global_avg_pool",
            Kernel::Linear => "linear",
            Kernel::ReadoutTimesteps => "readout_timesteps",
            Kernel::ChannelMax => "channel_max",
            Kernel::Histogram => "histogram",
            Kernel::IfScan => "if_scan",
            Kernel::IfScanCounted => "if_scan_counted",
            Kernel::ErrorAnalysis => "error_analysis",
            Kernel::ThresholdSearch => "threshold_search",
        }
    }

    fn family(self) -> Family {
        match self {
            Kernel::Conv2d | Kernel::Conv3x3Stride1 | Kernel::Conv3x3Stride2 => Family::ConvUniform,
            Kernel::Conv2dLarge | Kernel::Conv3x3Stride1Large | Kernel::ConvTiled => Family::ConvStorage,
            Kernel::Affine | Kernel::Relu | Kernel::Add | Kernel::ShortcutA => Family::Elementwise,
            Kernel::MaxPool | Kernel::AvgPool | Kernel::GatedMaxPool => Family::Pooling,
            Kernel::GlobalAvgPool | Kernel::Linear => Family::Head,
            Kernel::ReadoutTimesteps => Family::SnnReadout,
            Kernel::ChannelMax | Kernel::Histogram => Family::Calibration,
            Kernel::IfScan | Kernel::IfScanCounted | Kernel::ErrorAnalysis | Kernel::ThresholdSearch => {
                Family::Layerwise
            }
        }
    }

    /// Invocations per workgroup, as declared by `@workgroup_size` in the WGSL source.
    pub fn workgroup_size(self) -> u32 {
        match self {
            Kernel::Conv2d
            | Kernel::Conv3x3Stride1
            | Kernel::Conv2dLarge
            | Kernel::Conv3x3Stride1Large
            | Kernel::Conv3x3Stride2
            | Kernel::MaxPool
            | Kernel::AvgPool
            | Kernel::GatedMaxPool
            | Kernel::GlobalAvgPool
            | Kernel::Linear => 64,
            Kernel::Affine | Kernel::Relu | Kernel::Add | Kernel::ShortcutA | Kernel::ConvTiled => 256,
            Kernel::ChannelMax | Kernel::Histogram => 256,
            Kernel::ReadoutTimesteps
            | Kernel::IfScan
            | Kernel::IfScanCounted
            | Kernel::ErrorAnalysis
            | Kernel::ThresholdSearch => 64,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Shape uniform of the conv kernels (`ConvParams` in conv.wgsl; same field order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConvParams {
    pub batch: u32,
    pub in_channels: u32,
    pub in_height: u32,
    pub in_width: u32,
    pub out_channels: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub kernel: u32,
    pub stride: u32,
    pub padding: u32,
    /// Bit 0: add the residual; bit 1: ReLU.
    pub flags: u32,
    /// 4-pixel tiles per output row (3x3 kernels only).
    pub tiles_per_row: u32,
    /// Work items of the dispatch: output pixels, or pixel tiles for the 3x3 kernels.
    pub items: u32,
    /// Index (in floats) of the dispatch's first image within the bound input (non-zero
    /// only for a uniform input window).
    pub input_offset: u32,
    /// Channel block that `workgroup_id.y == 0` computes (the first of the bound weight window).
    pub first_block: u32,
    /// Image of the batch that the dispatch's first image is (one dispatch per input window).
    pub first_image: u32,
}

/// Shape uniform of the element-wise and head kernels (`ElementwiseParams` in WGSL).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ElementwiseParams {
    /// Output values of the whole batch.
    pub total: u32,
    /// Output channels (linear: out_features).
    pub channels: u32,
    /// Values per channel plane (linear: in_features).
    pub plane: u32,
    /// Bit 1: ReLU.
    pub flags: u32,
    pub in_channels: u32,
    pub in_height: u32,
    pub in_width: u32,
    pub stride: u32,
    pub pad_before: u32,
    pub out_width: u32,
    pub _pad: [u32; 2],
}

/// Shape uniform of the pooling kernels (`PoolParams` in pooling.wgsl; same field order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PoolParams {
    /// Work items: output values of the batch (max, average), or of one timestep (gated max).
    pub total: u32,
    pub in_height: u32,
    pub in_width: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub kernel: u32,
    pub stride: u32,
    pub padding: u32,
    /// Gated max: the timesteps scanned (1 otherwise).
    pub timesteps: u32,
    /// Gated max: input values per timestep (images × C × H × W).
    pub in_step: u32,
    pub _pad: [u32; 2],
}

/// Most inputs one window of the gated max pool holds (`MAX_GATED_WINDOW` in pooling.wgsl:
/// the running sums live in a private array of this size during the scan).
pub const MAX_GATED_WINDOW: usize = 64;

/// Flag bit: add a residual in the conv epilogue.
pub const FLAG_RESIDUAL: u32 = 1;
/// Flag bit: apply ReLU to the result.
pub const FLAG_RELU: u32 = 2;
/// Flag bit of the conv kernels: the input is spikes, read as 0 or 1, and the weights are
/// packed multiplied by their input channel's threshold (conv.wgsl, `spikes`).
pub const FLAG_SPIKES: u32 = 4;

/// One recorded dispatch: pipeline, its bound buffers and the workgroup counts.
#[derive(Clone, Debug)]
pub struct GpuStep {
    pub kernel: Kernel,
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
}

impl GpuStep {
    /// Records this dispatch into `pass`.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
}

/// Records `steps` in order into one compute pass of `encoder`. Within a pass wgpu orders
/// dispatches that share buffers, so each step sees its predecessors' results.
pub fn record_steps(encoder: &mut wgpu::CommandEncoder, steps: &[GpuStep]) {
    let mut pass =
        encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("steps"), timestamp_writes: None });
    for step in steps {
        step.record(&mut pass);
    }
}

/// Workgroup counts covering `items` work items of `per_group` each: up to 65535 along x,
/// the rest along z (kernels index `x + z * num_workgroups.x`), `y` as given.
pub fn workgroups_for(items: usize, per_group: u32, y: u32) -> Result<[u32; 3], GpuError> {
    let groups = items.div_ceil(per_group as usize).max(1);
    let x = groups.min(MAX_WORKGROUPS_PER_DIMENSION as usize);
    let z = groups.div_ceil(x);
    if z > MAX_WORKGROUPS_PER_DIMENSION as usize || y > MAX_WORKGROUPS_PER_DIMENSION {
        return Err(GpuError::InvalidInput(format!(
            "{items} work items need more than {MAX_WORKGROUPS_PER_DIMENSION}^2 workgroups; use a smaller batch"
        )));
    }
    Ok([x as u32, y, z as u32])
}

/// Pipelines and bind-group layouts of every kernel, created once per device.
#[derive(Clone, Debug)]
pub struct Kernels {
    layouts: Vec<wgpu::BindGroupLayout>,
    pipelines: Vec<wgpu::ComputePipeline>,
    /// Bound where a kernel's optional input is absent (no residual, no second operand).
    placeholder: wgpu::Buffer,
}

fn layout_entries(family: Family) -> Vec<wgpu::BindGroupLayoutEntry> {
    let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    };
    let inputs = family.inputs();
    let mut entries = vec![entry(0, wgpu::BufferBindingType::Uniform)];
    entries.extend((1..=inputs).map(|binding| {
        if family.uniform_input(binding) {
            entry(binding, wgpu::BufferBindingType::Uniform)
        } else {
            entry(binding, wgpu::BufferBindingType::Storage { read_only: true })
        }
    }));
    entries.extend(
        (1..=family.outputs()).map(|i| entry(inputs + i, wgpu::BufferBindingType::Storage { read_only: false })),
    );
    entries
}

impl Kernels {
    /// Compiles every shader and creates every pipeline (once per device).
    pub fn new(ctx: &GpuContext) -> Result<Kernels, GpuError> {
        ctx.checked("compiling the compute kernels", || {
            let device = &ctx.device;
            let layouts: Vec<wgpu::BindGroupLayout> = Family::ALL
                .iter()
                .map(|family| {
                    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                        label: Some("kernel family layout"),
                        entries: &layout_entries(*family),
                    })
                })
                .collect();
            let modules: Vec<wgpu::ShaderModule> = Family::ALL
                .iter()
                .map(|family| {
                    device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some("kernel family"),
                        source: wgpu::ShaderSource::Wgsl(family.source().into()),
                    })
                })
                .collect();
            let pipeline_layouts: Vec<wgpu::PipelineLayout> = layouts
                .iter()
                .map(|layout| {
                    device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: Some("kernel family"),
                        bind_group_layouts: &[Some(layout)],
                        immediate_size: 0,
                    })
                })
                .collect();
            let pipelines = Kernel::ALL
                .iter()
                .map(|kernel| {
                    let family = kernel.family().index();
                    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(kernel.entry_point()),
                        layout: Some(&pipeline_layouts[family]),
                        module: &modules[family],
                        entry_point: Some(kernel.entry_point()),
                        compilation_options: wgpu::PipelineCompilationOptions::default(),
                        cache: None,
                    })
                })
                .collect();
            let placeholder = super::buffers::storage_zeroed(ctx, "placeholder", 1)?;
            Ok(Kernels { layouts, pipelines, placeholder })
        })
    }

    /// The cached pipeline of `kernel`.
    pub fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        &self.pipelines[kernel.index()]
    }

    /// A 4-byte buffer to bind where an optional input is absent.
    pub fn placeholder(&self) -> &wgpu::Buffer {
        &self.placeholder
    }

    /// Binds `params` (uploaded as a uniform), `inputs` (read-only, or the uniform weight
    /// window of the fast conv kernels; `None` binds the placeholder) and `output`
    /// (read-write) for `kernel`, dispatching `workgroups`.
    pub fn step<P: bytemuck::Pod>(
        &self,
        ctx: &GpuContext,
        kernel: Kernel,
        params: &P,
        inputs: &[Option<wgpu::BufferBinding<'_>>],
        output: &wgpu::Buffer,
        workgroups: [u32; 3],
    ) -> GpuStep {
        self.step_with_outputs(ctx, kernel, params, inputs, &[output.as_entire_buffer_binding()], workgroups)
    }

    /// [`Kernels::step`] for kernels with several read-write bindings (the SNN state
    /// kernels), or an output that is part of a buffer: `outputs` fill them in order.
    /// Never bind the placeholder read-write.
    pub fn step_with_outputs<P: bytemuck::Pod>(
        &self,
        ctx: &GpuContext,
        kernel: Kernel,
        params: &P,
        inputs: &[Option<wgpu::BufferBinding<'_>>],
        outputs: &[wgpu::BufferBinding<'_>],
        workgroups: [u32; 3],
    ) -> GpuStep {
        let family = kernel.family();
        assert_eq!(outputs.len() as u32, family.outputs(), "{kernel:?} takes {} outputs", family.outputs());
        assert_eq!(inputs.len() as u32, family.inputs(), "{kernel:?} takes {} inputs", family.inputs());
        let uniform = super::buffers::uniform(ctx, kernel.entry_point(), params);
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
        for (i, input) in inputs.iter().enumerate() {
            let binding = input.clone().unwrap_or_else(|| self.placeholder.as_entire_buffer_binding());
            entries
                .push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: wgpu::BindingResource::Buffer(binding) });
        }
        for (i, output) in outputs.iter().enumerate() {
            let resource = wgpu::BindingResource::Buffer(output.clone());
            entries.push(wgpu::BindGroupEntry { binding: family.inputs() + 1 + i as u32, resource });
        }
        let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.entry_point()),
            layout: &self.layouts[family.index()],
            entries: &entries,
        });
        GpuStep { kernel, pipeline: self.pipeline(kernel).clone(), bind_group, workgroups }
    }
}
