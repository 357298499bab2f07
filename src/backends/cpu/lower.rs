//! A graph lowered once for the CPU kernels: convolution and linear weights in the NHWC
//! layouts the kernels read, BatchNorm as a per-channel affine map, and for every node the
//! position of its last reader, so a value is dropped as soon as nothing needs it.

use crate::engine::{Fusing, Schedule};
use crate::model::graph::{Graph, NodeId, Op, Pool2d, Shape};

use super::conv::ConvWeights;
use super::ops::LinearWeights;

/// One node's operation as the CPU kernels run it.
#[derive(Clone, Debug)]
pub enum CpuOp {
    Input,
    Conv(ConvWeights),
    /// `scale[c] · x + shift[c]` (an inference BatchNorm).
    Affine {
        scale: Vec<f32>,
        shift: Vec<f32>,
    },
    Relu,
    Add,
    ShortcutA {
        stride: usize,
        pad_before: usize,
    },
    /// A max pool in the ANN; in the spiking network over time-varying values, the gated
    /// max ([`super::ops::gated_max_pool`]).
    MaxPool(Pool2d),
    AvgPool(Pool2d),
    GlobalAvgPool,
    Linear(LinearWeights),
}

/// A graph lowered for the CPU backend; node ids and order are the graph's.
#[derive(Clone, Debug)]
pub struct CpuGraph {
    pub ops: Vec<CpuOp>,
    pub inputs: Vec<Vec<NodeId>>,
    /// Per-sample output shape of every node.
    pub shapes: Vec<Shape>,
    /// Node whose value a run returns.
    pub output: NodeId,
    /// The last node that reads each node's value (`usize::MAX` for the output: never dropped).
    pub last_read: Vec<usize>,
}

impl CpuGraph {
    /// This graph with every convolution rounding each product before adding it, as the
    /// reference does ([`ConvWeights::rounding_each_product`]): for everything that decides
    /// a converted network or its spikes (calibration, the walk's ANN values, the
    /// simulation), so that those are the reference's and lavapipe's bit for bit. The `ann`
    /// accuracy pass keeps fused multiply-adds, for speed.
    pub fn rounding_each_product(&self) -> Self {
        let ops = self
            .ops
            .iter()
            .map(|op| match op {
                CpuOp::Conv(weights) => CpuOp::Conv(weights.rounding_each_product()),
                other => other.clone(),
            })
            .collect();
        Self { ops, ..self.clone() }
    }

    /// `graph` lowered node by node ([`Schedule::ann`] without fusion).
    pub fn new(graph: &Graph) -> Self {
        Self::scheduled(graph, &Schedule::ann(graph, Fusing::None))
    }

    /// `graph` lowered along `schedule`, an unfused schedule of it (each node a step).
    pub fn scheduled(graph: &Graph, schedule: &Schedule) -> Self {
        let nodes = graph.nodes();
        let shape_of = |id: NodeId| nodes[id].shape;
        let ops = nodes
            .iter()
            .map(|node| match &node.op {
                Op::Input => CpuOp::Input,
                Op::Conv2d(conv) => CpuOp::Conv(ConvWeights::new(conv, shape_of(node.inputs[0]), node.shape)),
                Op::BatchNorm(bn) => {
                    let (scale, shift) = bn.scale_shift();
                    CpuOp::Affine { scale, shift }
                }
                Op::Relu => CpuOp::Relu,
                Op::Add => CpuOp::Add,
                Op::ShortcutA { stride, pad_before, .. } => {
                    CpuOp::ShortcutA { stride: *stride, pad_before: *pad_before }
                }
                Op::MaxPool2d(pool) => CpuOp::MaxPool(*pool),
                Op::AvgPool2d(pool) => CpuOp::AvgPool(*pool),
                Op::GlobalAvgPool => CpuOp::GlobalAvgPool,
                Op::Linear(layer) => CpuOp::Linear(LinearWeights::new(layer, shape_of(node.inputs[0]))),
            })
            .collect();
        // Node by node, in the graph's order; a value never read is dropped by no one.
        let mut last_read: Vec<usize> = schedule.last_read.iter().map(|read| read.unwrap_or(0)).collect();
        last_read[graph.output()] = usize::MAX;
        Self {
            ops,
            inputs: nodes.iter().map(|n| n.inputs.clone()).collect(),
            shapes: nodes.iter().map(|n| n.shape).collect(),
            output: graph.output(),
            last_read,
        }
    }
}
