//! The converted spiking network: a BN-folded graph whose ReLU nodes are layers of
//! integrate-and-fire (IF) neurons with thresholds, plus the conversion step that builds it.
//!
//! # Semantics (implemented by [`crate::reference::snn`], the GPU plan must match)
//! - Every timestep, every node is evaluated in topological order from the current step's
//!   values of its inputs (no synaptic delay: layer k sees layer k−1's spikes of the same step).
//! - Input coding is direct: the normalized image is the Input node's value every timestep.
//!   Nodes depending only on the input ([`static_nodes`], e.g. the first convolution) are
//!   therefore constant over time and a GPU plan should compute them once.
//! - A ReLU node is an IF layer: `membrane += current + bias` (the ReLU's input node value
//!   plus the layer's per-channel bias current, [`IfLayer::bias_current`], 0 unless
//!   conversion set one; the sum is taken first, in f32), then if `membrane >= threshold`
//!   the neuron spikes and `membrane -= threshold` (reset by subtraction, at most one
//!   spike per neuron per step). A signed neuron ([`SpikingNetwork::neuron`]) also fires
//!   −1 where `membrane < 0` after more positive than negative spikes, and then
//!   `membrane += threshold` ([`super::neuron`]). The node's value is
//!   `spike × threshold` (the neuron's channel threshold when per-channel).
//!   Membranes start at `v_init × threshold`, with the layer's own `v_init` where tuning
//!   chose one ([`IfLayer::v_init`]), else the network's.
//! - Convolutions (biases added every step, a constant current), linear layers, option-A
//!   shortcuts, additions, average pooling and leftover BatchNorms act on these values
//!   linearly every step.
//! - A max pool is a gate ([`super::pooling`]): it adds its input to a per-input sum every
//!   step (f32, step order) and each window passes the current value of its input with the
//!   largest sum (the first in the window's `(y, x)` order on ties). Over an input constant
//!   in time that is the ANN's max pool.
//! - The output node does not spike (unless it is itself a ReLU): its values accumulate over
//!   timesteps; the prediction after t steps is the argmax of the accumulated output, the
//!   first index on ties.

use crate::model::graph::{Graph, NodeId, Op, Shape};

use super::neuron::Neuron;
use super::pooling::{self, MaxPoolStrategy};
use super::stats::LayerStats;
use super::threshold::{choose, from_trained, ThresholdMethod, Thresholds};
use super::ConvertError;
use crate::model::TrainedActivation;

/// Default initial membrane potential, as a fraction of the threshold.
pub const DEFAULT_V_INIT: f32 = 0.5;

/// One layer of integrate-and-fire neurons: a ReLU node of the graph and its thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct IfLayer {
    /// The ReLU node this layer replaces.
    pub node: NodeId,
    /// The node's name (e.g. `layer1.0.relu2`).
    pub name: String,
    /// Threshold per layer or per channel (of the node's shape).
    pub thresholds: Thresholds,
    /// The layer's initial membrane as a fraction of its threshold, where it has its own
    /// (`ttrbr` with `--tune-v-init` chooses one per layer); `None`: the network's
    /// [`SpikingNetwork::v_init`].
    pub v_init: Option<f32>,
    /// A constant current added to every neuron's input every step, one value per channel,
    /// where conversion set one (`--bias-correction` sets it to cancel each channel's mean
    /// error); `None`: 0.
    pub bias_current: Option<Vec<f32>>,
}

/// A converted spiking network, ready to simulate or write to disk.
#[derive(Clone, Debug, PartialEq)]
pub struct SpikingNetwork {
    /// The BN-folded ANN graph; its ReLU nodes are the IF layers.
    pub graph: Graph,
    /// One entry per ReLU node, in topological (graph) order.
    pub layers: Vec<IfLayer>,
    /// Initial membrane potential as a fraction of the threshold, in [0, 1], for every layer
    /// without its own ([`IfLayer::v_init`]).
    pub v_init: f32,
    /// How the thresholds were chosen (a [`ThresholdMethod`] name, or `custom`).
    pub threshold_method: String,
    /// Timestep count the thresholds were tuned for, when a method tunes for one.
    pub tuned_for_timesteps: Option<usize>,
    /// What became of the source network's max pools ([`super::pooling`]); `None` when it
    /// had none. With `Gated` the graph keeps them (gated max pools), with `Avg` it holds
    /// average pools in their place.
    pub max_pooling: Option<MaxPoolStrategy>,
    /// The neuron of every IF layer ([`super::neuron`]).
    pub neuron: Neuron,
}

impl SpikingNetwork {
    /// Index into [`Self::layers`] of the IF layer replacing `node`, if it is one.
    pub fn layer_of(&self, node: NodeId) -> Option<usize> {
        self.layers.iter().position(|layer| layer.node == node)
    }

    /// The initial membrane fraction layer `index` starts from: its own, else the network's.
    pub fn layer_v_init(&self, index: usize) -> f32 {
        self.layers[index].v_init.unwrap_or(self.v_init)
    }

    /// The bias current of layer `index`, one value per channel (zeros where it has none).
    pub fn layer_bias_current(&self, index: usize) -> Vec<f32> {
        let layer = &self.layers[index];
        let channels = self.graph.node(layer.node).shape.channels;
        layer.bias_current.clone().unwrap_or_else(|| vec![0.0; channels])
    }

    /// Checks what a simulation relies on: every layer names a ReLU node, has valid
    /// thresholds for its channels, a valid own `v_init` and bias current where it has
    /// them, and the network's `v_init` is in [0, 1]. Every backend runs this before it
    /// simulates (a file read from disk or a network built by hand may break any of them).
    pub fn validate(&self) -> Result<(), ConvertError> {
        for layer in &self.layers {
            let node = self.graph.nodes().get(layer.node).filter(|n| matches!(n.op, Op::Relu)).ok_or_else(|| {
                ConvertError::NotIfLayer {
                    node: layer.node,
                    name: layer.name.clone(),
                    kind: self.graph.nodes().get(layer.node).map_or("none", |n| n.op.kind()),
                }
            })?;
            validate_layer(
                &layer.name,
                &layer.thresholds,
                layer.v_init,
                layer.bias_current.as_deref(),
                node.shape.channels,
            )?;
        }
        validate_v_init(self.v_init)
    }

    /// Whether any layer has its own initial membrane fraction.
    pub fn has_layer_v_init(&self) -> bool {
        self.layers.iter().any(|layer| layer.v_init.is_some())
    }

    /// Shapes, neuron counts and fan-outs of the IF layers, in layer order.
    pub fn layer_infos(&self) -> Vec<IfLayerInfo> {
        self.layers
            .iter()
            .map(|layer| {
                let shape = self.graph.node(layer.node).shape;
                IfLayerInfo {
                    node: layer.node,
                    name: layer.name.clone(),
                    shape,
                    neurons: shape.len(),
                    fan_out: fan_out(&self.graph, layer.node),
                }
            })
            .collect()
    }
}

/// Builds a spiking network from a BN-folded graph and one [`Thresholds`] per ReLU node.
///
/// Checks: every ReLU node has exactly one entry; entries name ReLU nodes only;
/// per-channel thresholds have one value per channel; every threshold is positive and
/// finite; `v_init` is in [0, 1] (a fraction of the threshold: above 1 a neuron would spike
/// before any input). Leftover BatchNorms are allowed (an affine map per step).
/// `threshold_method` is set to `custom`; [`convert_with`] records the method's name.
pub fn convert(
    folded: &Graph,
    thresholds: Vec<(NodeId, Thresholds)>,
    v_init: f32,
) -> Result<SpikingNetwork, ConvertError> {
    validate_v_init(v_init)?;
    let mut by_node: Vec<Option<Thresholds>> = vec![None; folded.nodes().len()];
    for (node, layer_thresholds) in thresholds {
        let Some(graph_node) = folded.nodes().get(node) else {
            return Err(ConvertError::NotIfLayer { node, name: "<no such node>".into(), kind: "none" });
        };
        if !matches!(graph_node.op, Op::Relu) {
            return Err(ConvertError::NotIfLayer { node, name: graph_node.name.clone(), kind: graph_node.op.kind() });
        }
        if by_node[node].replace(layer_thresholds).is_some() {
            return Err(ConvertError::DuplicateThreshold { layer: graph_node.name.clone() });
        }
    }
    let mut layers = Vec::new();
    for (node, graph_node) in folded.nodes().iter().enumerate() {
        if !matches!(graph_node.op, Op::Relu) {
            continue;
        }
        let name = graph_node.name.clone();
        let Some(thresholds) = by_node[node].take() else {
            return Err(ConvertError::MissingThreshold { layer: name, node });
        };
        validate_thresholds(&name, &thresholds, graph_node.shape.channels)?;
        layers.push(IfLayer { node, name, thresholds, v_init: None, bias_current: None });
    }
    Ok(SpikingNetwork {
        graph: folded.clone(),
        layers,
        v_init,
        threshold_method: "custom".into(),
        tuned_for_timesteps: None,
        max_pooling: (pooling::max_pools(folded) > 0).then_some(MaxPoolStrategy::Gated),
        neuron: Neuron::default(),
    })
}

/// Chooses every layer's thresholds with `method` from calibration statistics (one
/// [`LayerStats`] per ReLU node) and converts; records the method's name. For the methods
/// that start from trained λ use [`convert_from`].
pub fn convert_with(
    folded: &Graph,
    method: ThresholdMethod,
    stats: &[LayerStats],
    v_init: f32,
) -> Result<SpikingNetwork, ConvertError> {
    convert_from(folded, method, stats, None, v_init)
}

/// [`convert_with`] for every method: thresholds from calibration statistics, or, for the
/// methods that [`ThresholdMethod::uses_trained`], from the network's trained λ (matched to
/// IF layers by ReLU node name; an error if the network has none).
pub fn convert_from(
    folded: &Graph,
    method: ThresholdMethod,
    stats: &[LayerStats],
    trained: Option<&TrainedActivation>,
    v_init: f32,
) -> Result<SpikingNetwork, ConvertError> {
    let thresholds = if method.uses_trained() {
        let trained = trained.ok_or_else(|| {
            ConvertError::TrainedThresholds(format!(
                "method {method} needs a quantization-aware checkpoint (one with *.lambda tensors, e.g. from \
                 python/finetune_restructured.py --activation qcfs:L); this one has none"
            ))
        })?;
        let mut thresholds = Vec::new();
        for (node, graph_node) in folded.nodes().iter().enumerate().filter(|(_, n)| matches!(n.op, Op::Relu)) {
            let lambda = trained.lambdas.get(&graph_node.name).ok_or_else(|| {
                ConvertError::TrainedThresholds(format!("IF layer `{}` has no trained lambda", graph_node.name))
            })?;
            thresholds.push((node, from_trained(method, &graph_node.name, lambda, graph_node.shape.channels)?));
        }
        thresholds
    } else {
        let mut thresholds = Vec::with_capacity(stats.len());
        for layer in stats {
            let chosen = choose(method, layer).ok_or_else(|| {
                ConvertError::StatsMismatch(format!("method {method} does not choose from statistics"))
            })?;
            thresholds.push((layer.node, chosen));
        }
        thresholds
    };
    let mut snn = convert(folded, thresholds, v_init)?;
    snn.threshold_method = method.to_string();
    Ok(snn)
}

/// Checks an initial membrane fraction: in [0, 1] (of the threshold; above 1 a neuron would
/// spike before any input, below 0 it would need extra input to catch up).
pub fn validate_v_init(v_init: f32) -> Result<(), ConvertError> {
    if (0.0..=1.0).contains(&v_init) {
        Ok(())
    } else {
        Err(ConvertError::BadVInit(v_init))
    }
}

/// Checks what one IF layer of `channels` channels spikes with: its thresholds, its own
/// initial membrane fraction and its bias current where it has them. Every simulation
/// (the GPU plan, both walks, the CPU engine) checks layers with this.
pub(crate) fn validate_layer(
    layer: &str,
    thresholds: &Thresholds,
    v_init: Option<f32>,
    bias_current: Option<&[f32]>,
    channels: usize,
) -> Result<(), ConvertError> {
    validate_thresholds(layer, thresholds, channels)?;
    if let Some(value) = v_init.filter(|v| !(0.0..=1.0).contains(v)) {
        return Err(ConvertError::BadLayerVInit { layer: layer.into(), value });
    }
    bias_current.map_or(Ok(()), |bias| validate_bias_current(layer, bias, channels))
}

/// Checks a layer's bias current: one value per channel, all finite.
pub(crate) fn validate_bias_current(layer: &str, bias: &[f32], channels: usize) -> Result<(), ConvertError> {
    if bias.len() != channels {
        return Err(ConvertError::BiasCurrentCount { layer: layer.into(), expected: channels, found: bias.len() });
    }
    match bias.iter().position(|v| !v.is_finite()) {
        Some(channel) => Err(ConvertError::BadBiasCurrent { layer: layer.into(), channel, value: bias[channel] }),
        None => Ok(()),
    }
}

/// Checks a layer's thresholds: right count, all positive and finite.
pub(crate) fn validate_thresholds(layer: &str, thresholds: &Thresholds, channels: usize) -> Result<(), ConvertError> {
    if let Thresholds::Channel(values) = thresholds {
        if values.len() != channels {
            return Err(ConvertError::ThresholdCount { layer: layer.into(), expected: channels, found: values.len() });
        }
    }
    match thresholds.values().iter().position(|v| !(v.is_finite() && *v > 0.0)) {
        Some(index) => Err(ConvertError::BadThreshold {
            layer: layer.into(),
            channel: matches!(thresholds, Thresholds::Channel(_)).then_some(index),
            value: thresholds.values()[index],
        }),
        None => Ok(()),
    }
}

/// Description of one IF layer for plans and reports.
#[derive(Clone, Debug, PartialEq)]
pub struct IfLayerInfo {
    pub node: NodeId,
    pub name: String,
    /// Per-image shape of the layer.
    pub shape: Shape,
    /// Neurons per image (`shape.len()`).
    pub neurons: usize,
    /// Synaptic operations one spike of this layer costs; see [`fan_out`].
    pub fan_out: f64,
}

/// Synaptic operations caused by one spike of node `node`: the sum, over every convolution
/// or linear node reached from `node` through routing nodes only (Add, ShortcutA,
/// GlobalAvgPool, BatchNorm), of `MACs(consumer) / input_len(consumer)`, i.e. the consumer's
/// average fan-out per input value (a spike into a max or average pool counts as if it
/// passed: an upper bound for a gated max, exact for a non-overlapping average pool
/// folded into the next layer). ReLU (IF) nodes and the graph output end a path at no
/// cost: routing into a membrane (as an identity shortcut into the next block's IF layer)
/// is not a synaptic operation. The average ignores that a strided shortcut drops some
/// neurons' spikes and that pooling merges them: it is the definition, simple to
/// compute and the same for CPU and GPU.
pub fn fan_out(graph: &Graph, node: NodeId) -> f64 {
    graph
        .consumers(node)
        .into_iter()
        .map(|consumer| {
            let consumer_node = graph.node(consumer);
            let input_len = |id: NodeId| graph.node(id).shape.len() as f64;
            match &consumer_node.op {
                Op::Conv2d(conv) => {
                    let macs = (consumer_node.shape.len() * conv.in_channels * conv.kernel * conv.kernel) as f64;
                    macs / input_len(consumer_node.inputs[0])
                }
                Op::Linear(linear) => linear.out_features as f64,
                Op::Add
                | Op::ShortcutA { .. }
                | Op::MaxPool2d(_)
                | Op::AvgPool2d(_)
                | Op::GlobalAvgPool
                | Op::BatchNorm(_) => fan_out(graph, consumer),
                Op::Relu | Op::Input => 0.0,
            }
        })
        .sum()
}

/// Which nodes are constant over timesteps under direct input coding: the Input node and
/// every non-ReLU node all of whose inputs are constant. A GPU plan computes these once.
pub fn static_nodes(graph: &Graph) -> Vec<bool> {
    let mut constant = Vec::with_capacity(graph.nodes().len());
    for node in graph.nodes() {
        let value = match node.op {
            Op::Input => true,
            Op::Relu => false,
            _ => node.inputs.iter().all(|&i| constant[i]),
        };
        constant.push(value);
    }
    constant
}

/// Fraction of neuron-steps with a spike: `spikes / (neurons × timesteps × images)`
/// (0 when the denominator is 0).
pub fn firing_rate(spikes: u64, neurons: usize, timesteps: usize, images: usize) -> f64 {
    let neuron_steps = neurons as f64 * timesteps as f64 * images as f64;
    if neuron_steps == 0.0 {
        0.0
    } else {
        spikes as f64 / neuron_steps
    }
}

/// Synaptic operations per image: `Σ_layers spikes(layer) × fan_out(layer) / images`, with
/// `spike_totals[i]` the spikes of `layers[i]` summed over all images and timesteps. The
/// first convolution's work on the (non-spiking) direct input is not counted.
pub fn synaptic_ops_per_image(layers: &[IfLayerInfo], spike_totals: &[u64], images: usize) -> f64 {
    assert_eq!(layers.len(), spike_totals.len(), "one spike total per IF layer");
    if images == 0 {
        return 0.0;
    }
    let total: f64 = layers.iter().zip(spike_totals).map(|(layer, &spikes)| spikes as f64 * layer.fan_out).sum();
    total / images as f64
}

/// Spikes an IF neuron gives in `timesteps` steps when fed the same `current` every step,
/// from the membrane `v_init × threshold`: `floor((v_init θ + T current) / θ)` clamped to
/// `[0, T]` (one spike a step at most, reset by subtraction keeps the remainder). What
/// [`crate::reference::snn::if_step`] counts for a constant current, in closed form; a test checks the two agree.
pub fn constant_current_spikes(current: f32, threshold: f32, v_init: f32, timesteps: usize) -> u32 {
    let reached = (v_init * threshold + timesteps as f32 * current) / threshold;
    reached.floor().clamp(0.0, timesteps as f32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::{Conv2d, Linear};

    fn conv(o: usize, i: usize, stride: usize) -> Op {
        Op::Conv2d(Conv2d {
            out_channels: o,
            in_channels: i,
            kernel: 3,
            stride,
            padding: 1,
            weight: vec![0.1; o * i * 9],
            bias: Some(vec![0.0; o]),
        })
    }

    /// conv-relu, then a residual block with a stride-2 option-A shortcut, pool, linear.
    fn block() -> Graph {
        let mut g = Graph::new(Shape::new(3, 8, 8));
        let c1 = g.push("conv1", conv(4, 3, 1), &[0]).unwrap();
        let r1 = g.push("relu1", Op::Relu, &[c1]).unwrap();
        let c2 = g.push("conv2", conv(8, 4, 2), &[r1]).unwrap();
        let r2 = g.push("relu2", Op::Relu, &[c2]).unwrap();
        let c3 = g.push("conv3", conv(8, 8, 1), &[r2]).unwrap();
        let s = g.push("shortcut", Op::ShortcutA { stride: 2, pad_before: 2, pad_after: 2 }, &[r1]).unwrap();
        let a = g.push("add", Op::Add, &[c3, s]).unwrap();
        let r3 = g.push("relu3", Op::Relu, &[a]).unwrap();
        let p = g.push("pool", Op::GlobalAvgPool, &[r3]).unwrap();
        let linear = Linear { in_features: 8, out_features: 10, weight: vec![0.0; 80], bias: vec![0.0; 10] };
        g.push("fc", Op::Linear(linear), &[p]).unwrap();
        g
    }

    #[test]
    fn convert_checks_every_relu_and_threshold() {
        let g = block();
        let good =
            vec![(2, Thresholds::Layer(1.0)), (4, Thresholds::Channel(vec![1.0; 8])), (8, Thresholds::Layer(2.0))];
        let snn = convert(&g, good.clone(), 0.5).unwrap();
        assert_eq!(snn.layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["relu1", "relu2", "relu3"]);
        assert_eq!(snn.layer_of(8), Some(2));

        let missing = good[..2].to_vec();
        assert!(matches!(convert(&g, missing, 0.5), Err(ConvertError::MissingThreshold { node: 8, .. })));
        let mut wrong_node = good.clone();
        wrong_node.push((1, Thresholds::Layer(1.0)));
        assert!(matches!(convert(&g, wrong_node, 0.5), Err(ConvertError::NotIfLayer { node: 1, .. })));
        let mut twice = good.clone();
        twice.push((2, Thresholds::Layer(1.0)));
        assert!(matches!(convert(&g, twice, 0.5), Err(ConvertError::DuplicateThreshold { .. })));
        let mut short = good.clone();
        short[1].1 = Thresholds::Channel(vec![1.0; 4]);
        assert!(matches!(convert(&g, short, 0.5), Err(ConvertError::ThresholdCount { expected: 8, found: 4, .. })));
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let mut list = good.clone();
            list[2].1 = Thresholds::Layer(bad);
            assert!(matches!(convert(&g, list, 0.5), Err(ConvertError::BadThreshold { .. })), "{bad}");
        }
        for v_init in [-0.1, 1.5, f32::NAN] {
            assert!(matches!(convert(&g, good.clone(), v_init), Err(ConvertError::BadVInit(_))));
        }
        assert!(convert(&g, good, 0.0).is_ok());
    }

    #[test]
    fn fan_out_follows_routing_to_weighted_layers() {
        let g = block();
        let snn = convert(
            &g,
            vec![(2, Thresholds::Layer(1.0)), (4, Thresholds::Layer(1.0)), (8, Thresholds::Layer(1.0))],
            0.5,
        )
        .unwrap();
        let infos = snn.layer_infos();
        // relu1 (4×8×8) → conv2 (8×4×4 out, 4 in-channels, 3×3): 8·16·4·9 / 256 = 18; the
        // shortcut reaches only relu3, which costs nothing.
        assert_eq!(infos[0].fan_out, 18.0);
        // relu2 (8×4×4) → conv3 (8×4×4, 3×3): 8·16·8·9 / 128 = 72.
        assert_eq!(infos[1].fan_out, 72.0);
        // relu3 → pool → fc (10 outputs).
        assert_eq!(infos[2].fan_out, 10.0);
        assert_eq!(infos[2].neurons, 128);
        let synops = synaptic_ops_per_image(&infos, &[10, 2, 4], 2);
        assert_eq!(synops, (10.0 * 18.0 + 2.0 * 72.0 + 4.0 * 10.0) / 2.0);
        assert_eq!(firing_rate(32, 128, 4, 2), 32.0 / 1024.0);
    }

    #[test]
    fn only_input_dependent_nodes_are_static() {
        let g = block();
        let constant = static_nodes(&g);
        assert_eq!(&constant[..3], [true, true, false]);
        assert!(constant[3..].iter().all(|c| !c));
    }
}
