//! The spiking network on the GPU: a [`SpikingNetwork`] compiled once into GPU steps for a
//! fixed batch, then simulated for any number of timesteps with every step recorded into
//! GPU submissions; only per-step correct counts, per-layer spike totals and the final
//! accumulated output (the predictions) are read back.
//!
//! Semantics are those of [`crate::convert::snn`] (CPU reference:
//! [`crate::reference::snn::Simulator`]). The compiled plan has three step lists:
//! - `reset`: every IF layer's membranes to `v_init × threshold` and spike counts to 0
//!   (the accumulated output is cleared with `clear_buffer`), so a run needs no upload
//!   besides the images, the labels and a small counter buffer;
//! - `static_steps`: nodes that depend only on the input ([`static_nodes`], e.g. the first
//!   convolution), computed once per run, their values kept for the whole run;
//! - `timestep`: every other node in topological order, each ReLU node replaced by an IF
//!   update (snn.wgsl) reading the ReLU's input value. Convolutions keep their fused
//!   BatchNorm and residual-add epilogue but never the ReLU: the IF update needs the
//!   current before any nonlinearity.
//!
//! After each timestep the readout kernel (snn_readout.wgsl) adds the output node to the
//! accumulated output and counts correct argmaxes into that step's slot of a per-run
//! counter buffer; the step index lives on the GPU in that buffer (see the kernel's
//! comment), so every timestep records the very same steps.

use crate::convert::snn::{static_nodes, SpikingNetwork};
use crate::gpu::buffers::{read_buffer, storage_bytes, storage_from_f32, storage_zeroed, submit_and_read};
use crate::gpu::snn_layers::{self, channel_thresholds, if_padded_len, IfBuffers, COUNT_SLOT, TOTALS_SLOT};
use crate::gpu::{GpuContext, GpuError, GpuStep, Kernels};
use crate::model::graph::{NodeId, Op};
use crate::reference::ops::argmax_rows;

use super::ann::{node_steps, plan_fusions, step_positions, BufferPool};

/// Timesteps recorded into one command buffer before it is submitted. Submitting in chunks
/// lets the GPU start while the host records the rest and keeps command buffers small
/// (ResNet-20: about 40 dispatches per timestep); the host never waits between chunks (only
/// the final readback waits). It is also the size of the GPU's ring of per-step correct
/// counts, copied out at the end of every chunk.
const TIMESTEPS_PER_SUBMISSION: usize = 16;

/// What one run of the plan produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnnBatchResult {
    /// `correct[t]`: images (of the `count` given) classified correctly after `t + 1` steps.
    pub correct: Vec<u32>,
    /// Spikes per IF layer (in [`SpikingNetwork::layers`] order) over all steps, summed over
    /// the `count` images only.
    pub spike_totals: Vec<u64>,
    /// Class of each of the `count` images after the last step: the argmax of the
    /// accumulated output, first index on ties (the readout's rule); empty after 0 steps.
    pub predictions: Vec<usize>,
}

/// The GPU state of one IF layer.
#[derive(Debug)]
struct IfLayerState {
    /// u32 spike count per neuron of the batch.
    spike_counts: wgpu::Buffer,
    /// Neurons per image.
    neurons: usize,
}

/// A spiking network compiled for a fixed batch size.
#[derive(Debug)]
pub struct SnnPlan {
    reset: Vec<GpuStep>,
    static_steps: Vec<GpuStep>,
    timestep: Vec<GpuStep>,
    layers: Vec<IfLayerState>,
    input: wgpu::Buffer,
    labels: wgpu::Buffer,
    /// `batch × classes` output summed over the steps so far.
    accumulated: wgpu::Buffer,
    /// `[count, step, (low, high) spike total per layer, ring of correct counts]`, see
    /// snn_readout.wgsl; written by the host at the start of each run.
    counters: wgpu::Buffer,
    /// Adds the output, counts correct predictions: after every timestep.
    readout: GpuStep,
    /// Per IF layer, sums its spike counts into `counters`: once, after the last timestep.
    totals: Vec<GpuStep>,
    batch: usize,
    input_len: usize,
    num_classes: usize,
    /// Bytes of membranes, spike counts, static values and activations.
    bytes: u64,
}

impl SnnPlan {
    /// The largest batch whose biggest buffer (an activation or an IF layer's membranes)
    /// fits one storage binding of the adapter and whose indices fit 32 bits.
    ///
    /// Total memory is not bounded here (wgpu exposes no such limit): a plan per image holds
    /// every IF layer's membranes and spike counts (8 bytes per neuron), the static values and
    /// a few activations; an adapter that cannot allocate them fails [`SnnPlan::compile`]
    /// with [`GpuError::OutOfMemory`]. See [`SnnPlan::bytes_per_image`].
    pub fn max_batch(ctx: &GpuContext, snn: &SpikingNetwork) -> usize {
        let largest = snn.graph.largest_value() as u64;
        let by_memory = ctx.max_binding_bytes() / (4 * largest);
        let by_index = u64::from(u32::MAX) / largest;
        by_memory.min(by_index) as usize
    }

    /// Bytes of GPU state per image of the batch: membranes, spike counts and the static
    /// values (activation buffers, reused between layers, come on top).
    pub fn bytes_per_image(snn: &SpikingNetwork) -> u64 {
        let constant = static_nodes(&snn.graph);
        let neurons: usize = snn.layers.iter().map(|l| snn.graph.node(l.node).shape.len()).sum();
        let static_values: usize =
            snn.graph.nodes().iter().zip(&constant).filter(|(_, &c)| c).map(|(n, _)| n.shape.len()).sum();
        8 * neurons as u64 + 4 * static_values as u64
    }

    /// Compiles `snn` for batches of up to `batch` images: uploads every weight and
    /// threshold once, allocates membranes, spike counts and activations, builds every step.
    pub fn compile(
        ctx: &GpuContext,
        kernels: &Kernels,
        snn: &SpikingNetwork,
        batch: usize,
    ) -> Result<SnnPlan, GpuError> {
        if batch == 0 {
            return Err(GpuError::InvalidInput("the batch size must be at least 1".into()));
        }
        let max = Self::max_batch(ctx, snn);
        if batch > max {
            return Err(GpuError::TooLarge {
                what: format!("a batch of {batch} images of the spiking network (at most {max} fit)"),
                needed: batch as u64 * (ctx.max_binding_bytes() / max.max(1) as u64),
                limit: ctx.max_binding_bytes(),
            });
        }
        snn.validate().map_err(|e| GpuError::InvalidInput(e.to_string()))?;
        ctx.checked("compiling the SNN plan", || Self::build(ctx, kernels, snn, batch))
    }

    fn build(ctx: &GpuContext, kernels: &Kernels, snn: &SpikingNetwork, batch: usize) -> Result<SnnPlan, GpuError> {
        let graph = &snn.graph;
        let nodes = graph.nodes();
        let fusions = plan_fusions(graph, false);
        let constant = static_nodes(graph);

        let step_at = step_positions(&fusions);
        let step_inputs =
            |start: NodeId| fusions[start].as_ref().expect("a step starts at a fused group").inputs(graph, start);
        // Last static reader of each value, and whether any per-timestep step reads it: a
        // static value read every timestep must live for the whole run.
        let mut last_static_read: Vec<Option<NodeId>> = vec![None; nodes.len()];
        let mut last_timestep_read: Vec<Option<NodeId>> = vec![None; nodes.len()];
        for (position, start) in step_at.iter().enumerate() {
            if let Some(start) = *start {
                let reads = if constant[position] { &mut last_static_read } else { &mut last_timestep_read };
                for input in step_inputs(start) {
                    reads[input] = Some(position);
                }
            }
        }
        let pinned = |id: NodeId| id == 0 || id == graph.output() || (constant[id] && last_timestep_read[id].is_some());

        let input_len = graph.input_shape().len();
        // Every value buffer is padded to whole vec4s: the IF kernels read their current,
        // which may be any node's value, 4 neurons at a time.
        let input = storage_zeroed(ctx, "SNN input", if_padded_len(batch * input_len))?;
        let mut pool = BufferPool::new(storage_bytes(ctx, "SNN input", batch * input_len)?);
        let mut values: Vec<Option<(u64, wgpu::Buffer)>> = vec![None; nodes.len()];
        values[0] = Some((0, input.clone()));
        let (mut reset, mut static_steps, mut timestep) = (Vec::new(), Vec::new(), Vec::new());
        let mut layers = Vec::with_capacity(snn.layers.len());
        let mut state_bytes = 0u64;

        // Static steps first (all of them run before the time loop), then one timestep.
        for phase_static in [true, false] {
            for position in 0..nodes.len() {
                let Some(start) = step_at[position] else { continue };
                if constant[position] != phase_static {
                    continue;
                }
                let fusion = fusions[start].as_ref().expect("a step starts at a fused group");
                let node = &nodes[start];
                let shape = nodes[position].shape;
                let buffer_of = |id: NodeId| -> Result<&wgpu::Buffer, GpuError> {
                    values[id].as_ref().map(|(_, b)| b).ok_or_else(|| {
                        GpuError::InvalidInput(format!(
                            "node `{}` reads `{}` before it is computed",
                            node.name, nodes[id].name
                        ))
                    })
                };
                let output =
                    pool.take(ctx, &format!("value of {}", nodes[position].name), if_padded_len(batch * shape.len()))?;
                if matches!(node.op, Op::Relu) {
                    // An IF layer: a separate element-wise step after the conv that produces its
                    // current. A later optimization may fuse the IF update into the conv
                    // epilogue (conv.wgsl's `finish`), saving one pass over the current.
                    let index = snn.layer_of(position).ok_or_else(|| {
                        GpuError::InvalidInput(format!("ReLU node `{}` has no IF layer (no thresholds)", node.name))
                    })?;
                    let layer = &snn.layers[index];
                    let neurons = if_padded_len(batch * shape.len());
                    let thresholds =
                        storage_from_f32(ctx, "IF thresholds", &channel_thresholds(&layer.thresholds, shape.channels))?;
                    let bias_current = storage_from_f32(ctx, "IF bias currents", &snn.layer_bias_current(index))?;
                    let membrane = storage_zeroed(ctx, &format!("membranes of {}", layer.name), neurons)?;
                    let spike_counts = storage_zeroed(ctx, &format!("spike counts of {}", layer.name), neurons)?;
                    state_bytes += 2 * storage_bytes(ctx, "IF state", neurons)?;
                    let buffers = IfBuffers {
                        thresholds: &thresholds,
                        bias_current: &bias_current,
                        current: buffer_of(node.inputs[0])?,
                        membrane: &membrane,
                        spike_count: &spike_counts,
                        output: &output.1,
                    };
                    let (update, reset_step) =
                        snn_layers::if_steps(ctx, kernels, shape, batch, snn.layer_v_init(index), &buffers)?;
                    timestep.push(update);
                    reset.push(reset_step);
                    layers.push((index, IfLayerState { spike_counts, neurons: shape.len() }));
                } else {
                    let steps = node_steps(ctx, kernels, graph, start, fusion, batch, &buffer_of, &output.1)?;
                    if phase_static {
                        static_steps.extend(steps)
                    } else {
                        timestep.extend(steps)
                    }
                }
                values[position] = Some(output);

                // Values whose last reader of this phase just ran go back to the pool.
                let last_read = if phase_static { &last_static_read } else { &last_timestep_read };
                let mut dead: Vec<NodeId> =
                    step_inputs(start).into_iter().filter(|&id| last_read[id] == Some(position)).collect();
                if last_static_read[position].is_none() && last_timestep_read[position].is_none() {
                    dead.push(position); // computed but never read
                }
                dead.sort_unstable();
                dead.dedup();
                for id in dead {
                    if !pinned(id) {
                        if let Some(buffer) = values[id].take() {
                            pool.give_back(buffer);
                        }
                    }
                }
            }
        }
        if layers.len() != snn.layers.len() {
            return Err(GpuError::InvalidInput(format!(
                "{} IF layers given, {} ReLU nodes computed",
                snn.layers.len(),
                layers.len()
            )));
        }
        layers.sort_by_key(|(index, _)| *index);
        let output = values[graph.output()].as_ref().map(|(_, b)| b.clone()).ok_or_else(|| {
            GpuError::InvalidInput(format!("the output node `{}` is never computed", nodes[graph.output()].name))
        })?;
        let layers: Vec<IfLayerState> = layers.into_iter().map(|(_, state)| state).collect();
        let num_classes = graph.num_classes();
        let accumulated = storage_zeroed(ctx, "accumulated SNN output", batch * num_classes)?;
        let labels = storage_zeroed(ctx, "labels", batch)?;
        let correct_slot = TOTALS_SLOT + 2 * layers.len();
        let counters = storage_zeroed(ctx, "SNN counters", correct_slot + TIMESTEPS_PER_SUBMISSION)?;
        let readout = snn_layers::readout_step(
            ctx,
            kernels,
            batch,
            num_classes,
            &output,
            &labels,
            &accumulated,
            &counters,
            correct_slot,
            TIMESTEPS_PER_SUBMISSION,
        )?;
        let totals = layers
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                let slot = TOTALS_SLOT + 2 * index;
                // `accumulated` fills the kernel's unused read-write binding.
                snn_layers::spike_totals_step(
                    ctx,
                    kernels,
                    layer.neurons,
                    batch,
                    &layer.spike_counts,
                    &accumulated,
                    &counters,
                    slot,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SnnPlan {
            reset,
            static_steps,
            timestep,
            layers,
            input,
            labels,
            accumulated,
            counters,
            readout,
            totals,
            batch,
            input_len,
            num_classes,
            bytes: pool.allocated_bytes + state_bytes,
        })
    }

    /// The batch size this plan was compiled for (the most images one run takes).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// GPU dispatches per timestep (readout included).
    pub fn steps_per_timestep(&self) -> usize {
        self.timestep.len() + 1
    }

    /// Bytes of GPU buffers the plan holds (weights excluded).
    pub fn allocated_bytes(&self) -> u64 {
        self.bytes
    }

    /// Simulates `count <= batch` images (`images`: `count` normalized NCHW images,
    /// `labels`: one per image) for `timesteps` steps from fresh membranes. Every step is
    /// recorded into GPU submissions of `TIMESTEPS_PER_SUBMISSION` steps with no host wait
    /// in between; only the per-step correct counts, per-layer spike totals and the
    /// accumulated output after the last step are read back.
    pub fn run(
        &self,
        ctx: &GpuContext,
        images: &[f32],
        labels: &[u32],
        count: usize,
        timesteps: usize,
    ) -> Result<SnnBatchResult, GpuError> {
        super::check_batch_input(images, count, self.batch, self.input_len)?;
        if labels.len() != count {
            return Err(GpuError::InvalidInput(format!("expected {count} labels, got {}", labels.len())));
        }
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= self.num_classes) {
            return Err(GpuError::InvalidInput(format!("label {bad} is not below the {} classes", self.num_classes)));
        }
        u32::try_from(timesteps)
            .map_err(|_| GpuError::InvalidInput(format!("{timesteps} timesteps do not fit in 32 bits")))?;
        ctx.checked("running the SNN plan", || self.simulate(ctx, images, labels, count, timesteps))
    }

    /// [`SnnPlan::run`], then also reads back every IF layer's per-neuron spike counts
    /// (`count × neurons` each, NCHW, in [`SpikingNetwork::layers`] order).
    pub fn run_with_spike_counts(
        &self,
        ctx: &GpuContext,
        images: &[f32],
        labels: &[u32],
        count: usize,
        timesteps: usize,
    ) -> Result<(SnnBatchResult, Vec<Vec<u32>>), GpuError> {
        let result = self.run(ctx, images, labels, count, timesteps)?;
        let counts = ctx.checked("reading SNN spike counts", || {
            self.layers
                .iter()
                .map(|layer| {
                    let words = read_buffer(ctx, &layer.spike_counts, 0, count * layer.neurons)?;
                    Ok(words.into_iter().map(f32::to_bits).collect())
                })
                .collect::<Result<Vec<Vec<u32>>, GpuError>>()
        })?;
        Ok((result, counts))
    }

    fn simulate(
        &self,
        ctx: &GpuContext,
        images: &[f32],
        labels: &[u32],
        count: usize,
        timesteps: usize,
    ) -> Result<SnnBatchResult, GpuError> {
        // Images and labels past `count` keep stale values; the readout and the spike totals
        // skip them (they read `count` from the counter buffer).
        if count > 0 {
            ctx.queue.write_buffer(&self.input, 0, bytemuck::cast_slice(images));
            ctx.queue.write_buffer(&self.labels, 0, bytemuck::cast_slice(labels));
        }
        let layers = self.layers.len();
        let correct_slot = TOTALS_SLOT + 2 * layers;
        let mut counters = vec![0u32; correct_slot + TIMESTEPS_PER_SUBMISSION];
        counters[COUNT_SLOT] = count as u32;
        ctx.queue.write_buffer(&self.counters, 0, bytemuck::cast_slice(&counters));
        // `[correct per step | (low, high) spike total per layer | accumulated output of the
        // `count` images]`, filled by copies.
        let outputs = count * self.num_classes;
        let results_len = timesteps + 2 * layers + outputs;
        let results = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("SNN results"),
            size: (results_len.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let new_encoder =
            || ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("snn plan") });
        let word = |index: usize| (index * 4) as u64;

        let mut encoder = new_encoder();
        encoder.clear_buffer(&self.accumulated, 0, None);
        record(&mut encoder, self.reset.iter().chain(&self.static_steps));
        let mut done = 0;
        while done < timesteps {
            let chunk = TIMESTEPS_PER_SUBMISSION.min(timesteps - done);
            let one_step = self.timestep.iter().chain(std::iter::once(&self.readout));
            record(&mut encoder, (0..chunk).flat_map(|_| one_step.clone()));
            // Steps done..done+chunk wrote ring slots 0..chunk (done is a multiple of the ring).
            encoder.copy_buffer_to_buffer(&self.counters, word(correct_slot), &results, word(done), word(chunk));
            done += chunk;
            if done < timesteps {
                ctx.queue.submit([std::mem::replace(&mut encoder, new_encoder()).finish()]);
            }
        }
        record(&mut encoder, self.totals.iter());
        if layers > 0 {
            encoder.copy_buffer_to_buffer(
                &self.counters,
                word(TOTALS_SLOT),
                &results,
                word(timesteps),
                word(2 * layers),
            );
        }
        if outputs > 0 {
            encoder.copy_buffer_to_buffer(&self.accumulated, 0, &results, word(timesteps + 2 * layers), word(outputs));
        }
        let values = submit_and_read(ctx, encoder, &results, 0, results_len)?;
        let (counts, accumulated) = values.split_at(timesteps + 2 * layers);
        let words: Vec<u32> = counts.iter().map(|v| v.to_bits()).collect();
        let correct = words[..timesteps].to_vec();
        let spike_totals =
            words[timesteps..].chunks_exact(2).map(|pair| u64::from(pair[0]) | (u64::from(pair[1]) << 32)).collect();
        let predictions = if timesteps == 0 { Vec::new() } else { argmax_rows(accumulated, self.num_classes) };
        Ok(SnnBatchResult { correct, spike_totals, predictions })
    }
}

/// Records `steps` in order into one compute pass (wgpu orders dispatches sharing buffers).
fn record<'s>(encoder: &mut wgpu::CommandEncoder, steps: impl Iterator<Item = &'s GpuStep>) {
    let mut pass =
        encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("snn steps"), timestamp_writes: None });
    for step in steps {
        step.record(&mut pass);
    }
}
