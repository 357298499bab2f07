//! CPU reference of the spiking simulation: integrate-and-fire layers with reset by
//! subtraction, direct input coding and an accumulating, non-spiking output.
//! The semantics are specified in [`crate::convert::snn`]; GPU kernels must match this
//! file: spike counts exactly on small cases, membranes to float rounding.
//!
//! Update order within one timestep, for every node in topological order:
//! 1. a non-IF node computes its value from its inputs' values of this same step
//!    (static nodes, see [`static_nodes`], are computed once and reused);
//!    A max-pool node is the gated max ([`ops::gated_max_pool2d_step`]): it keeps every
//!    input's sum over the steps so far and passes, per window, the current value of the
//!    input whose sum is the largest (over a static input that is the ANN's max);
//! 2. an IF node runs [`if_step`] on every neuron: `membrane += current`, then
//!    `if membrane >= threshold { membrane -= threshold; spike }`, in `f32`; its value is
//!    `threshold` where it spiked and 0 elsewhere;
//! 3. after all nodes, the output node's value is added to the accumulated output and the
//!    step's predictions are the argmax of the accumulated output (first index on ties).

use std::borrow::Cow;

use crate::convert::snn::{constant_current_spikes, static_nodes, SpikingNetwork};
use crate::convert::threshold::Thresholds;
use crate::model::graph::{Graph, Node, Op, Shape};

use super::ops;

/// One integrate-and-fire neuron update: integrates `current` into `membrane` and, if the
/// membrane reaches `threshold` (`>=`), subtracts the threshold and returns `true` (a spike).
pub fn if_step(membrane: &mut f32, current: f32, threshold: f32) -> bool {
    *membrane += current;
    if *membrane >= threshold {
        *membrane -= threshold;
        true
    } else {
        false
    }
}

/// One timestep of an IF layer over a batch (`membranes` and `current` are `batch × shape`,
/// NCHW): adds the channel's `bias_current` to each neuron's current, updates the
/// membranes, adds each spike to `spike_counts` and returns the layer's output, `threshold`
/// where a neuron spiked and 0 elsewhere.
pub fn if_layer_step(
    membranes: &mut [f32],
    current: &[f32],
    thresholds: &Thresholds,
    bias_current: &[f32],
    shape: Shape,
    spike_counts: &mut [u32],
) -> Vec<f32> {
    assert_eq!(membranes.len(), current.len(), "membrane and current lengths");
    assert_eq!(membranes.len(), spike_counts.len(), "membrane and spike count lengths");
    assert_eq!(bias_current.len(), shape.channels, "one bias current per channel");
    let mut output = vec![0.0f32; current.len()];
    for (i, ((membrane, &input), count)) in membranes.iter_mut().zip(current).zip(spike_counts.iter_mut()).enumerate() {
        let channel = (i / shape.plane()) % shape.channels;
        let threshold = thresholds.for_channel(channel);
        if if_step(membrane, input + bias_current[channel], threshold) {
            *count += 1;
            output[i] = threshold;
        }
    }
    output
}

/// The network's constant-current twin: every IF layer outputs `m θ / T`, the mean value of
/// the `m` spikes ([`constant_current_spikes`]) it would give in `timesteps` steps if fed
/// its input current (plus its bias current) unchanged every step. That is the converted
/// network with only quantization error: its deviation error (currents that vary over
/// time) is removed, layer by layer. Returns the output (`batch × classes`; the SNN's
/// accumulated output divided by T) and each IF layer's spike counts (`batch × neurons`,
/// NCHW).
pub fn constant_current_forward(
    snn: &SpikingNetwork,
    input: &[f32],
    batch: usize,
    timesteps: usize,
) -> (Vec<f32>, Vec<Vec<u32>>) {
    let graph = &snn.graph;
    assert_eq!(input.len(), batch * graph.input_shape().len(), "input length");
    let mut layer_of_node = vec![None; graph.nodes().len()];
    for (index, layer) in snn.layers.iter().enumerate() {
        layer_of_node[layer.node] = Some(index);
    }
    let mut spike_counts = vec![Vec::new(); snn.layers.len()];
    let mut values: Vec<Vec<f32>> = Vec::with_capacity(graph.nodes().len());
    for (id, node) in graph.nodes().iter().enumerate() {
        let value = if matches!(node.op, Op::Input) {
            input.to_vec()
        } else if let Some(index) = layer_of_node[id] {
            let layer = &snn.layers[index];
            let (bias, v_init) = (snn.layer_bias_current(index), snn.layer_v_init(index));
            let current = &values[node.inputs[0]];
            let (counts, value): (Vec<u32>, Vec<f32>) = (0..current.len())
                .map(|i| {
                    let channel = (i / node.shape.plane()) % node.shape.channels;
                    let threshold = layer.thresholds.for_channel(channel);
                    let m = constant_current_spikes(current[i] + bias[channel], threshold, v_init, timesteps);
                    (m, m as f32 * threshold / timesteps as f32)
                })
                .unzip();
            spike_counts[index] = counts;
            value
        } else {
            let args: Vec<&[f32]> = node.inputs.iter().map(|&i| values[i].as_slice()).collect();
            eval_node(graph, node, &args, batch)
        };
        values.push(value);
    }
    (values.swap_remove(graph.output()), spike_counts)
}

/// Initial membranes of an IF layer: `v_init × threshold` for every neuron of the batch.
pub fn initial_membranes(thresholds: &Thresholds, shape: Shape, batch: usize, v_init: f32) -> Vec<f32> {
    (0..batch * shape.len()).map(|i| v_init * thresholds.for_channel((i / shape.plane()) % shape.channels)).collect()
}

/// Everything a simulation produced.
#[derive(Clone, Debug, PartialEq)]
pub struct SnnRun {
    /// `timesteps × batch`: predictions after each step (argmax of the accumulated output).
    pub predictions_per_step: Vec<Vec<usize>>,
    /// Per IF layer, `batch × neurons` spike counts over all steps (NCHW order).
    pub spike_counts: Vec<Vec<u32>>,
    /// `batch × classes` output summed over all steps.
    pub output_accumulated: Vec<f32>,
    /// Per IF layer, `batch × neurons` membranes after the last step.
    pub membranes: Vec<Vec<f32>>,
}

impl SnnRun {
    /// Spikes per IF layer summed over neurons and images.
    pub fn spike_totals(&self) -> Vec<u64> {
        self.spike_counts.iter().map(|counts| counts.iter().map(|&c| c as u64).sum()).collect()
    }
}

/// A simulation in progress: state after [`Simulator::timesteps_done`] steps, advanced by
/// [`Simulator::step`], so tests can compare a GPU plan step by step.
pub struct Simulator<'a> {
    snn: &'a SpikingNetwork,
    batch: usize,
    /// Values of static nodes (computed once), `None` for time-varying ones.
    static_values: Vec<Option<Vec<f32>>>,
    /// Node id → index of its IF layer.
    layer_of_node: Vec<Option<usize>>,
    /// Per IF layer, `batch × neurons` membrane potentials.
    pub membranes: Vec<Vec<f32>>,
    /// Per IF layer, `batch × neurons` spike counts so far.
    pub spike_counts: Vec<Vec<u32>>,
    /// Per IF layer, its bias current per channel (zeros where it has none).
    bias_currents: Vec<Vec<f32>>,
    /// Per time-varying max-pool node, every input's sum over the steps so far (the gate).
    pool_sums: Vec<Option<Vec<f32>>>,
    /// `batch × classes` output summed over the steps so far.
    pub output_accumulated: Vec<f32>,
    /// Number of steps simulated.
    pub timesteps_done: usize,
}

impl<'a> Simulator<'a> {
    /// Sets up `batch` images (`input` is `batch × input_shape`, normalized) at step 0.
    pub fn new(snn: &'a SpikingNetwork, input: &[f32], batch: usize) -> Self {
        let graph = &snn.graph;
        assert_eq!(input.len(), batch * graph.input_shape().len(), "input length");
        let constant = static_nodes(graph);
        let mut static_values: Vec<Option<Vec<f32>>> = Vec::with_capacity(graph.nodes().len());
        for (id, node) in graph.nodes().iter().enumerate() {
            let value = constant[id].then(|| {
                if matches!(node.op, Op::Input) {
                    input.to_vec()
                } else {
                    let args: Vec<&[f32]> = node
                        .inputs
                        .iter()
                        .map(|&i| static_values[i].as_deref().expect("inputs of a static node are static"))
                        .collect();
                    eval_node(graph, node, &args, batch)
                }
            });
            static_values.push(value);
        }
        let mut layer_of_node = vec![None; graph.nodes().len()];
        for (index, layer) in snn.layers.iter().enumerate() {
            layer_of_node[layer.node] = Some(index);
        }
        let shape_of = |node| graph.node(node).shape;
        let membranes = (snn.layers.iter().enumerate())
            .map(|(i, l)| initial_membranes(&l.thresholds, shape_of(l.node), batch, snn.layer_v_init(i)))
            .collect();
        let spike_counts = snn.layers.iter().map(|l| vec![0; batch * shape_of(l.node).len()]).collect();
        let bias_currents = (0..snn.layers.len()).map(|i| snn.layer_bias_current(i)).collect();
        let output_accumulated = vec![0.0; batch * graph.num_classes()];
        let pool_sums = (graph.nodes().iter().zip(&constant))
            .map(|(node, &constant)| match node.op {
                Op::MaxPool2d(_) if !constant => Some(vec![0.0; batch * graph.node(node.inputs[0]).shape.len()]),
                _ => None,
            })
            .collect();
        Self {
            snn,
            batch,
            static_values,
            layer_of_node,
            membranes,
            spike_counts,
            bias_currents,
            pool_sums,
            output_accumulated,
            timesteps_done: 0,
        }
    }

    /// Simulates one timestep and returns the predictions after it (one per image).
    pub fn step(&mut self) -> Vec<usize> {
        let graph = &self.snn.graph;
        let mut values: Vec<Cow<'_, [f32]>> = Vec::with_capacity(graph.nodes().len());
        for (id, node) in graph.nodes().iter().enumerate() {
            let value: Cow<'_, [f32]> = if let Some(value) = &self.static_values[id] {
                Cow::Borrowed(value)
            } else if let Some(index) = self.layer_of_node[id] {
                let layer = &self.snn.layers[index];
                Cow::Owned(if_layer_step(
                    &mut self.membranes[index],
                    &values[node.inputs[0]],
                    &layer.thresholds,
                    &self.bias_currents[index],
                    node.shape,
                    &mut self.spike_counts[index],
                ))
            } else if let (Op::MaxPool2d(pool), Some(sums)) = (&node.op, self.pool_sums[id].as_mut()) {
                let in_shape = graph.node(node.inputs[0]).shape;
                Cow::Owned(ops::gated_max_pool2d_step(pool, &values[node.inputs[0]], sums, in_shape, self.batch))
            } else {
                let args: Vec<&[f32]> = node.inputs.iter().map(|&i| &*values[i]).collect();
                Cow::Owned(eval_node(graph, node, &args, self.batch))
            };
            values.push(value);
        }
        for (sum, v) in self.output_accumulated.iter_mut().zip(values[graph.output()].iter()) {
            *sum += v;
        }
        self.timesteps_done += 1;
        ops::argmax_rows(&self.output_accumulated, graph.num_classes())
    }
}

/// Value of a non-IF node from its inputs' values (the ANN operation, applied per step; for
/// a max pool that is the gated max over inputs constant in time).
fn eval_node(graph: &Graph, node: &Node, args: &[&[f32]], batch: usize) -> Vec<f32> {
    let in_shape = |i: usize| graph.node(node.inputs[i]).shape;
    match &node.op {
        Op::Input => unreachable!("the input node is static"),
        Op::Conv2d(conv) => ops::conv2d(conv, args[0], in_shape(0), batch, None, false).0,
        Op::BatchNorm(bn) => ops::batch_norm(bn, args[0], in_shape(0), batch),
        // A ReLU without an IF layer does not occur in a converted network; apply the ANN op.
        Op::Relu => ops::relu(args[0]),
        Op::Add => ops::add(args[0], args[1]),
        Op::ShortcutA { stride, pad_before, pad_after } => {
            ops::shortcut_a(args[0], in_shape(0), batch, *stride, *pad_before, *pad_after).0
        }
        Op::MaxPool2d(pool) => ops::max_pool2d(pool, args[0], in_shape(0), batch),
        Op::AvgPool2d(pool) => ops::avg_pool2d(pool, args[0], in_shape(0), batch),
        Op::GlobalAvgPool => ops::global_avg_pool(args[0], in_shape(0), batch),
        Op::Linear(layer) => ops::linear(layer, args[0], batch),
    }
}

/// Simulates `batch` images (`input` is `batch × input_shape`, normalized) for `timesteps`
/// steps from the initial state.
pub fn simulate(snn: &SpikingNetwork, input: &[f32], batch: usize, timesteps: usize) -> SnnRun {
    let mut simulator = Simulator::new(snn, input, batch);
    let predictions_per_step = (0..timesteps).map(|_| simulator.step()).collect();
    SnnRun {
        predictions_per_step,
        spike_counts: simulator.spike_counts,
        output_accumulated: simulator.output_accumulated,
        membranes: simulator.membranes,
    }
}

/// Correct predictions after each step: `result[t]` counts images with
/// `predictions_per_step[t][n] == labels[n]`.
pub fn correct_per_step<L: Copy + Into<usize>>(predictions_per_step: &[Vec<usize>], labels: &[L]) -> Vec<usize> {
    predictions_per_step
        .iter()
        .map(|predictions| {
            assert_eq!(predictions.len(), labels.len(), "one label per image");
            predictions.iter().zip(labels).filter(|(&p, &l)| p == l.into()).count()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::Pool2d;

    /// Two spiking inputs in one 2×2 window (the other two silent): the gate passes the
    /// input that has accumulated most, the first on ties; over constant inputs it is the
    /// max; padding never passes.
    #[test]
    fn gated_max_pool_passes_the_input_with_the_largest_sum() {
        let pool = Pool2d { kernel: 2, stride: 2, padding: 0 };
        let shape = Shape::new(1, 2, 2);
        let trains = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]];
        let mut sums = vec![0.0; 4];
        // Sums of the first two after each step: (1, 0), (1, 1) tie, (2, 2) tie, (2, 3).
        let passed: Vec<f32> =
            trains.iter().map(|step| ops::gated_max_pool2d_step(&pool, step, &mut sums, shape, 1)[0]).collect();
        assert_eq!(passed, [1.0, 0.0, 1.0, 1.0]);
        assert_eq!(sums, [2.0, 3.0, 0.0, 0.0]);
        let mut sums = [0.0; 4];
        let constant: Vec<f32> = (0..3)
            .map(|_| ops::gated_max_pool2d_step(&pool, &[0.25, 0.75, -1.0, 0.5], &mut sums, shape, 1)[0])
            .collect();
        assert_eq!(constant, [0.75; 3]);
        let padded = Pool2d { kernel: 2, stride: 1, padding: 1 };
        let out = ops::gated_max_pool2d_step(&padded, &[-3.0], &mut [0.0], Shape::new(1, 1, 1), 1);
        assert_eq!(out, [-3.0; 4], "a padded window passes its only input, never the padding");
    }

    #[test]
    fn if_layer_uses_channel_thresholds() {
        let shape = Shape::new(2, 1, 2);
        let thresholds = Thresholds::Channel(vec![1.0, 2.0]);
        let mut membranes = initial_membranes(&thresholds, shape, 1, 0.5);
        assert_eq!(membranes, [0.5, 0.5, 1.0, 1.0]);
        let mut counts = vec![0; 4];
        let out = if_layer_step(&mut membranes, &[0.5, 0.4, 1.0, 0.9], &thresholds, &[0.0, 0.0], shape, &mut counts);
        assert_eq!(out, [1.0, 0.0, 2.0, 0.0]);
        assert_eq!(counts, [1, 0, 1, 0]);
        assert_eq!(membranes, [0.0, 0.9, 0.0, 1.9]);
    }

    #[test]
    fn bias_current_adds_to_every_step_of_its_channel() {
        let shape = Shape::new(2, 1, 1);
        let thresholds = Thresholds::Layer(1.0);
        let mut membranes = initial_membranes(&thresholds, shape, 1, 0.5);
        let mut counts = vec![0; 2];
        // Channel 0 integrates 0.25 + 0.25 a step and fires every other step from 0.5;
        // channel 1 integrates 0.25 − 0.25 = 0 and stays at 0.5.
        for _ in 0..3 {
            if_layer_step(&mut membranes, &[0.25, 0.25], &thresholds, &[0.25, -0.25], shape, &mut counts);
        }
        assert_eq!(counts, [2, 0]);
        assert_eq!(membranes, [0.0, 0.5]);
    }

    #[test]
    fn constant_current_spikes_are_what_the_if_neuron_counts() {
        // Dyadic currents, thresholds and starts: every sum is exact, so closed form and
        // stepping must agree everywhere, ties at the threshold included.
        for threshold in [0.5f32, 1.0, 2.0] {
            for v_init in [0.0f32, 0.25, 0.5, 1.0] {
                for step in -40..=200 {
                    let current = step as f32 / 64.0;
                    for timesteps in [1, 3, 8, 16] {
                        let mut membrane = v_init * threshold;
                        let stepped = (0..timesteps).filter(|_| if_step(&mut membrane, current, threshold)).count();
                        assert_eq!(
                            constant_current_spikes(current, threshold, v_init, timesteps) as usize,
                            stepped,
                            "current {current}, threshold {threshold}, v_init {v_init}, T = {timesteps}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn correct_counts_per_step() {
        let predictions = vec![vec![0, 1, 2], vec![1, 1, 2]];
        assert_eq!(correct_per_step(&predictions, &[1u8, 1, 0]), [1, 2]);
    }
}
