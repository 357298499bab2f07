//! The ANN forward pass on the CPU: every convolution dense, every ReLU applied; an
//! observer sees each ReLU node's output (for calibration).

use crate::model::graph::NodeId;

use super::conv::conv_dense;
use super::lower::{CpuGraph, CpuOp};
use super::ops;

/// Runs `graph` on `samples` NHWC inputs and returns the output node's value
/// (`samples × output len`). `observe(node, values)` is called with every ReLU node's
/// output (NHWC) right after it is computed.
pub fn forward(graph: &CpuGraph, input: Vec<f32>, samples: usize, mut observe: impl FnMut(NodeId, &[f32])) -> Vec<f32> {
    forward_with(graph, input, |position, args| {
        let value = eval_node(graph, position, args, samples);
        if matches!(graph.ops[position], CpuOp::Relu) {
            observe(position, &value);
        }
        value
    })
}

/// Runs `graph` from the input node's value, computing every other node in topological
/// order as `node_value(node, its inputs' values)`, and returns the output node's value.
/// Each value is dropped after its last reader. [`forward`] computes every node as the ANN
/// does; the constant-current twin replaces its IF nodes.
pub fn forward_with(
    graph: &CpuGraph,
    input: Vec<f32>,
    mut node_value: impl FnMut(NodeId, &[&[f32]]) -> Vec<f32>,
) -> Vec<f32> {
    let mut values: Vec<Option<Vec<f32>>> = vec![None; graph.ops.len()];
    values[0] = Some(input);
    for position in 1..graph.ops.len() {
        let args: Vec<&[f32]> =
            graph.inputs[position].iter().map(|&i| values[i].as_deref().expect("inputs come first")).collect();
        let value = node_value(position, &args);
        values[position] = Some(value);
        for &input in &graph.inputs[position] {
            if graph.last_read[input] == position {
                values[input] = None;
            }
        }
    }
    values[graph.output].take().expect("the output is computed")
}

/// The ANN value of node `position` over `samples` samples from its inputs' values.
pub fn eval_node(graph: &CpuGraph, position: NodeId, args: &[&[f32]], samples: usize) -> Vec<f32> {
    let in_shape = graph.shapes[graph.inputs[position].first().copied().unwrap_or(0)];
    let shape = graph.shapes[position];
    match &graph.ops[position] {
        CpuOp::Input => unreachable!("only node 0 is the input"),
        CpuOp::Conv(weights) => {
            let mut out = vec![0.0f32; samples * shape.len()];
            conv_dense(weights, args[0], samples, &mut out);
            out
        }
        CpuOp::Affine { scale, shift } => ops::affine(scale, shift, args[0]),
        CpuOp::Relu => {
            let mut out = args[0].to_vec();
            ops::relu(&mut out);
            out
        }
        CpuOp::Add => ops::add(args[0], args[1], shape.len(), 1),
        CpuOp::ShortcutA { stride, pad_before } => {
            ops::shortcut_a(args[0], in_shape, samples, *stride, *pad_before, shape)
        }
        CpuOp::MaxPool(pool) => ops::max_pool(pool, args[0], in_shape, shape, samples),
        CpuOp::AvgPool(pool) => ops::avg_pool(pool, args[0], in_shape, shape, samples),
        CpuOp::GlobalAvgPool => ops::global_avg_pool(args[0], in_shape, samples),
        CpuOp::Linear(layer) => ops::linear(layer, args[0], samples),
    }
}
