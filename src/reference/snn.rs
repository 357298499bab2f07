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
//! 2. an IF node runs [`neuron_step`] on every neuron: `membrane += current`, then
//!    `if membrane >= threshold { membrane -= threshold; spike }`, in `f32` (a signed
//!    neuron also fires −1 where `membrane < 0` after more positive than negative spikes,
//!    and adds the threshold back, [`Neuron::SignedIf`]); its value is the spike times
//!    `threshold` (θ, −θ or 0);
//! 3. after all nodes, the output node's value is added to the accumulated output and the
//!    step's predictions are the argmax of the accumulated output (first index on ties).

use std::borrow::Cow;

use crate::convert::neuron::Neuron;
use crate::convert::snn::{constant_current_spikes, static_nodes, SpikingNetwork};
use crate::convert::threshold::Thresholds;
use crate::model::graph::{Graph, Node, Op, Shape};

use super::ops;

/// One neuron update: integrates `current` into `membrane`; if the membrane reaches
/// `threshold` (`>=`) it subtracts the threshold and returns 1 (a spike); a signed neuron
/// whose membrane fell below 0 while `net` (its positive minus negative spikes so far,
/// kept by the caller) is positive adds the threshold back and returns −1; else 0.
pub fn neuron_step(neuron: Neuron, membrane: &mut f32, net: &mut i32, current: f32, threshold: f32) -> i32 {
    let potential = *membrane + current;
    let spike = if potential >= threshold {
        *membrane = potential - threshold;
        1
    } else if neuron.signed() && potential < 0.0 && *net > 0 {
        *membrane = potential + threshold;
        -1
    } else {
        *membrane = potential;
        0
    };
    *net += spike;
    spike
}

/// One integrate-and-fire neuron update ([`Neuron::If`]'s [`neuron_step`]): `true` for a spike.
pub fn if_step(membrane: &mut f32, current: f32, threshold: f32) -> bool {
    neuron_step(Neuron::If, membrane, &mut 0, current, threshold) == 1
}

/// The state of one IF layer's neurons over a batch (`batch × shape`, NCHW).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerState {
    pub membranes: Vec<f32>,
    /// Spikes of either sign so far (events, what firing rates and synaptic operations count).
    pub spike_counts: Vec<u32>,
    /// Positive minus negative spikes so far (a signed neuron's memory).
    pub net_spikes: Vec<i32>,
}

/// One timestep of an IF layer of `neuron`s over a batch (`state` and `current` are
/// `batch × shape`, NCHW): adds the channel's `bias_current` to each neuron's current,
/// updates the neurons and returns the layer's output, the spike times the neuron's
/// threshold (θ, −θ or 0).
pub fn if_layer_step(
    neuron: Neuron,
    state: &mut LayerState,
    current: &[f32],
    thresholds: &Thresholds,
    bias_current: &[f32],
    shape: Shape,
) -> Vec<f32> {
    assert_eq!(state.membranes.len(), current.len(), "membrane and current lengths");
    assert_eq!(state.membranes.len(), state.spike_counts.len(), "membrane and spike count lengths");
    assert_eq!(state.membranes.len(), state.net_spikes.len(), "membrane and net spike lengths");
    assert_eq!(bias_current.len(), shape.channels, "one bias current per channel");
    let mut output = vec![0.0f32; current.len()];
    let neurons = state.membranes.iter_mut().zip(state.spike_counts.iter_mut()).zip(state.net_spikes.iter_mut());
    for (i, (((membrane, count), net), &input)) in neurons.zip(current).enumerate() {
        let channel = (i / shape.plane()) % shape.channels;
        let threshold = thresholds.for_channel(channel);
        let spike = neuron_step(neuron, membrane, net, input + bias_current[channel], threshold);
        if spike != 0 {
            *count += 1;
            output[i] = if spike > 0 { threshold } else { -threshold };
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

impl LayerState {
    /// A layer at step 0: membranes at `v_init × threshold`, no spikes.
    pub fn new(thresholds: &Thresholds, shape: Shape, batch: usize, v_init: f32) -> Self {
        let neurons = batch * shape.len();
        Self {
            membranes: initial_membranes(thresholds, shape, batch, v_init),
            spike_counts: vec![0; neurons],
            net_spikes: vec![0; neurons],
        }
    }
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
    /// Per IF layer, its neurons' membranes and spike counts so far.
    pub states: Vec<LayerState>,
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
        let states = (snn.layers.iter().enumerate())
            .map(|(i, l)| LayerState::new(&l.thresholds, shape_of(l.node), batch, snn.layer_v_init(i)))
            .collect();
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
            states,
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
                    self.snn.neuron,
                    &mut self.states[index],
                    &values[node.inputs[0]],
                    &layer.thresholds,
                    &self.bias_currents[index],
                    node.shape,
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
    let (membranes, spike_counts) =
        simulator.states.into_iter().map(|state| (state.membranes, state.spike_counts)).unzip();
    SnnRun { predictions_per_step, spike_counts, output_accumulated: simulator.output_accumulated, membranes }
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
        let mut state = LayerState::new(&thresholds, shape, 1, 0.5);
        assert_eq!(state.membranes, [0.5, 0.5, 1.0, 1.0]);
        let out = if_layer_step(Neuron::If, &mut state, &[0.5, 0.4, 1.0, 0.9], &thresholds, &[0.0, 0.0], shape);
        assert_eq!(out, [1.0, 0.0, 2.0, 0.0]);
        assert_eq!(state.spike_counts, [1, 0, 1, 0]);
        assert_eq!(state.membranes, [0.0, 0.9, 0.0, 1.9]);
    }

    #[test]
    fn bias_current_adds_to_every_step_of_its_channel() {
        let shape = Shape::new(2, 1, 1);
        let thresholds = Thresholds::Layer(1.0);
        let mut state = LayerState::new(&thresholds, shape, 1, 0.5);
        // Channel 0 integrates 0.25 + 0.25 a step and fires every other step from 0.5;
        // channel 1 integrates 0.25 − 0.25 = 0 and stays at 0.5.
        for _ in 0..3 {
            if_layer_step(Neuron::If, &mut state, &[0.25, 0.25], &thresholds, &[0.25, -0.25], shape);
        }
        assert_eq!(state.spike_counts, [2, 0]);
        assert_eq!(state.membranes, [0.0, 0.5]);
    }

    #[test]
    fn signed_neuron_takes_back_a_spike_fired_too_early() {
        let shape = Shape::new(1, 1, 2);
        let thresholds = Thresholds::Layer(1.0);
        // Both neurons get 1.0, then -0.75 three times: the plain one keeps its early spike,
        // the signed one takes it back as soon as its membrane is below 0, and only once
        // (its net count is then 0, where a neuron fed 1.0 - 2.25 in all belongs).
        let mut plain = LayerState::new(&thresholds, shape, 1, 0.5);
        let mut signed = plain.clone();
        let mut values = (Vec::new(), Vec::new());
        for current in [1.0f32, -0.75, -0.75, -0.75] {
            values.0.push(if_layer_step(Neuron::If, &mut plain, &[current, 0.0], &thresholds, &[0.0], shape)[0]);
            values.1.push(if_layer_step(Neuron::SignedIf, &mut signed, &[current, 0.0], &thresholds, &[0.0], shape)[0]);
        }
        assert_eq!(values.0, [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(values.1, [1.0, -1.0, 0.0, 0.0]);
        assert_eq!((plain.spike_counts[0], plain.net_spikes[0], plain.membranes[0]), (1, 1, -1.75));
        assert_eq!((signed.spike_counts[0], signed.net_spikes[0], signed.membranes[0]), (2, 0, -0.75));
        // Never below zero spikes: a neuron that has not fired does not fire -1.
        assert_eq!((signed.spike_counts[1], signed.membranes[1]), (0, 0.5));
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
