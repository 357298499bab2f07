//! The ANN forward pass on the GPU: a [`Graph`] compiled once into GPU steps with every
//! buffer allocated, then run on batches of images in one submission each.
//!
//! Compilation fuses what the conv epilogue can do: a conv followed by a BatchNorm, an
//! addition and a ReLU (each only when the value in between has no other reader) becomes
//! one step. Activation buffers are reused as soon as their value is dead, so ResNet-110
//! (about 330 nodes) needs only a handful of them.

use crate::backends::wgpu::buffers::{storage_bytes, storage_zeroed, submit_and_read};
use crate::backends::wgpu::kernels::record_steps;
use crate::backends::wgpu::layers::{self, ConvWeights, PoolKind, PoolWindow};
use crate::backends::wgpu::{GpuContext, GpuError, GpuStep, Kernels};
use crate::engine::schedule::{Fusing, Schedule, Step};
use crate::model::graph::{Graph, NodeId, Op};

/// Steps recorded after the step producing an observed node: `(node, its value) -> steps`.
type Observer<'a> = dyn FnMut(NodeId, &wgpu::Buffer) -> Result<Vec<GpuStep>, GpuError> + 'a;

/// A network compiled for a fixed batch size.
#[derive(Debug)]
pub struct AnnPlan {
    steps: Vec<GpuStep>,
    input: wgpu::Buffer,
    output: wgpu::Buffer,
    batch: usize,
    input_len: usize,
    num_classes: usize,
    activation_bytes: u64,
}

/// Activation buffers, reused once their value is dead.
pub(crate) struct BufferPool {
    free: Vec<(u64, wgpu::Buffer)>,
    pub(crate) allocated_bytes: u64,
}

impl BufferPool {
    /// An empty pool that counts `allocated_bytes` already allocated elsewhere.
    pub(crate) fn new(allocated_bytes: u64) -> Self {
        Self { free: Vec::new(), allocated_bytes }
    }

    /// The smallest free buffer of at least `bytes`, else a new one.
    pub(crate) fn take(
        &mut self,
        ctx: &GpuContext,
        what: &str,
        floats: usize,
    ) -> Result<(u64, wgpu::Buffer), GpuError> {
        let bytes = storage_bytes(ctx, what, floats)?;
        let best = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, (size, _))| *size >= bytes)
            .min_by_key(|(_, (size, _))| *size)
            .map(|(i, _)| i);
        if let Some(i) = best {
            return Ok(self.free.swap_remove(i));
        }
        self.allocated_bytes += bytes;
        Ok((bytes, storage_zeroed(ctx, what, floats)?))
    }

    pub(crate) fn give_back(&mut self, buffer: (u64, wgpu::Buffer)) {
        self.free.push(buffer);
    }
}

/// Where one step's values come from and go: `batch` images (or timestep-images), inputs
/// read through `buffer_of`, the result written to `output`. For the SNN plan and the walk,
/// whose convolutions read spikes, `spike_thresholds(id)` gives the per-channel thresholds
/// of the IF layer whose spikes node `id` holds (`None` for any other value; see
/// [`crate::engine::Schedule::spike_layer`]), and `timesteps` is `Some(T)` when the step computes a time-varying
/// node for every timestep (`batch` = T × images, timestep-major), where a max pool is the
/// spiking network's gated max; `None` for the ANN and static nodes.
pub(crate) struct StepIo<'a, 'b> {
    pub(crate) batch: usize,
    pub(crate) timesteps: Option<usize>,
    pub(crate) buffer_of: &'a dyn Fn(NodeId) -> Result<&'b wgpu::Buffer, GpuError>,
    pub(crate) spike_thresholds: &'a dyn Fn(NodeId) -> Option<Vec<f32>>,
    pub(crate) output: &'a wgpu::Buffer,
}

/// The GPU steps computing one step of a schedule (usually one dispatch; a conv whose
/// weights span several uniform windows takes several). Shared with the SNN plan and the
/// walk: this is the one place the wgpu backend matches a graph operation.
pub(crate) fn node_steps(
    ctx: &GpuContext,
    kernels: &Kernels,
    graph: &Graph,
    step: &Step,
    io: &StepIo<'_, '_>,
) -> Result<Vec<GpuStep>, GpuError> {
    let StepIo { batch, timesteps, buffer_of, spike_thresholds, output } = *io;
    let (start, fusion) = (step.start, &step.fusion);
    let nodes = graph.nodes();
    let node = &nodes[start];
    let out_shape = nodes[fusion.last].shape;
    let in_shape = |i: usize| nodes[node.inputs[i]].shape;
    let mut steps = Vec::new();

    let step = match &node.op {
        Op::Input => unreachable!("the input node starts no step"),
        Op::Conv2d(conv) => {
            let affine = fusion.batch_norm.map(|bn| match &nodes[bn].op {
                Op::BatchNorm(bn) => bn.scale_shift(),
                _ => unreachable!("fused batch_norm is a BatchNorm"),
            });
            let weights = match spike_thresholds(node.inputs[0]) {
                Some(thresholds) if affine.is_none() => {
                    ConvWeights::upload_over_spikes(ctx, conv, &thresholds, ctx.strategy)?
                }
                _ => ConvWeights::upload(ctx, conv, affine.as_ref().map(|(s, t)| (s.as_slice(), t.as_slice())))?,
            };
            let residual = fusion.residual.map(buffer_of).transpose()?;
            let conv_steps = weights.step(
                ctx,
                kernels,
                layers::ConvStep {
                    in_shape: in_shape(0),
                    batch,
                    input: buffer_of(node.inputs[0])?,
                    residual,
                    relu: fusion.relu,
                    output,
                },
            )?;
            let (last, rest) = conv_steps.split_last().expect("a conv has at least one step");
            steps.extend_from_slice(rest);
            last.clone()
        }
        Op::BatchNorm(bn) => {
            let (scale, shift) = bn.scale_shift();
            let scale_shift: Vec<f32> = scale.into_iter().chain(shift).collect();
            let params = crate::backends::wgpu::buffers::storage_from_f32(ctx, "batch norm scale/shift", &scale_shift)?;
            layers::affine_step(
                ctx,
                kernels,
                layers::Affine { scale_shift: &params, relu: fusion.relu },
                in_shape(0),
                batch,
                buffer_of(node.inputs[0])?,
                output,
            )?
        }
        Op::Relu => layers::relu_step(ctx, kernels, batch * out_shape.len(), buffer_of(node.inputs[0])?, output)?,
        Op::Add => layers::add_step(
            ctx,
            kernels,
            batch * out_shape.len(),
            fusion.relu,
            buffer_of(node.inputs[0])?,
            buffer_of(node.inputs[1])?,
            output,
        )?,
        Op::ShortcutA { stride, pad_before, pad_after } => layers::shortcut_a_step(
            ctx,
            kernels,
            layers::ShortcutA { stride: *stride, pad_before: *pad_before, pad_after: *pad_after },
            in_shape(0),
            batch,
            buffer_of(node.inputs[0])?,
            output,
        )?,
        Op::MaxPool2d(pool) | Op::AvgPool2d(pool) => {
            let kind = match (&node.op, timesteps) {
                (Op::AvgPool2d(_), _) => PoolKind::Avg,
                // Over time-varying values (spikes), the spiking network's gate.
                (_, Some(timesteps)) => PoolKind::GatedMax { timesteps },
                (_, None) => PoolKind::Max,
            };
            let window = PoolWindow { pool: *pool, kind };
            layers::pool_step(ctx, kernels, window, in_shape(0), batch, buffer_of(node.inputs[0])?, output)
                .map_err(|e| GpuError::InvalidInput(format!("node `{}`: {e}", node.name)))?
        }
        Op::GlobalAvgPool => {
            layers::global_avg_pool_step(ctx, kernels, in_shape(0), batch, buffer_of(node.inputs[0])?, output)?
        }
        Op::Linear(layer) => {
            let weight_bias = layers::upload_linear(ctx, layer)?;
            layers::linear_step(
                ctx,
                kernels,
                &weight_bias,
                layers::LinearShape::of(layer),
                batch,
                buffer_of(node.inputs[0])?,
                output,
            )?
        }
    };
    steps.push(step);
    Ok(steps)
}

impl AnnPlan {
    /// The largest batch whose biggest activation fits one storage binding of `ctx`'s
    /// adapter (and whose indices fit the kernels' 32-bit arithmetic).
    pub fn max_batch(ctx: &GpuContext, graph: &Graph) -> usize {
        let largest = graph.largest_value() as u64;
        let by_memory = ctx.max_binding_bytes() / (4 * largest);
        let by_index = u64::from(u32::MAX) / largest;
        by_memory.min(by_index) as usize
    }

    /// Compiles `graph` for batches of up to `batch` images: uploads every weight,
    /// allocates every activation buffer and builds every step.
    pub fn compile(ctx: &GpuContext, kernels: &Kernels, graph: &Graph, batch: usize) -> Result<AnnPlan, GpuError> {
        if batch == 0 {
            return Err(GpuError::InvalidInput("the batch size must be at least 1".into()));
        }
        let max = Self::max_batch(ctx, graph);
        if batch > max {
            return Err(GpuError::InvalidInput(format!(
                "batch {batch} is too large for adapter `{}`: at most {max} images fit one buffer",
                ctx.adapter_info.name
            )));
        }
        ctx.checked("compiling the ANN plan", || {
            Self::build(ctx, kernels, graph, batch, &[], &mut |_, _| Ok(Vec::new()))
        })
    }

    /// [`AnnPlan::compile`], with the steps `observer(node, value)` returns recorded right
    /// after the step that produces each node of `observe` (while its value is live): how
    /// calibration reads the ReLU activations. An observed node must end a fused step (a
    /// ReLU always does); otherwise the result is [`GpuError::InvalidInput`].
    pub fn compile_observed(
        ctx: &GpuContext,
        kernels: &Kernels,
        graph: &Graph,
        batch: usize,
        observe: &[NodeId],
        mut observer: impl FnMut(NodeId, &wgpu::Buffer) -> Result<Vec<GpuStep>, GpuError>,
    ) -> Result<AnnPlan, GpuError> {
        if batch == 0 || batch > Self::max_batch(ctx, graph) {
            return Self::compile(ctx, kernels, graph, batch); // the same batch errors
        }
        ctx.checked("compiling the ANN plan", || Self::build(ctx, kernels, graph, batch, observe, &mut observer))
    }

    fn build(
        ctx: &GpuContext,
        kernels: &Kernels,
        graph: &Graph,
        batch: usize,
        observe: &[NodeId],
        observer: &mut Observer<'_>,
    ) -> Result<AnnPlan, GpuError> {
        let nodes = graph.nodes();
        let schedule = Schedule::ann(graph, Fusing::Epilogue { relu: true });
        if let Some(&hidden) = observe.iter().find(|&&id| !schedule.steps.iter().any(|step| step.position == id)) {
            let name = nodes.get(hidden).map_or("<no such node>", |n| n.name.as_str());
            return Err(GpuError::InvalidInput(format!(
                "node {hidden} (`{name}`) is fused into a step and cannot be observed"
            )));
        }

        let input_len = graph.input_shape().len();
        let input = storage_zeroed(ctx, "plan input", batch * input_len)?;
        let mut pool =
            BufferPool { free: Vec::new(), allocated_bytes: storage_bytes(ctx, "input", batch * input_len)? };
        // The buffer holding each node's value while it is live.
        let mut values: Vec<Option<(u64, wgpu::Buffer)>> = vec![None; nodes.len()];
        values[0] = Some((0, input.clone()));
        let mut steps = Vec::new();

        for step in &schedule.steps {
            let position = step.position;
            let node = &nodes[step.start];
            let out_shape = nodes[position].shape;
            let buffer_of = |id: NodeId| -> Result<&wgpu::Buffer, GpuError> {
                values[id].as_ref().map(|(_, b)| b).ok_or_else(|| {
                    GpuError::InvalidInput(format!(
                        "node `{}` reads `{}` before it is computed",
                        node.name, nodes[id].name
                    ))
                })
            };
            let output = pool.take(ctx, &format!("activation of {}", nodes[position].name), batch * out_shape.len())?;
            let io = StepIo {
                batch,
                timesteps: None,
                buffer_of: &buffer_of,
                spike_thresholds: &|_| None,
                output: &output.1,
            };
            steps.extend(node_steps(ctx, kernels, graph, step, &io)?);
            values[position] = Some(output);
            if observe.contains(&position) {
                let (_, value) = values[position].as_ref().expect("just computed");
                steps.extend(observer(position, value)?);
            }

            // Values whose last reader just ran go back to the pool (never the input,
            // which `run` overwrites, nor the network output, which is read back).
            for id in schedule.dead_after(graph, step) {
                if id != 0 && id != graph.output() {
                    if let Some(buffer) = values[id].take() {
                        pool.give_back(buffer);
                    }
                }
            }
        }

        let output = values[graph.output()].as_ref().map(|(_, b)| b.clone()).ok_or_else(|| {
            GpuError::InvalidInput(format!("the output node `{}` is never computed", nodes[graph.output()].name))
        })?;
        Ok(AnnPlan {
            steps,
            input,
            output,
            batch,
            input_len,
            num_classes: graph.num_classes(),
            activation_bytes: pool.allocated_bytes,
        })
    }

    /// The batch size this plan was compiled for (the most images one `run` takes).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Outputs per image.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// GPU dispatches per run.
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// Bytes of activation buffers (input included) after reuse.
    pub fn activation_bytes(&self) -> u64 {
        self.activation_bytes
    }

    /// Runs the network on `count` normalized images (`images` holds `count` NCHW images)
    /// in one submission and returns their `count × num_classes` outputs.
    pub fn run(&self, ctx: &GpuContext, images: &[f32], count: usize) -> Result<Vec<f32>, GpuError> {
        super::check_batch_input(images, count, self.batch, self.input_len)?;
        ctx.checked("running the ANN plan", || {
            let encoder = self.encode(ctx, images, count);
            submit_and_read(ctx, encoder, &self.output, 0, count * self.num_classes)
        })
    }

    /// Uploads `count` images (checked by the caller) and returns an encoder with every
    /// step recorded, for callers that read back something else than the logits (the
    /// observers' results of [`AnnPlan::compile_observed`]).
    pub fn encode(&self, ctx: &GpuContext, images: &[f32], count: usize) -> wgpu::CommandEncoder {
        // Images past `count` keep stale values; their outputs are never read back.
        if count > 0 {
            ctx.queue.write_buffer(&self.input, 0, bytemuck::cast_slice(&images[..count * self.input_len]));
        }
        let mut encoder =
            ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("ann plan") });
        record_steps(&mut encoder, &self.steps);
        encoder
    }
}
