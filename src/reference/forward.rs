//! Whole-graph CPU forward pass: the ground truth for GPU plans and conversion passes.

use crate::model::graph::{Graph, Op};

use super::ops;

/// Runs `graph` on `batch` images (`input` holds `batch × input_shape` normalized values)
/// and returns every node's activation, indexed by node id.
pub fn forward_all(graph: &Graph, input: &[f32], batch: usize) -> Vec<Vec<f32>> {
    assert_eq!(input.len(), batch * graph.input_shape().len(), "input length");
    let mut values: Vec<Vec<f32>> = Vec::with_capacity(graph.nodes().len());
    for node in graph.nodes() {
        let arg = |i: usize| -> &[f32] { &values[node.inputs[i]] };
        let in_shape = |i: usize| graph.node(node.inputs[i]).shape;
        let value = match &node.op {
            Op::Input => input.to_vec(),
            Op::Conv2d(conv) => ops::conv2d(conv, arg(0), in_shape(0), batch, None, false).0,
            Op::BatchNorm(bn) => ops::batch_norm(bn, arg(0), in_shape(0), batch),
            Op::Relu => ops::relu(arg(0)),
            Op::Add => ops::add(arg(0), arg(1)),
            Op::ShortcutA { stride, pad_before, pad_after } => {
                ops::shortcut_a(arg(0), in_shape(0), batch, *stride, *pad_before, *pad_after).0
            }
            Op::MaxPool2d(pool) => ops::max_pool2d(pool, arg(0), in_shape(0), batch),
            Op::AvgPool2d(pool) => ops::avg_pool2d(pool, arg(0), in_shape(0), batch),
            Op::GlobalAvgPool => ops::global_avg_pool(arg(0), in_shape(0), batch),
            Op::Linear(layer) => ops::linear(layer, arg(0), batch),
        };
        debug_assert_eq!(value.len(), batch * node.shape.len(), "node {}", node.name);
        values.push(value);
    }
    values
}

/// Runs `graph` and returns the output node's values (`batch × num_classes` logits).
pub fn forward(graph: &Graph, input: &[f32], batch: usize) -> Vec<f32> {
    forward_all(graph, input, batch).swap_remove(graph.output())
}
