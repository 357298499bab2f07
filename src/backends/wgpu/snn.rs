//! The spiking network on the GPU, layer-major: a chunk of images goes through the graph
//! once, every node computed for all T timesteps at once (T × images as the batch of its
//! kernel), every IF layer as one scan over T per neuron (layerwise.wgsl `if_scan_counted`),
//! then one readout kernel accumulates the output step by step and counts the correct
//! images after every step. About one dispatch per node per chunk, instead of one per node
//! per timestep: on a GPU, recording and barriers between dispatches cost more than the
//! arithmetic of a CIFAR layer at one timestep.
//!
//! Why it is exact: every node other than an IF layer or a max pool is linear and
//! time-independent, so its values at all timesteps are the node applied to a batch of
//! `T × images` inputs (timestep-major: `(t × images + b)`); an IF layer's scan runs each
//! neuron's steps in order with the update of the CPU reference
//! ([`crate::reference::snn::Simulator`], the semantics of [`crate::convert::snn`]), a max
//! pool over time-varying values (the gated max) scans each output's steps in order with
//! its window's running sums (pooling.wgsl), and the readout adds the output of each step
//! in step order. The tests check spike counts and per-step correct counts against the
//! reference exactly on dyadic networks.
//!
//! A plan is built for a batch and a number of timesteps: weights uploaded, value buffers
//! allocated (reused once their last reader has run), every dispatch's bind group made.
//! A run uploads the images and labels, records the same dispatches and reads back only
//! the per-step correct counts, the per-layer spike totals (each IF scan writes its
//! workgroups' spike counts after its values) and the accumulated output of the images.

use std::cell::RefCell;

use crate::backends::wgpu::buffers::{storage_bytes, storage_from_f32, storage_zeroed, submit_and_read};
use crate::backends::wgpu::kernels::record_steps;
use crate::backends::wgpu::layerwise_layers::{if_scan_step, ScanLayout};
use crate::backends::wgpu::snn_layers::{readout_timesteps_step, ReadoutBuffers, ReadoutSize, COUNT_SLOT};
use crate::backends::wgpu::{GpuContext, GpuError, GpuStep, Kernels};
use crate::convert::snn::SpikingNetwork;
use crate::engine::schedule::{Fusing, Schedule};
use crate::engine::walk::ScanShape;
use crate::engine::{argmax_rows, PassTime, SnnBatchResult};
use crate::model::graph::NodeId;

use super::ann::{node_steps, BufferPool, StepIo};
use super::layerwise::biased_current;

/// One recorded command of a chunk, in order.
#[derive(Clone, Debug)]
enum Command {
    /// The dispatches of one node (named), recorded into one compute pass.
    Dispatch(String, Vec<GpuStep>),
    /// A buffer copy: a static value repeated for every timestep, or an IF scan's spike
    /// counts into the collection of all layers'.
    Copy { source: wgpu::Buffer, source_offset: u64, target: wgpu::Buffer, target_offset: u64, bytes: u64 },
}

/// Where an IF layer's spike counts land: `groups` values from `first` in the collection,
/// one per workgroup of its scan (see [`ScanShape::groups`]).
#[derive(Clone, Copy, Debug)]
struct SpikeCounts {
    scan: ScanShape,
    first: usize,
}

/// The dispatches and buffers of a plan for one number of timesteps.
#[derive(Debug)]
struct Built {
    timesteps: usize,
    commands: Vec<Command>,
    input: wgpu::Buffer,
    labels: wgpu::Buffer,
    /// `batch × classes`: the output summed over the steps.
    accumulated: wgpu::Buffer,
    /// `[count, correct after step 1, …, correct after step T]`.
    counters: wgpu::Buffer,
    /// Every IF layer's per-workgroup spike counts (f32, exact).
    spike_counts: wgpu::Buffer,
    /// Per IF layer in [`SpikingNetwork::layers`] order.
    layers: Vec<SpikeCounts>,
    /// Each IF layer's values of every step, kept (and not reused) only for
    /// [`SnnPlan::run_with_spike_counts`].
    kept_values: Option<Vec<wgpu::Buffer>>,
    bytes: u64,
}

impl Built {
    /// Uploads the chunk's images, labels and image count and records every command of
    /// the run into a new encoder; with `timestamps`, each node's dispatches get a pass of
    /// their own, timed at its start and end (queries `2 i` and `2 i + 1` for the `i`-th).
    fn encode(
        &self,
        ctx: &GpuContext,
        images: &[f32],
        labels: &[u32],
        count: usize,
        timestamps: Option<&wgpu::QuerySet>,
    ) -> wgpu::CommandEncoder {
        // Images past `count` keep stale values: they never mix with the others (every
        // node works image by image), and neither the readout nor the totals count them.
        ctx.queue.write_buffer(&self.input, 0, bytemuck::cast_slice(images));
        ctx.queue.write_buffer(&self.labels, 0, bytemuck::cast_slice(labels));
        let mut counters = vec![0u32; 1 + self.timesteps];
        counters[COUNT_SLOT] = count as u32;
        ctx.queue.write_buffer(&self.counters, 0, bytemuck::cast_slice(&counters));
        let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("snn") });
        encoder.clear_buffer(&self.accumulated, 0, None);
        let mut pass_index = 0u32;
        for command in &self.commands {
            match command {
                Command::Dispatch(_, steps) => match timestamps {
                    None => record_steps(&mut encoder, steps),
                    Some(query_set) => {
                        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some("timed node"),
                            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                                query_set,
                                beginning_of_pass_write_index: Some(2 * pass_index),
                                end_of_pass_write_index: Some(2 * pass_index + 1),
                            }),
                        });
                        for step in steps {
                            step.record(&mut pass);
                        }
                        pass_index += 1;
                    }
                },
                Command::Copy { source, source_offset, target, target_offset, bytes } => {
                    encoder.copy_buffer_to_buffer(source, *source_offset, target, *target_offset, *bytes)
                }
            }
        }
        encoder
    }

    fn dispatches(&self) -> usize {
        self.commands.iter().map(|c| if let Command::Dispatch(_, steps) = c { steps.len() } else { 0 }).sum()
    }
}

/// A spiking network compiled for a batch of images and a number of timesteps.
#[derive(Debug)]
pub struct SnnPlan {
    snn: SpikingNetwork,
    kernels: Kernels,
    batch: usize,
    input_len: usize,
    num_classes: usize,
    built: RefCell<Built>,
}

impl SnnPlan {
    /// The largest batch whose values of every timestep (the largest node's, plus its IF
    /// scan's spike counts) fit one storage binding of the adapter, and whose indices fit
    /// 32 bits.
    pub fn max_batch(ctx: &GpuContext, snn: &SpikingNetwork, timesteps: usize) -> usize {
        let values = snn.graph.largest_value() as u64 * (timesteps.max(1) as u64 + 1);
        let by_memory = ctx.max_binding_bytes() / (4 * values);
        let by_index = u64::from(u32::MAX) / values;
        by_memory.min(by_index) as usize
    }

    /// Compiles `snn` for chunks of up to `batch` images over `timesteps` steps: uploads
    /// every weight and threshold, allocates the values, builds every dispatch.
    pub fn compile(
        ctx: &GpuContext,
        kernels: &Kernels,
        snn: &SpikingNetwork,
        batch: usize,
        timesteps: usize,
    ) -> Result<SnnPlan, GpuError> {
        if batch == 0 {
            return Err(GpuError::InvalidInput("the batch size must be at least 1".into()));
        }
        snn.validate().map_err(|e| GpuError::InvalidInput(e.to_string()))?;
        let built = build(ctx, kernels, snn, batch, timesteps.max(1), false)?;
        Ok(SnnPlan {
            snn: snn.clone(),
            kernels: kernels.clone(),
            batch,
            input_len: snn.graph.input_shape().len(),
            num_classes: snn.graph.num_classes(),
            built: RefCell::new(built),
        })
    }

    /// The batch size this plan was compiled for (the most images one run takes).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// GPU dispatches of one chunk (the readout included).
    pub fn dispatches_per_chunk(&self) -> usize {
        self.built.borrow().dispatches()
    }

    /// Bytes of GPU buffers the plan holds (weights excluded).
    pub fn allocated_bytes(&self) -> u64 {
        self.built.borrow().bytes
    }

    /// Simulates `count <= batch` images (`images`: `count` normalized NCHW images,
    /// `labels`: one per image) for `timesteps` steps from fresh membranes; a number of
    /// timesteps other than the compiled one rebuilds the plan first. Reads back only the
    /// per-step correct counts, per-layer spike totals and the accumulated output.
    pub fn run(
        &self,
        ctx: &GpuContext,
        images: &[f32],
        labels: &[u32],
        count: usize,
        timesteps: usize,
    ) -> Result<SnnBatchResult, GpuError> {
        Ok(self.run_checked(ctx, images, labels, count, timesteps, false)?.0)
    }

    /// [`SnnPlan::run`], then also every IF layer's per-neuron spike counts (`count ×
    /// neurons` each, NCHW, in [`SpikingNetwork::layers`] order), counted on the host from
    /// the layer's values of every step (kept for this).
    pub fn run_with_spike_counts(
        &self,
        ctx: &GpuContext,
        images: &[f32],
        labels: &[u32],
        count: usize,
        timesteps: usize,
    ) -> Result<(SnnBatchResult, Vec<Vec<u32>>), GpuError> {
        self.run_checked(ctx, images, labels, count, timesteps, true)
    }

    /// Times one chunk of `count` images over `timesteps` steps on the GPU, node by node:
    /// each node's dispatches run in a compute pass of their own with timestamps at its
    /// start and end (the device needs `TIMESTAMP_QUERY`, see
    /// [`GpuContext::has_timestamps`]). The results are those of [`SnnPlan::run`].
    pub fn profile(
        &self,
        ctx: &GpuContext,
        images: &[f32],
        labels: &[u32],
        count: usize,
        timesteps: usize,
    ) -> Result<Vec<PassTime>, GpuError> {
        if !ctx.has_timestamps() {
            return Err(GpuError::InvalidInput(format!(
                "{} cannot time compute passes (no TIMESTAMP_QUERY)",
                ctx.describe()
            )));
        }
        self.check_inputs(images, labels, count)?;
        let built = self.built_for(ctx, timesteps.max(1), false)?;
        let passes: Vec<(&String, &Vec<GpuStep>)> = built
            .commands
            .iter()
            .filter_map(|c| if let Command::Dispatch(name, steps) = c { Some((name, steps)) } else { None })
            .collect();
        let queries =
            u32::try_from(2 * passes.len()).ok().filter(|&q| q <= wgpu::QUERY_SET_MAX_QUERIES).ok_or_else(|| {
                GpuError::InvalidInput(format!("{} passes are more than one query set times", passes.len()))
            })?;
        ctx.checked("profiling the SNN plan", || {
            let query_set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("pass timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: queries,
            });
            let resolved = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("resolved timestamps"),
                size: u64::from(queries) * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut encoder = built.encode(ctx, images, labels, count, Some(&query_set));
            encoder.resolve_query_set(&query_set, 0..queries, &resolved, 0);
            let words = submit_and_read(ctx, encoder, &resolved, 0, 2 * queries as usize)?;
            let ticks: Vec<u64> =
                words.chunks_exact(2).map(|w| u64::from(w[0].to_bits()) | (u64::from(w[1].to_bits()) << 32)).collect();
            let period = f64::from(ctx.queue.get_timestamp_period());
            Ok(passes
                .iter()
                .zip(ticks.chunks_exact(2))
                .map(|((name, steps), pair)| PassTime {
                    node: (*name).clone(),
                    kernels: steps.iter().map(|s| format!("{:?}", s.kernel)).collect(),
                    nanoseconds: pair[1].saturating_sub(pair[0]) as f64 * period,
                })
                .collect())
        })
    }

    fn run_checked(
        &self,
        ctx: &GpuContext,
        images: &[f32],
        labels: &[u32],
        count: usize,
        timesteps: usize,
        keep_values: bool,
    ) -> Result<(SnnBatchResult, Vec<Vec<u32>>), GpuError> {
        self.check_inputs(images, labels, count)?;
        if timesteps == 0 || count == 0 {
            // Nothing to simulate: no step, or no image to count.
            let result = SnnBatchResult {
                correct: vec![0; timesteps],
                spike_totals: vec![0; self.snn.layers.len()],
                predictions: Vec::new(),
            };
            let counts = self.snn.layers.iter().map(|l| vec![0; count * self.snn.graph.node(l.node).shape.len()]);
            return Ok((result, counts.collect()));
        }
        let built = self.built_for(ctx, timesteps, keep_values)?;
        ctx.checked("running the SNN plan", || self.simulate(ctx, &built, images, labels, count))
    }

    /// `count` images of the plan's input size and one label below the class count each.
    fn check_inputs(&self, images: &[f32], labels: &[u32], count: usize) -> Result<(), GpuError> {
        super::check_batch_input(images, count, self.batch, self.input_len)?;
        if labels.len() != count {
            return Err(GpuError::InvalidInput(format!("expected {count} labels, got {}", labels.len())));
        }
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= self.num_classes) {
            return Err(GpuError::InvalidInput(format!("label {bad} is not below the {} classes", self.num_classes)));
        }
        Ok(())
    }

    /// The plan built for `timesteps` (and keeping the IF values or not), rebuilt if it
    /// was built otherwise.
    fn built_for(
        &self,
        ctx: &GpuContext,
        timesteps: usize,
        keep_values: bool,
    ) -> Result<std::cell::RefMut<'_, Built>, GpuError> {
        let mut built = self.built.borrow_mut();
        if built.timesteps != timesteps || built.kept_values.is_some() != keep_values {
            *built = build(ctx, &self.kernels, &self.snn, self.batch, timesteps, keep_values)?;
        }
        Ok(built)
    }

    fn simulate(
        &self,
        ctx: &GpuContext,
        built: &Built,
        images: &[f32],
        labels: &[u32],
        count: usize,
    ) -> Result<(SnnBatchResult, Vec<Vec<u32>>), GpuError> {
        let timesteps = built.timesteps;
        let mut encoder = built.encode(ctx, images, labels, count, None);
        // `[correct per step | spike counts per scan workgroup | accumulated output]`.
        let spike_len = (built.spike_counts.size() / 4) as usize;
        let outputs = count * self.num_classes;
        let results_len = timesteps + spike_len + outputs;
        let results = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("SNN results"),
            size: (results_len * 4) as u64,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let word = |index: usize| (index * 4) as u64;
        encoder.copy_buffer_to_buffer(&built.counters, word(1), &results, 0, word(timesteps));
        encoder.copy_buffer_to_buffer(&built.spike_counts, 0, &results, word(timesteps), word(spike_len));
        encoder.copy_buffer_to_buffer(&built.accumulated, 0, &results, word(timesteps + spike_len), word(outputs));
        let values = submit_and_read(ctx, encoder, &results, 0, results_len)?;

        let correct = values[..timesteps].iter().map(|v| v.to_bits()).collect();
        let spike_counts = &values[timesteps..timesteps + spike_len];
        let spike_totals = built
            .layers
            .iter()
            .map(|layer| {
                let scan = layer.scan;
                let groups = scan.groups();
                // Workgroups are image-major: the first `count` images' come first.
                let counted = groups / self.batch * count;
                spike_counts[layer.first..layer.first + counted].iter().map(|&c| c as u64).sum()
            })
            .collect();
        let predictions = argmax_rows(&values[timesteps + spike_len..], self.num_classes);
        let result = SnnBatchResult { correct, spike_totals, predictions };

        let mut per_neuron = Vec::new();
        if let Some(kept) = &built.kept_values {
            for (layer, buffer) in built.layers.iter().zip(kept) {
                let neurons = layer.scan.shape.len();
                let step_values = layer.scan.step_values();
                let encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
                let values = submit_and_read(ctx, encoder, buffer, 0, timesteps * step_values)?;
                let mut counts = vec![0u32; count * neurons];
                for step in values.chunks_exact(step_values) {
                    for (n, &v) in counts.iter_mut().zip(step) {
                        *n += u32::from(v != 0.0);
                    }
                }
                per_neuron.push(counts);
            }
        }
        Ok((result, per_neuron))
    }
}

/// Builds the dispatches of `snn` for `batch` images over `timesteps` steps.
fn build(
    ctx: &GpuContext,
    kernels: &Kernels,
    snn: &SpikingNetwork,
    batch: usize,
    timesteps: usize,
    keep_values: bool,
) -> Result<Built, GpuError> {
    let max = SnnPlan::max_batch(ctx, snn, timesteps);
    if batch > max {
        return Err(GpuError::TooLarge {
            what: format!(
                "a chunk of {batch} images × {timesteps} timesteps of the spiking network (at most {max} images fit)"
            ),
            needed: batch as u64 * (ctx.max_binding_bytes() / max.max(1) as u64),
            limit: ctx.max_binding_bytes(),
        });
    }
    ctx.checked("compiling the SNN plan", || {
        let graph = &snn.graph;
        let nodes = graph.nodes();
        let schedule =
            Schedule::snn(snn, Fusing::Epilogue { relu: false }).map_err(|e| GpuError::InvalidInput(e.to_string()))?;
        let constant = &schedule.static_node;
        let missing =
            |id: NodeId| GpuError::InvalidInput(format!("node `{}` is read before it is computed", nodes[id].name));

        let input_len = graph.input_shape().len();
        let input = storage_zeroed(ctx, "SNN input", batch * input_len)?;
        let mut pool = BufferPool::new(storage_bytes(ctx, "SNN input", batch * input_len)?);
        // `values[id]`: a static node's value over the batch, any other node's for every
        // timestep; `repeated[id]`: a static value copied for every timestep, for a
        // per-timestep node that reads it.
        let mut values: Vec<Option<(u64, wgpu::Buffer)>> = vec![None; nodes.len()];
        let mut repeated: Vec<Option<(u64, wgpu::Buffer)>> = vec![None; nodes.len()];
        values[0] = Some((0, input.clone()));
        let mut commands = Vec::new();
        let mut layers: Vec<Option<SpikeCounts>> = vec![None; snn.layers.len()];
        let mut kept: Vec<Option<wgpu::Buffer>> = vec![None; snn.layers.len()];
        let mut spike_len = 0;
        // The copies of each scan's spike counts; their target, the collection of all layers',
        // is allocated once its size is known.
        let mut spike_copies: Vec<usize> = Vec::new();

        for step in &schedule.steps {
            let position = step.position;
            let node = &nodes[step.start];
            let shape = nodes[position].shape;
            let label = format!("value of {}", nodes[position].name);
            if constant[position] {
                let output = pool.take(ctx, &label, batch * shape.len())?;
                let buffer_of = |id: NodeId| values[id].as_ref().map(|(_, b)| b).ok_or_else(|| missing(id));
                let io = StepIo {
                    batch,
                    timesteps: None,
                    buffer_of: &buffer_of,
                    spike_thresholds: &|_| None,
                    output: &output.1,
                };
                let steps = node_steps(ctx, kernels, graph, step, &io)?;
                commands.push(Command::Dispatch(nodes[position].name.clone(), steps));
                values[position] = Some(output);
            } else if let Some(index) = schedule.if_layer[position] {
                let source = node.inputs[0];
                let current = values[source].as_ref().map(|(_, b)| b).ok_or_else(|| missing(source))?;
                let scan = ScanShape {
                    shape,
                    images: batch,
                    timesteps,
                    constant_current: constant[source],
                    v_init: snn.layer_v_init(index),
                    neuron: snn.neuron,
                };
                let thresholds =
                    storage_from_f32(ctx, "IF thresholds", &snn.layers[index].thresholds.per_channel(shape.channels))?;
                let biased = biased_current(ctx, kernels, &scan, current, &snn.layer_bias_current(index))?;
                let current = biased.as_ref().map_or(current, |(_, buffer)| buffer);
                let values_len = timesteps * scan.step_values();
                let output = if keep_values {
                    let buffer = storage_zeroed(ctx, &label, values_len + scan.groups())?;
                    pool.allocated_bytes += buffer.size();
                    (buffer.size(), buffer)
                } else {
                    pool.take(ctx, &label, values_len + scan.groups())?
                };
                let scan_step = if_scan_step(ctx, kernels, &scan, current, &thresholds, &output.1, true)?;
                let steps: Vec<GpuStep> = biased.iter().map(|(step, _)| step.clone()).chain([scan_step]).collect();
                commands.push(Command::Dispatch(nodes[position].name.clone(), steps));
                spike_copies.push(commands.len());
                commands.push(Command::Copy {
                    source: output.1.clone(),
                    source_offset: (values_len * 4) as u64,
                    target: input.clone(), // replaced below by the collection buffer
                    target_offset: (spike_len * 4) as u64,
                    bytes: (scan.groups() * 4) as u64,
                });
                layers[index] = Some(SpikeCounts { scan, first: spike_len });
                spike_len += scan.groups();
                if keep_values {
                    kept[index] = Some(output.1.clone());
                }
                values[position] = Some(output);
            } else {
                for id in step.fusion.inputs(graph, step.start) {
                    if constant[id] && repeated[id].is_none() {
                        let (_, value) = values[id].as_ref().ok_or_else(|| missing(id))?;
                        let bytes = (batch * nodes[id].shape.len() * 4) as u64;
                        let copies =
                            pool.take(ctx, "static value per timestep", timesteps * batch * nodes[id].shape.len())?;
                        for t in 0..timesteps as u64 {
                            commands.push(Command::Copy {
                                source: value.clone(),
                                source_offset: 0,
                                target: copies.1.clone(),
                                target_offset: t * bytes,
                                bytes,
                            });
                        }
                        repeated[id] = Some(copies);
                    }
                }
                let buffer_of = |id: NodeId| {
                    if constant[id] { repeated[id].as_ref() } else { values[id].as_ref() }
                        .map(|(_, b)| b)
                        .ok_or_else(|| missing(id))
                };
                let output = pool.take(ctx, &label, timesteps * batch * shape.len())?;
                let spike_thresholds = |id: NodeId| {
                    schedule.spike_layer(id).map(|i| snn.layers[i].thresholds.per_channel(nodes[id].shape.channels))
                };
                let io = StepIo {
                    batch: timesteps * batch,
                    timesteps: Some(timesteps),
                    buffer_of: &buffer_of,
                    spike_thresholds: &spike_thresholds,
                    output: &output.1,
                };
                let steps = node_steps(ctx, kernels, graph, step, &io)?;
                commands.push(Command::Dispatch(nodes[position].name.clone(), steps));
                values[position] = Some(output);
            }
            // Values whose last reader just ran go back to the pool (kept IF values stay out).
            for id in schedule.dead_after(graph, step) {
                if id == 0 || id == graph.output() {
                    continue;
                }
                let keep = keep_values && schedule.if_layer[id].is_some();
                if let Some(buffer) = values[id].take().filter(|_| !keep) {
                    pool.give_back(buffer);
                }
                if let Some(buffer) = repeated[id].take() {
                    pool.give_back(buffer);
                }
            }
        }

        let layers: Vec<SpikeCounts> = layers
            .into_iter()
            .zip(&snn.layers)
            .map(|(layer, l)| {
                layer.ok_or_else(|| GpuError::InvalidInput(format!("IF layer `{}` is never reached", l.name)))
            })
            .collect::<Result<_, _>>()?;
        let spike_counts = storage_zeroed(ctx, "spike counts per scan workgroup", spike_len.max(1))?;
        for &index in &spike_copies {
            if let Command::Copy { target, .. } = &mut commands[index] {
                *target = spike_counts.clone();
            }
        }
        let output = graph.output();
        let (_, output_values) = values[output].as_ref().ok_or_else(|| {
            GpuError::InvalidInput(format!("the output node `{}` is never computed", nodes[output].name))
        })?;
        let num_classes = graph.num_classes();
        let labels = storage_zeroed(ctx, "labels", batch)?;
        let accumulated = storage_zeroed(ctx, "accumulated SNN output", batch * num_classes)?;
        let counters = storage_zeroed(ctx, "SNN counters", 1 + timesteps)?;
        let readout = readout_timesteps_step(
            ctx,
            kernels,
            ReadoutSize { batch, classes: num_classes, timesteps },
            ReadoutBuffers {
                values: output_values,
                labels: &labels,
                accumulated: &accumulated,
                counters: &counters,
                correct_slot: 1,
            },
        )?;
        commands.push(Command::Dispatch("readout".into(), vec![readout]));
        let kept_values = keep_values.then(|| kept.into_iter().flatten().collect());
        let bytes = pool.allocated_bytes + spike_counts.size() + accumulated.size() + counters.size();
        Ok(Built {
            timesteps,
            commands,
            input,
            labels,
            accumulated,
            counters,
            spike_counts,
            layers,
            kept_values,
            bytes,
        })
    })
}
