//! Batch-norm folding: a BatchNorm that directly follows a convolution (and is that
//! convolution's only reader) is merged into the convolution's weights and bias.
//!
//! With `scale = gamma / sqrt(var + eps)` and `shift = beta - mean * scale`:
//! `BN(conv(x)) = conv'(x)` where `w'[o] = w[o] * scale[o]` and `b'[o] = b[o] * scale[o] + shift[o]`.
//! After folding, every ReLU of a CIFAR ResNet reads a biased convolution or an addition,
//! which is the form conversion to integrate-and-fire neurons works on.

use crate::model::graph::{Graph, Node, NodeId, Op};

/// Returns a copy of `graph` with every foldable BatchNorm merged into its convolution.
/// BatchNorms that cannot be folded (input not a convolution, or the convolution's output
/// is read elsewhere too) stay as they are.
pub fn fold_batch_norm(graph: &Graph) -> Graph {
    let mut nodes: Vec<Node> = Vec::with_capacity(graph.nodes().len());
    // Old node id -> id of the node holding its value in the new graph.
    let mut remap: Vec<NodeId> = Vec::with_capacity(graph.nodes().len());
    for node in graph.nodes() {
        if let Op::BatchNorm(bn) = &node.op {
            let source = node.inputs[0];
            let foldable = matches!(graph.node(source).op, Op::Conv2d(_))
                && graph.consumers(source).len() == 1
                && graph.output() != source;
            if foldable {
                let target = remap[source];
                let Op::Conv2d(conv) = &mut nodes[target].op else {
                    unreachable!("remapped convolution is a convolution");
                };
                let (scale, shift) = bn.scale_shift();
                let per_out = conv.weight.len() / conv.out_channels;
                for (o, weights) in conv.weight.chunks_exact_mut(per_out).enumerate() {
                    weights.iter_mut().for_each(|w| *w *= scale[o]);
                }
                let bias = conv.bias.get_or_insert_with(|| vec![0.0; scale.len()]);
                for ((b, s), t) in bias.iter_mut().zip(&scale).zip(&shift) {
                    *b = *b * s + t;
                }
                remap.push(target);
                continue;
            }
        }
        let mut copy = node.clone();
        copy.inputs = node.inputs.iter().map(|&i| remap[i]).collect();
        remap.push(nodes.len());
        nodes.push(copy);
    }
    Graph::from_parts(nodes, remap[graph.output()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::{BatchNorm, Conv2d, Shape};

    fn values(n: usize, seed: u32) -> Vec<f32> {
        // Deterministic values in [-1, 1) without a random crate.
        (0..n as u32).map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed)) % 2000) as f32 / 1000.0 - 1.0).collect()
    }

    fn bn(c: usize, seed: u32) -> Op {
        Op::BatchNorm(BatchNorm {
            gamma: values(c, seed).iter().map(|v| 1.0 + v * 0.5).collect(),
            beta: values(c, seed + 1),
            mean: values(c, seed + 2),
            var: values(c, seed + 3).iter().map(|v| 0.5 + v.abs()).collect(),
            eps: 1e-5,
        })
    }

    fn conv(o: usize, i: usize, stride: usize, bias: bool, seed: u32) -> Op {
        Op::Conv2d(Conv2d {
            out_channels: o,
            in_channels: i,
            kernel: 3,
            stride,
            padding: 1,
            weight: values(o * i * 9, seed),
            bias: bias.then(|| values(o, seed + 7)),
        })
    }

    #[test]
    fn folding_removes_conv_bn_pairs_only() {
        let mut g = Graph::new(Shape::new(3, 6, 6));
        let c = g.push("c", conv(4, 3, 1, false, 1), &[0]).unwrap();
        let b = g.push("b", bn(4, 2), &[c]).unwrap();
        let r = g.push("r", Op::Relu, &[b]).unwrap();
        // A BatchNorm after a ReLU cannot fold.
        let b2 = g.push("b2", bn(4, 3), &[r]).unwrap();
        let _ = g.push("add", Op::Add, &[b2, r]).unwrap();
        let folded = fold_batch_norm(&g);
        let kinds: Vec<&str> = folded.nodes().iter().map(|n| n.op.kind()).collect();
        assert_eq!(kinds, ["input", "conv2d", "relu", "batch_norm", "add"]);
        assert_eq!(folded.node(folded.output()).inputs, vec![3, 2]);
    }

    #[test]
    fn folded_graph_gives_same_logits() {
        let mut g = Graph::new(Shape::new(3, 7, 7));
        let c1 = g.push("c1", conv(5, 3, 1, false, 10), &[0]).unwrap();
        let b1 = g.push("b1", bn(5, 20), &[c1]).unwrap();
        let r1 = g.push("r1", Op::Relu, &[b1]).unwrap();
        let c2 = g.push("c2", conv(6, 5, 2, true, 30), &[r1]).unwrap();
        let b2 = g.push("b2", bn(6, 40), &[c2]).unwrap();
        let s = g.push("s", Op::ShortcutA { stride: 2, pad_before: 0, pad_after: 1 }, &[r1]).unwrap();
        let a = g.push("a", Op::Add, &[b2, s]).unwrap();
        let r2 = g.push("r2", Op::Relu, &[a]).unwrap();
        let _ = g.push("pool", Op::GlobalAvgPool, &[r2]).unwrap();
        let folded = fold_batch_norm(&g);
        assert!(folded.nodes().iter().all(|n| !matches!(n.op, Op::BatchNorm(_))));
        let batch = 3;
        let input = values(batch * 3 * 49, 99);
        let expected = crate::reference::forward(&g, &input, batch);
        let got = crate::reference::forward(&folded, &input, batch);
        for (e, g) in expected.iter().zip(&got) {
            assert!((e - g).abs() <= 1e-5 * e.abs().max(1.0), "{e} vs {g}");
        }
    }
}
