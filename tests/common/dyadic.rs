//! Small residual networks whose weights, biases, inputs and thresholds are dyadic
//! numbers with few terms, so every float sum is exact in any order and GPU and CPU
//! results can be compared for equality.

use spikeconv::convert::snn::{convert, SpikingNetwork};
use spikeconv::convert::threshold::Thresholds;
use spikeconv::model::graph::{BatchNorm, Conv2d, Graph, Linear, NodeId, Op, Pool2d, Shape};

use super::Rng;

/// Dyadic 3x3 conv: every weight is k/8 with k in -2..=2, and few of them are nonzero.
pub fn dyadic_conv(rng: &mut Rng, in_channels: usize, out_channels: usize, stride: usize) -> Op {
    let weight = (0..out_channels * in_channels * 9)
        .map(|_| if rng.below(3) == 0 { (rng.below(5) as f32 - 2.0) / 8.0 } else { 0.0 })
        .collect();
    let bias = (0..out_channels).map(|_| (rng.below(5) as f32 - 1.0) / 16.0).collect();
    Op::Conv2d(Conv2d { out_channels, in_channels, kernel: 3, stride, padding: 1, weight, bias: Some(bias) })
}

/// Dyadic BatchNorm with `eps = 0` and variance 1/4 or 1, so `scale` and `shift` are exact:
/// gamma k/8 (k in 2..=6), beta and mean k/16 (k in -2..=2).
pub fn dyadic_bn(rng: &mut Rng, channels: usize) -> Op {
    Op::BatchNorm(BatchNorm {
        gamma: (0..channels).map(|_| (rng.below(5) as f32 + 2.0) / 8.0).collect(),
        beta: (0..channels).map(|_| (rng.below(5) as f32 - 2.0) / 16.0).collect(),
        mean: (0..channels).map(|_| (rng.below(5) as f32 - 2.0) / 16.0).collect(),
        var: (0..channels).map(|_| [0.25, 1.0][rng.below(2)]).collect(),
        eps: 0.0,
    })
}

/// Standard: relu(conv2(relu(conv1(x))) + shortcut(x)); restructured:
/// shortcut(x) + relu(conv2(relu(conv1(x)))), no ReLU after the sum.
fn block(
    g: &mut Graph,
    rng: &mut Rng,
    x: NodeId,
    planes: usize,
    stride: usize,
    tag: &str,
    restructured: bool,
) -> NodeId {
    let in_channels = g.node(x).shape.channels;
    let h = g.push(format!("{tag}.conv1"), dyadic_conv(rng, in_channels, planes, stride), &[x]).unwrap();
    let h = g.push(format!("{tag}.relu1"), Op::Relu, &[h]).unwrap();
    let mut h = g.push(format!("{tag}.conv2"), dyadic_conv(rng, planes, planes, 1), &[h]).unwrap();
    if restructured {
        h = g.push(format!("{tag}.relu2"), Op::Relu, &[h]).unwrap();
    }
    let shortcut = if stride != 1 || in_channels != planes {
        let pad = (planes - in_channels) / 2;
        let op = Op::ShortcutA { stride, pad_before: pad, pad_after: planes - in_channels - pad };
        g.push(format!("{tag}.shortcut"), op, &[x]).unwrap()
    } else {
        x
    };
    let sum = g.push(format!("{tag}.add"), Op::Add, &[h, shortcut]).unwrap();
    if restructured {
        sum
    } else {
        g.push(format!("{tag}.relu2"), Op::Relu, &[sum]).unwrap()
    }
}

/// Pre-activation: shortcut(x) + conv2(relu(conv1(relu(bn(x))))).
fn preact_block(g: &mut Graph, rng: &mut Rng, x: NodeId, planes: usize, stride: usize, tag: &str) -> NodeId {
    let in_channels = g.node(x).shape.channels;
    let h = g.push(format!("{tag}.bn1"), dyadic_bn(rng, in_channels), &[x]).unwrap();
    let h = g.push(format!("{tag}.relu1"), Op::Relu, &[h]).unwrap();
    let h = g.push(format!("{tag}.conv1"), dyadic_conv(rng, in_channels, planes, stride), &[h]).unwrap();
    let h = g.push(format!("{tag}.relu2"), Op::Relu, &[h]).unwrap();
    let h = g.push(format!("{tag}.conv2"), dyadic_conv(rng, planes, planes, 1), &[h]).unwrap();
    let shortcut = if stride != 1 || in_channels != planes {
        let pad = (planes - in_channels) / 2;
        let op = Op::ShortcutA { stride, pad_before: pad, pad_after: planes - in_channels - pad };
        g.push(format!("{tag}.shortcut"), op, &[x]).unwrap()
    } else {
        x
    };
    g.push(format!("{tag}.add"), Op::Add, &[h, shortcut]).unwrap()
}

/// Stem, a block of 3 channels, a downsampling block to 6 channels (option A, stride 2),
/// pooling over a 4x4 plane (1/16: exact) and a dyadic linear layer to 4 classes.
pub fn dyadic_resnet(seed: u64) -> Graph {
    resnet(seed, false)
}

/// [`dyadic_resnet`] with restructured blocks (the stem keeps its ReLU).
pub fn dyadic_restructured_resnet(seed: u64) -> Graph {
    resnet(seed, true)
}

/// The pre-activation form of [`dyadic_resnet`]: a stem conv without ReLU, two
/// pre-activation blocks (their IF layers read a BatchNorm of the running sum), then
/// BatchNorm and ReLU before the pool.
pub fn dyadic_preact_resnet(seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let mut g = Graph::new(Shape::new(3, 8, 8));
    let x = g.push("conv1", dyadic_conv(&mut rng, 3, 3, 1), &[0]).unwrap();
    let x = preact_block(&mut g, &mut rng, x, 3, 1, "layer1");
    let x = preact_block(&mut g, &mut rng, x, 6, 2, "layer2");
    let x = g.push("bn", dyadic_bn(&mut rng, 6), &[x]).unwrap();
    let x = g.push("relu", Op::Relu, &[x]).unwrap();
    head(&mut g, &mut rng, x);
    g
}

fn head(g: &mut Graph, rng: &mut Rng, x: NodeId) {
    let x = g.push("pool", Op::GlobalAvgPool, &[x]).unwrap();
    let weight = (0..24).map(|_| (rng.below(9) as f32 - 4.0) / 4.0).collect();
    let bias = (0..4).map(|_| (rng.below(3) as f32 - 1.0) / 8.0).collect();
    g.push("fc", Op::Linear(Linear { in_features: 6, out_features: 4, weight, bias }), &[x]).unwrap();
}

fn resnet(seed: u64, restructured: bool) -> Graph {
    let mut rng = Rng::new(seed);
    let mut g = Graph::new(Shape::new(3, 8, 8));
    let x = g.push("conv1", dyadic_conv(&mut rng, 3, 3, 1), &[0]).unwrap();
    let x = g.push("relu", Op::Relu, &[x]).unwrap();
    let x = block(&mut g, &mut rng, x, 3, 1, "layer1", restructured);
    let x = block(&mut g, &mut rng, x, 6, 2, "layer2", restructured);
    head(&mut g, &mut rng, x);
    g
}

/// A VGG-like network with pooling windows: conv-ReLU-max pool (2, stride 2), conv-ReLU-
/// max pool (3, stride 2, padding 1), conv-ReLU-average pool (2, stride 2, divisor 4:
/// exact), then a linear layer over the flattened 6×2×2 map (the C·H·W order matters).
pub fn dyadic_pooled_net(seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let mut g = Graph::new(Shape::new(3, 16, 16));
    let pool = |kernel, stride, padding| Pool2d { kernel, stride, padding };
    let x = g.push("features.0", dyadic_conv(&mut rng, 3, 4, 1), &[0]).unwrap();
    let x = g.push("features.1", Op::Relu, &[x]).unwrap();
    let x = g.push("features.2", Op::MaxPool2d(pool(2, 2, 0)), &[x]).unwrap();
    let x = g.push("features.3", dyadic_conv(&mut rng, 4, 4, 1), &[x]).unwrap();
    let x = g.push("features.4", Op::Relu, &[x]).unwrap();
    let x = g.push("features.5", Op::MaxPool2d(pool(3, 2, 1)), &[x]).unwrap();
    let x = g.push("features.6", dyadic_conv(&mut rng, 4, 6, 1), &[x]).unwrap();
    let x = g.push("features.7", Op::Relu, &[x]).unwrap();
    let x = g.push("features.8", Op::AvgPool2d(pool(2, 2, 0)), &[x]).unwrap();
    let weight = (0..4 * 24).map(|_| (rng.below(9) as f32 - 4.0) / 4.0).collect();
    let bias = (0..4).map(|_| (rng.below(3) as f32 - 1.0) / 8.0).collect();
    g.push("classifier", Op::Linear(Linear { in_features: 24, out_features: 4, weight, bias }), &[x]).unwrap();
    g
}

/// [`dyadic_snn`] of [`dyadic_pooled_net`]: its max pools are gated max pools.
pub fn dyadic_pooled_snn(seed: u64, per_channel: bool, v_init: f32) -> SpikingNetwork {
    snn_of(dyadic_pooled_net(seed), seed, per_channel, v_init)
}

pub fn relu_nodes(g: &Graph) -> Vec<NodeId> {
    g.nodes().iter().enumerate().filter(|(_, n)| matches!(n.op, Op::Relu)).map(|(id, _)| id).collect()
}

pub fn dyadic_snn(seed: u64, per_channel: bool, v_init: f32) -> SpikingNetwork {
    snn_of(dyadic_resnet(seed), seed, per_channel, v_init)
}

/// [`dyadic_snn`] of the restructured network.
pub fn dyadic_restructured_snn(seed: u64, per_channel: bool, v_init: f32) -> SpikingNetwork {
    snn_of(dyadic_restructured_resnet(seed), seed, per_channel, v_init)
}

/// [`dyadic_snn`] of the pre-activation network.
pub fn dyadic_preact_snn(seed: u64, per_channel: bool, v_init: f32) -> SpikingNetwork {
    snn_of(dyadic_preact_resnet(seed), seed, per_channel, v_init)
}

fn snn_of(graph: Graph, seed: u64, per_channel: bool, v_init: f32) -> SpikingNetwork {
    let mut rng = Rng::new(seed + 100);
    let power = |rng: &mut Rng| [0.25f32, 0.5, 1.0][rng.below(3)];
    let thresholds = relu_nodes(&graph)
        .into_iter()
        .map(|id| {
            let channels = graph.node(id).shape.channels;
            let t = if per_channel {
                Thresholds::Channel((0..channels).map(|_| power(&mut rng)).collect())
            } else {
                Thresholds::Layer(power(&mut rng))
            };
            (id, t)
        })
        .collect();
    convert(&graph, thresholds, v_init).unwrap()
}

/// Inputs k/8 with k in -8..=8.
pub fn dyadic_images(rng: &mut Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| (rng.below(17) as f32 - 8.0) / 8.0).collect()
}
