//! The network graph: the one representation that loading produces and every
//! conversion stage (BN folding, calibration, threshold choice, restructuring) transforms.
//!
//! Nodes are stored in topological order (a node's inputs always come before it), each
//! with its per-image output shape, so passes can walk `nodes()` front to back.

use std::fmt;

/// Index of a node in [`Graph::nodes`].
pub type NodeId = usize;

/// Per-image activation shape, channels × height × width (batch is implicit, NCHW).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Shape {
    pub const fn new(channels: usize, height: usize, width: usize) -> Self {
        Self { channels, height, width }
    }

    /// Number of values per image.
    pub const fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Values per channel plane.
    pub const fn plane(&self) -> usize {
        self.height * self.width
    }

    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// 2-D convolution with a square kernel, weights in PyTorch's OIHW order.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    pub out_channels: usize,
    pub in_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// `out_channels * in_channels * kernel * kernel` values, OIHW.
    pub weight: Vec<f32>,
    /// One value per output channel; `None` means zero.
    pub bias: Option<Vec<f32>>,
}

impl Conv2d {
    /// Output spatial size for an input of `size` (PyTorch's floor formula).
    pub fn output_size(&self, size: usize) -> Option<usize> {
        let padded = size + 2 * self.padding;
        if padded < self.kernel || self.stride == 0 {
            return None;
        }
        Some((padded - self.kernel) / self.stride + 1)
    }
}

/// Inference-mode batch normalization: `y = (x - mean) / sqrt(var + eps) * gamma + beta`.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub eps: f32,
}

impl BatchNorm {
    /// The per-channel affine map `y = scale * x + shift` this layer computes.
    pub fn scale_shift(&self) -> (Vec<f32>, Vec<f32>) {
        let scale: Vec<f32> = self.gamma.iter().zip(&self.var).map(|(g, v)| g / (v + self.eps).sqrt()).collect();
        let shift = self.beta.iter().zip(&self.mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
        (scale, shift)
    }
}

/// Fully connected layer, weight `out_features × in_features` (PyTorch order).
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    pub in_features: usize,
    pub out_features: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// A square pooling window: PyTorch's `MaxPool2d` / `AvgPool2d(kernel, stride, padding)`
/// with `ceil_mode = False` (and, for averages, `count_include_pad = True`, its default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Pool2d {
    pub kernel: usize,
    pub stride: usize,
    /// Padding on every side, at most `kernel / 2` (PyTorch's rule).
    pub padding: usize,
}

impl Pool2d {
    /// Output spatial size for an input of `size` (PyTorch's floor formula).
    pub fn output_size(&self, size: usize) -> Option<usize> {
        let padded = size + 2 * self.padding;
        if self.kernel == 0 || self.stride == 0 || padded < self.kernel || 2 * self.padding > self.kernel {
            return None;
        }
        Some((padded - self.kernel) / self.stride + 1)
    }

    /// The input rows (or columns) window `out` covers: `start..end` clipped to `0..size`.
    pub fn window(&self, out: usize, size: usize) -> std::ops::Range<usize> {
        let start = (out * self.stride) as isize - self.padding as isize;
        let end = (start + self.kernel as isize).min(size as isize);
        (start.max(0) as usize)..(end.max(0) as usize)
    }
}

/// One operation of the network. Every op maps NCHW activations to NCHW activations.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The normalized image; always node 0.
    Input,
    Conv2d(Conv2d),
    BatchNorm(BatchNorm),
    Relu,
    /// Element-wise sum of two inputs of equal shape.
    Add,
    /// He et al.'s parameter-free option-A shortcut: `x[:, :, ::stride, ::stride]`, then
    /// `pad_before` zero channels in front and `pad_after` behind.
    ShortcutA {
        stride: usize,
        pad_before: usize,
        pad_after: usize,
    },
    /// Maximum over each window; padding never wins. In the spiking network this is the
    /// gated max of [`crate::convert::snn`]: each window passes the current value of the
    /// input whose accumulated value is the largest so far.
    MaxPool2d(Pool2d),
    /// Mean over each window, padding counted as zeros (divisor `kernel²`).
    AvgPool2d(Pool2d),
    /// Mean over each channel plane; output shape `C x 1 x 1`.
    GlobalAvgPool,
    /// Fully connected layer over the flattened `C*H*W` input; output `out x 1 x 1`.
    Linear(Linear),
}

impl Op {
    /// Short name of the operation kind, for messages and tables.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv2d(_) => "conv2d",
            Op::BatchNorm(_) => "batch_norm",
            Op::Relu => "relu",
            Op::Add => "add",
            Op::ShortcutA { .. } => "shortcut_a",
            Op::MaxPool2d(_) => "max_pool2d",
            Op::AvgPool2d(_) => "avg_pool2d",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Linear(_) => "linear",
        }
    }

    fn arity(&self) -> usize {
        match self {
            Op::Input => 0,
            Op::Add => 2,
            _ => 1,
        }
    }
}

/// A node: an operation, the nodes it reads, and its per-image output shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Name from the checkpoint's tensor names (e.g. `layer2.0.conv1`), for messages and reports.
    pub name: String,
    pub op: Op,
    pub inputs: Vec<NodeId>,
    pub shape: Shape,
}

/// A node's operation did not fit its inputs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("graph node `{node}` ({kind}): {message}")]
pub struct GraphError {
    pub node: String,
    pub kind: &'static str,
    pub message: String,
}

/// A feed-forward network in topological order with one input (node 0) and one output.
///
/// ```
/// use spikeconv::model::graph::{Graph, Op, Shape};
///
/// let mut graph = Graph::new(Shape::new(16, 32, 32));
/// let shortcut = graph.push("shortcut", Op::ShortcutA { stride: 2, pad_before: 8, pad_after: 8 }, &[0]).unwrap();
/// assert_eq!(graph.node(shortcut).shape, Shape::new(32, 16, 16));
/// // Shapes are checked as nodes are added.
/// assert!(graph.push("add", Op::Add, &[0, shortcut]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    nodes: Vec<Node>,
    output: NodeId,
}

impl Graph {
    /// A graph holding only the input node of the given per-image shape.
    pub fn new(input: Shape) -> Self {
        let node = Node { name: "input".into(), op: Op::Input, inputs: vec![], shape: input };
        Self { nodes: vec![node], output: 0 }
    }

    /// The input node's id (always 0).
    pub const fn input(&self) -> NodeId {
        0
    }

    pub fn input_shape(&self) -> Shape {
        self.nodes[0].shape
    }

    /// Appends a node after checking its inputs exist and its parameters fit their shapes;
    /// the new node becomes the output.
    pub fn push(&mut self, name: impl Into<String>, op: Op, inputs: &[NodeId]) -> Result<NodeId, GraphError> {
        let name = name.into();
        let fail = |message: String| GraphError { node: name.clone(), kind: op.kind(), message };
        if matches!(op, Op::Input) {
            return Err(fail("a graph has exactly one input node".into()));
        }
        if inputs.len() != op.arity() {
            return Err(fail(format!("takes {} input(s), got {}", op.arity(), inputs.len())));
        }
        if let Some(&bad) = inputs.iter().find(|&&i| i >= self.nodes.len()) {
            return Err(fail(format!("input node {bad} does not exist yet")));
        }
        let shapes: Vec<Shape> = inputs.iter().map(|&i| self.nodes[i].shape).collect();
        let shape = infer_shape(&op, &shapes).map_err(fail)?;
        self.nodes.push(Node { name, op, inputs: inputs.to_vec(), shape });
        self.output = self.nodes.len() - 1;
        Ok(self.output)
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Nodes with weights: convolutions and linear layers.
    pub fn weighted_layers(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n.op, Op::Conv2d(_) | Op::Linear(_))).count()
    }

    /// ReLU nodes in topological order: the future IF layers.
    pub fn relu_nodes(&self) -> Vec<NodeId> {
        self.nodes.iter().enumerate().filter(|(_, n)| matches!(n.op, Op::Relu)).map(|(id, _)| id).collect()
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    pub fn output(&self) -> NodeId {
        self.output
    }

    /// Marks `id` as the network's output.
    pub fn set_output(&mut self, id: NodeId) {
        assert!(id < self.nodes.len(), "output node {id} out of range");
        self.output = id;
    }

    /// Nodes that read `id`, in order.
    pub fn consumers(&self, id: NodeId) -> Vec<NodeId> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.inputs.contains(&id)).map(|(i, _)| i).collect()
    }

    /// Number of classes: the output node's channel count.
    pub fn num_classes(&self) -> usize {
        self.nodes[self.output].shape.len()
    }

    /// Assembles a graph from nodes already in topological order with shapes inferred;
    /// used by rewriting passes (e.g. BN folding) that rebuild a graph node by node.
    pub(crate) fn from_parts(nodes: Vec<Node>, output: NodeId) -> Self {
        Self { nodes, output }
    }

    /// Values of the largest node per image (at least 1): what sizes every per-image
    /// buffer of a plan or chunk.
    pub fn largest_value(&self) -> usize {
        self.nodes.iter().map(|n| n.shape.len()).max().unwrap_or(1).max(1)
    }

    /// Multiply-accumulate operations per image (convolutions and linear layers).
    pub fn macs_per_image(&self) -> u64 {
        (0..self.nodes.len()).map(|id| self.node_macs(id)).sum()
    }

    /// Multiply-accumulate operations of node `id` per image (0 but for convolutions and
    /// linear layers).
    pub fn node_macs(&self, id: NodeId) -> u64 {
        let node = &self.nodes[id];
        match &node.op {
            Op::Conv2d(c) => (node.shape.len() * c.in_channels * c.kernel * c.kernel) as u64,
            Op::Linear(l) => (l.in_features * l.out_features) as u64,
            _ => 0,
        }
    }
}

fn infer_shape(op: &Op, inputs: &[Shape]) -> Result<Shape, String> {
    match op {
        Op::Input => unreachable!("checked by push"),
        Op::Conv2d(c) => {
            let x = inputs[0];
            if c.in_channels != x.channels {
                return Err(format!("expects {} input channels, its input has shape {x}", c.in_channels));
            }
            let expected = c.out_channels * c.in_channels * c.kernel * c.kernel;
            if c.weight.len() != expected {
                return Err(format!("weight has {} values, expected {expected}", c.weight.len()));
            }
            if let Some(b) = &c.bias {
                if b.len() != c.out_channels {
                    return Err(format!("bias has {} values, expected {}", b.len(), c.out_channels));
                }
            }
            match (c.output_size(x.height), c.output_size(x.width)) {
                (Some(h), Some(w)) if h > 0 && w > 0 => Ok(Shape::new(c.out_channels, h, w)),
                _ => {
                    Err(format!("kernel {} stride {} padding {} does not fit input {x}", c.kernel, c.stride, c.padding))
                }
            }
        }
        Op::BatchNorm(bn) => {
            let x = inputs[0];
            for (what, v) in
                [("weight", &bn.gamma), ("bias", &bn.beta), ("running_mean", &bn.mean), ("running_var", &bn.var)]
            {
                if v.len() != x.channels {
                    return Err(format!("{what} has {} values, its input has {} channels", v.len(), x.channels));
                }
            }
            Ok(x)
        }
        Op::Relu => Ok(inputs[0]),
        Op::Add => {
            if inputs[0] != inputs[1] {
                return Err(format!("adds shapes {} and {}", inputs[0], inputs[1]));
            }
            Ok(inputs[0])
        }
        Op::ShortcutA { stride, pad_before, pad_after } => {
            let x = inputs[0];
            if *stride == 0 {
                return Err("stride 0".into());
            }
            Ok(Shape::new(x.channels + pad_before + pad_after, x.height.div_ceil(*stride), x.width.div_ceil(*stride)))
        }
        Op::MaxPool2d(pool) | Op::AvgPool2d(pool) => {
            let x = inputs[0];
            match (pool.output_size(x.height), pool.output_size(x.width)) {
                (Some(h), Some(w)) => Ok(Shape::new(x.channels, h, w)),
                _ => Err(format!(
                    "kernel {} stride {} padding {} does not fit input {x} (padding at most kernel / 2)",
                    pool.kernel, pool.stride, pool.padding
                )),
            }
        }
        Op::GlobalAvgPool => Ok(Shape::new(inputs[0].channels, 1, 1)),
        Op::Linear(l) => {
            let x = inputs[0];
            if l.in_features != x.len() {
                return Err(format!("expects {} input features, its input has shape {x}", l.in_features));
            }
            if l.weight.len() != l.in_features * l.out_features || l.bias.len() != l.out_features {
                return Err(format!(
                    "weight/bias have {}/{} values, expected {}/{}",
                    l.weight.len(),
                    l.bias.len(),
                    l.in_features * l.out_features,
                    l.out_features
                ));
            }
            Ok(Shape::new(l.out_features, 1, 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(out_c: usize, in_c: usize, stride: usize) -> Op {
        Op::Conv2d(Conv2d {
            out_channels: out_c,
            in_channels: in_c,
            kernel: 3,
            stride,
            padding: 1,
            weight: vec![0.0; out_c * in_c * 9],
            bias: None,
        })
    }

    #[test]
    fn conv_and_shortcut_shapes_follow_pytorch() {
        let mut g = Graph::new(Shape::new(3, 32, 32));
        let c = g.push("conv1", conv(16, 3, 1), &[0]).unwrap();
        assert_eq!(g.node(c).shape, Shape::new(16, 32, 32));
        let d = g.push("down", conv(32, 16, 2), &[c]).unwrap();
        assert_eq!(g.node(d).shape, Shape::new(32, 16, 16));
        let s = g.push("sc", Op::ShortcutA { stride: 2, pad_before: 8, pad_after: 8 }, &[c]).unwrap();
        assert_eq!(g.node(s).shape, Shape::new(32, 16, 16));
        let a = g.push("add", Op::Add, &[d, s]).unwrap();
        assert_eq!(g.output(), a);
        assert_eq!(g.consumers(c), vec![d, s]);
    }

    #[test]
    fn mismatched_channels_name_the_node() {
        let mut g = Graph::new(Shape::new(3, 8, 8));
        let err = g.push("layer1.0.conv1", conv(16, 4, 1), &[0]).unwrap_err();
        assert_eq!(err.node, "layer1.0.conv1");
        assert!(err.message.contains("4 input channels"), "{err}");
    }

    #[test]
    fn add_rejects_different_shapes() {
        let mut g = Graph::new(Shape::new(3, 8, 8));
        let c = g.push("c", conv(4, 3, 2), &[0]).unwrap();
        assert!(g.push("add", Op::Add, &[0, c]).is_err());
    }
}
