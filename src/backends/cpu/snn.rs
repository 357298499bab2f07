//! The spiking network on the CPU, layer-major: a chunk of images is pushed through the
//! graph once, each node computing all T timesteps of every image of the chunk at once
//! (`[images][T][neurons]`, NHWC per sample), each IF layer a scan over T per neuron
//! ([`ops::if_scan`]). This is exact: every non-IF node is linear and time-independent, so
//! its values at all timesteps are the node applied to a batch of T × images samples, and
//! only IF layers carry state across time (SpikingJelly's multi-step mode).
//!
//! Nodes that depend only on the image ([`static_nodes`], e.g. the first convolution) are
//! computed once per image. A convolution reading spikes runs event-driven
//! ([`conv_events`]) when its input's nonzero fraction is below [`EVENT_DENSITY`], else
//! dense; the fraction is measured on the chunk's actual input.
//!
//! Semantics are [`crate::convert::snn`]'s; the time-major CPU reference
//! ([`crate::reference::snn`]) is the oracle in the tests.

use crate::convert::snn::{validate_layer, SpikingNetwork};
use crate::convert::threshold::Thresholds;
use crate::engine::{argmax_rows, ConvStats, Fusing, Schedule, SnnBatchResult};

use super::ann::eval_node;
use super::conv::{conv_dense, conv_events, density, ConvWeights};
use super::lower::{CpuGraph, CpuOp};
use super::ops::{self, IfParams};
use super::probe::LayerInput;
use super::CpuError;

/// Input density below which a convolution reading a per-timestep value runs event-driven.
/// A set value, not a measured crossover: the event kernel does work per nonzero input, the
/// dense one per input, so the event kernel wins well below full density. The spike inputs
/// measured so far (0.085–0.09 mean density on ResNet-20/110 at T = 32, docs/PERFORMANCE.md)
/// are far below it; where the crossover lies was not measured.
pub const EVENT_DENSITY: f64 = 0.3;

/// A value of the walk: one sample per image (`per_step = false`, constant over time) or
/// one per image and timestep (`[images][T][len]`).
struct Value {
    data: Vec<f32>,
    per_step: bool,
    /// Fraction of nonzero values, where known without a pass over them (an IF layer's
    /// output: its spikes over its neuron-steps).
    density: Option<f64>,
}

/// Buffers of values nothing reads any more, handed out again for new values of the same
/// length: the kernels overwrite every element, so a reused buffer needs no zeroing (a
/// fresh one would be zeroed, and first touched, page by page).
#[derive(Default)]
struct Pool(Vec<Vec<f32>>);

impl Pool {
    /// Most buffers kept: a ResNet reuses a handful of lengths.
    const KEEP: usize = 8;

    fn take(&mut self, len: usize) -> Vec<f32> {
        match self.0.iter().position(|buffer| buffer.len() == len) {
            Some(index) => self.0.swap_remove(index),
            None => vec![0.0; len],
        }
    }

    fn give(&mut self, buffer: Vec<f32>) {
        if self.0.len() == Self::KEEP {
            self.0.remove(0);
        }
        self.0.push(buffer);
    }
}

/// What a walk calls at every IF layer: the layer's index and input; it returns the
/// parameters the layer spikes with from then on.
pub type LayerHook<'a> = dyn FnMut(usize, LayerInput<'_>) -> Result<IfParams, CpuError> + 'a;

/// What one simulation of a chunk gave: `[T][images]` predictions, spikes per IF layer,
/// how the convolutions ran.
struct Simulation {
    per_step: Vec<Vec<usize>>,
    spike_totals: Vec<u64>,
    stats: ConvStats,
}

/// A spiking network lowered for the CPU backend.
#[derive(Clone, Debug)]
pub struct CpuSnn {
    graph: CpuGraph,
    /// For every node: its IF layer's index and parameters, when it is one.
    layers: Vec<Option<(usize, IfParams)>>,
    /// Every convolution as the simulation runs it, the reference's arithmetic: over an IF
    /// layer's spikes at the layer's own thresholds ([`ConvWeights::over_spikes`]), else
    /// rounding each product ([`ConvWeights::rounding_each_product`]).
    simulated: Vec<Option<ConvWeights>>,
    constant: Vec<bool>,
    /// The IF layer whose spikes each node's value is ([`Schedule::spike_source`]).
    spike_source: Vec<Option<usize>>,
    /// Every IF layer's name, in layer order (for messages).
    names: Vec<String>,
    num_classes: usize,
}

impl CpuSnn {
    /// Validates `snn` and lowers it for the CPU kernels.
    pub fn new(snn: &SpikingNetwork) -> Result<Self, CpuError> {
        snn.validate()?;
        let schedule = Schedule::snn(snn, Fusing::None).map_err(|e| CpuError::InvalidInput(e.to_string()))?;
        let layers: Vec<Option<(usize, IfParams)>> = schedule
            .if_layer
            .iter()
            .map(|layer| {
                layer.map(|index| {
                    let channels = snn.graph.node(snn.layers[index].node).shape.channels;
                    let params = IfParams {
                        thresholds: snn.layers[index].thresholds.per_channel(channels),
                        bias_current: snn.layer_bias_current(index),
                        v_init: snn.layer_v_init(index),
                        neuron: snn.neuron,
                    };
                    (index, params)
                })
            })
            .collect();
        // The walk's ANN values round each product, as the reference and lavapipe do.
        let graph = CpuGraph::scheduled(&snn.graph, &schedule).rounding_each_product();
        let simulated = graph
            .ops
            .iter()
            .zip(&graph.inputs)
            .map(|(op, inputs)| {
                match (
                    op,
                    inputs.first().and_then(|&input| schedule.spike_source[input]).and_then(|l| layers[l].as_ref()),
                ) {
                    (CpuOp::Conv(weights), Some((_, params))) => Some(weights.over_spikes(&params.thresholds)),
                    (CpuOp::Conv(weights), None) => Some(weights.clone()),
                    _ => None,
                }
            })
            .collect();
        Ok(Self {
            graph,
            simulated,
            layers,
            constant: schedule.static_node,
            spike_source: schedule.spike_source,
            names: snn.layers.iter().map(|layer| layer.name.clone()).collect(),
            num_classes: snn.graph.num_classes(),
        })
    }

    /// Simulates `count` normalized NCHW images for `timesteps` steps from the initial
    /// state; `labels` are their classes.
    pub fn run(
        &self,
        images: &[f32],
        labels: &[u32],
        count: usize,
        timesteps: usize,
    ) -> Result<SnnBatchResult, CpuError> {
        self.run_with_stats(images, labels, count, timesteps).map(|(result, _)| result)
    }

    /// [`Self::run`], also saying how each convolution ran.
    pub fn run_with_stats(
        &self,
        images: &[f32],
        labels: &[u32],
        count: usize,
        timesteps: usize,
    ) -> Result<(SnnBatchResult, ConvStats), CpuError> {
        if labels.len() != count {
            return Err(CpuError::InvalidInput(format!("{count} images but {} labels", labels.len())));
        }
        let Simulation { per_step, spike_totals, stats } = self.simulate(images, count, timesteps)?;
        let correct = per_step
            .iter()
            .map(|predictions| predictions.iter().zip(labels).filter(|(&p, &l)| p == l as usize).count() as u32)
            .collect();
        let predictions = per_step.last().cloned().unwrap_or_default();
        Ok((SnnBatchResult { correct, spike_totals, predictions }, stats))
    }

    /// Every image's prediction after every step (`[T][count]`, the argmax of the output
    /// accumulated so far) and each IF layer's spike total: what the reference's
    /// [`crate::reference::snn::simulate`] gives, for comparing the two.
    pub fn predictions_per_step(
        &self,
        images: &[f32],
        count: usize,
        timesteps: usize,
    ) -> Result<(Vec<Vec<usize>>, Vec<u64>), CpuError> {
        self.simulate(images, count, timesteps).map(|run| (run.per_step, run.spike_totals))
    }

    /// Walks the network layer-major over `count` normalized NCHW images for `timesteps`
    /// steps next to the ANN: at every IF layer `at_layer(layer index, input)` sees the
    /// layer's input current at every step and the ANN's activation, and returns the
    /// parameters the layer spikes with from then on (checked as every simulation checks
    /// layers).
    pub fn walk(
        &self,
        images: &[f32],
        count: usize,
        timesteps: usize,
        at_layer: &mut LayerHook<'_>,
    ) -> Result<(), CpuError> {
        let mut checked = |index: usize, input: LayerInput<'_>| -> Result<IfParams, CpuError> {
            let channels = input.shape.channels;
            let params = at_layer(index, input)?;
            validate_layer(
                &self.names[index],
                &Thresholds::Channel(params.thresholds.clone()),
                Some(params.v_init),
                Some(&params.bias_current),
                channels,
            )?;
            Ok(params)
        };
        self.run_graph(images, count, timesteps, Some(&mut checked)).map(|_| ())
    }

    fn simulate(&self, images: &[f32], count: usize, timesteps: usize) -> Result<Simulation, CpuError> {
        self.run_graph(images, count, timesteps, None)
    }

    /// The one engine: every node layer-major over the chunk; with `walk`, the ANN's values
    /// alongside and each IF layer's parameters from `walk`.
    fn run_graph(
        &self,
        images: &[f32],
        count: usize,
        timesteps: usize,
        mut walk: Option<&mut LayerHook<'_>>,
    ) -> Result<Simulation, CpuError> {
        let input_shape = self.graph.shapes[0];
        if images.len() != count * input_shape.len() {
            return Err(CpuError::InvalidInput(format!(
                "expected {count} images of {} values ({} values), got {} values",
                input_shape.len(),
                count * input_shape.len(),
                images.len()
            )));
        }
        let graph = &self.graph;
        let mut stats = ConvStats::default();
        let mut spike_totals = vec![0u64; self.names.len()];
        let mut values: Vec<Option<Value>> = (0..graph.ops.len()).map(|_| None).collect();
        values[0] = Some(Value { data: ops::to_nhwc(images, input_shape, count), per_step: false, density: None });
        let mut pool = Pool::default();
        // The ANN's value of every node over the images, while walking.
        let mut ann: Vec<Option<Vec<f32>>> = vec![None; graph.ops.len()];
        // While walking: the thresholds each IF layer spiked with (the walk may choose them).
        let mut walked_thresholds: Vec<Option<Vec<f32>>> = vec![None; graph.ops.len()];
        if walk.is_some() {
            ann[0] = values[0].as_ref().map(|v| v.data.clone());
        }
        for position in 1..graph.ops.len() {
            // A static node's ANN value is its spiking value (taken below), the same computation.
            if walk.is_some() && !self.constant[position] {
                let args: Vec<&[f32]> =
                    graph.inputs[position].iter().map(|&i| ann[i].as_deref().expect("inputs come first")).collect();
                ann[position] = Some(eval_node(graph, position, &args, count));
            }
            let inputs = &graph.inputs[position];
            let arg = |i: usize| values[inputs[i]].as_ref().expect("inputs come first");
            let in_shape = graph.shapes[inputs[0]];
            let shape = graph.shapes[position];
            let samples = |value: &Value| if value.per_step { count * timesteps } else { count };
            let value = match &graph.ops[position] {
                CpuOp::Input => unreachable!("only node 0 is the input"),
                CpuOp::Conv(weights) => {
                    let input = arg(0);
                    // A conv over spikes reads them as 0/1 times θ-scaled weights (at the
                    // thresholds a walk just chose, if it chose them).
                    let scaled;
                    let walked = self.spike_source[inputs[0]].and_then(|source| walked_thresholds[source].as_ref());
                    let weights = match (walked, &self.simulated[position]) {
                        (Some(thresholds), _) => {
                            scaled = weights.over_spikes(thresholds);
                            &scaled
                        }
                        (None, Some(simulated)) => simulated,
                        (None, None) => unreachable!("every conv has its simulated form"),
                    };
                    let n = samples(input);
                    let mut out = pool.take(n * shape.len());
                    let sparse = input.per_step && {
                        let measured = input.density.unwrap_or_else(|| density(&input.data));
                        stats.density_sum += measured;
                        measured < EVENT_DENSITY
                    };
                    if sparse {
                        stats.event += 1;
                        conv_events(weights, &input.data, n, &mut out);
                    } else {
                        stats.dense += 1;
                        conv_dense(weights, &input.data, n, &mut out);
                    }
                    Value { data: out, per_step: input.per_step, density: None }
                }
                CpuOp::Affine { scale, shift } => {
                    let input = arg(0);
                    Value { data: ops::affine(scale, shift, &input.data), per_step: input.per_step, density: None }
                }
                CpuOp::Relu => {
                    let (index, own) = self.layers[position].as_ref().expect("checked in new");
                    let input = arg(0);
                    let walked = match walk.as_mut() {
                        Some(walk) => Some(walk(
                            *index,
                            LayerInput {
                                current: &input.data,
                                constant: !input.per_step,
                                reference: ann[position].as_deref().expect("computed above"),
                                shape,
                                images: count,
                                timesteps,
                            },
                        )?),
                        None => None,
                    };
                    let params = walked.as_ref().unwrap_or(own);
                    if walked.is_some() {
                        walked_thresholds[position] = Some(params.thresholds.clone());
                    }
                    let neuron_steps = count * timesteps * shape.len();
                    let mut spikes = pool.take(neuron_steps);
                    let total =
                        ops::if_scan(params, &input.data, !input.per_step, count, timesteps, shape.len(), &mut spikes);
                    spike_totals[*index] += total;
                    Value { data: spikes, per_step: true, density: Some(total as f64 / neuron_steps.max(1) as f64) }
                }
                CpuOp::Add => {
                    let (a, b) = (arg(0), arg(1));
                    let (wide, narrow) = if a.per_step || !b.per_step { (0, 1) } else { (1, 0) };
                    let per_step = [a, b][wide].per_step;
                    let repeat = if per_step && ![a, b][narrow].per_step { timesteps } else { 1 };
                    // The sum goes over the wide operand where nothing reads it afterwards
                    // (a convolution's output before its residual addition).
                    let (wide_id, narrow_id) = (inputs[wide], inputs[narrow]);
                    let data = if graph.last_read[wide_id] == position && wide_id != narrow_id {
                        let mut sum = values[wide_id].take().expect("inputs come first").data;
                        let other = &values[narrow_id].as_ref().expect("inputs come first").data;
                        ops::add_into(&mut sum, other, shape.len(), repeat);
                        sum
                    } else {
                        let (a, b) = (arg(wide), arg(narrow));
                        ops::add(&a.data, &b.data, shape.len(), repeat)
                    };
                    Value { data, per_step, density: None }
                }
                CpuOp::ShortcutA { stride, pad_before } => {
                    let input = arg(0);
                    let data = ops::shortcut_a(&input.data, in_shape, samples(input), *stride, *pad_before, shape);
                    Value { data, per_step: input.per_step, density: None }
                }
                CpuOp::MaxPool(max_pool) => {
                    let input = arg(0);
                    let data = if input.per_step {
                        ops::gated_max_pool(max_pool, &input.data, in_shape, shape, count, timesteps)
                    } else {
                        ops::max_pool(max_pool, &input.data, in_shape, shape, count)
                    };
                    Value { data, per_step: input.per_step, density: None }
                }
                CpuOp::AvgPool(avg_pool) => {
                    let input = arg(0);
                    Value {
                        data: ops::avg_pool(avg_pool, &input.data, in_shape, shape, samples(input)),
                        per_step: input.per_step,
                        density: None,
                    }
                }
                CpuOp::GlobalAvgPool => {
                    let input = arg(0);
                    Value {
                        data: ops::global_avg_pool(&input.data, in_shape, samples(input)),
                        per_step: input.per_step,
                        density: None,
                    }
                }
                CpuOp::Linear(layer) => {
                    let input = arg(0);
                    Value {
                        data: ops::linear(layer, &input.data, samples(input)),
                        per_step: input.per_step,
                        density: None,
                    }
                }
            };
            debug_assert_eq!(self.constant[position], !value.per_step, "static nodes stay per image");
            if walk.is_some() && self.constant[position] {
                ann[position] = Some(value.data.clone());
            }
            values[position] = Some(value);
            for &input in inputs {
                if graph.last_read[input] == position {
                    if let Some(value) = values[input].take() {
                        pool.give(value.data);
                    }
                    ann[input] = None;
                }
            }
        }
        let output = values[graph.output].take().expect("the output is computed");
        Ok(Simulation { per_step: self.readout(&output, count, timesteps), spike_totals, stats })
    }

    /// Accumulates the output over timesteps image by image (in f32, step order, as the
    /// reference) and takes the argmax after every step: `[T][count]` predictions.
    fn readout(&self, output: &Value, count: usize, timesteps: usize) -> Vec<Vec<usize>> {
        let classes = self.num_classes;
        let mut per_step = vec![Vec::with_capacity(count); timesteps];
        for image in 0..count {
            let mut accumulated = vec![0.0f32; classes];
            for (t, predictions) in per_step.iter_mut().enumerate() {
                let sample = if output.per_step { image * timesteps + t } else { image };
                for (sum, &v) in accumulated.iter_mut().zip(&output.data[sample * classes..(sample + 1) * classes]) {
                    *sum += v;
                }
                predictions.push(argmax_rows(&accumulated, classes)[0]);
            }
        }
        per_step
    }
}
