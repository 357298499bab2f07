//! The one lowering of a network that every plan on every backend runs: which nodes fuse
//! into one step (a conv with its BatchNorm, residual add and, for the ANN, ReLU), in which
//! order the steps run, after which step each value is dead (so its memory can be reused),
//! which nodes are static over timesteps, and which node is which IF layer.
//!
//! A backend may run a fused group as one kernel (the wgpu backend does) or node by node
//! (the CPU backend builds its schedule without fusion); either way the order, liveness,
//! static nodes and IF layers are these.

use crate::convert::snn::{static_nodes, SpikingNetwork};
use crate::model::graph::{Graph, NodeId, Op};

use super::EngineError;

/// What one step computes: a node, possibly with later nodes fused into it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fusion {
    /// A BatchNorm folded into the conv epilogue.
    pub batch_norm: Option<NodeId>,
    /// The other addend of an `Add` folded into the conv epilogue.
    pub residual: Option<NodeId>,
    /// A ReLU applied in the epilogue.
    pub relu: bool,
    /// The last node of the group: the step runs at its position and produces its value.
    pub last: NodeId,
}

impl Fusion {
    /// The values the group's step reads: its first node's inputs and the residual.
    pub fn inputs(&self, graph: &Graph, start: NodeId) -> Vec<NodeId> {
        let mut inputs = graph.node(start).inputs.clone();
        inputs.extend(self.residual);
        inputs
    }
}

/// How far a schedule fuses nodes into steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fusing {
    /// Every node is a step of its own.
    None,
    /// Conv → BatchNorm → residual add into one step; ReLU too when `relu` (the ANN; an
    /// SNN's ReLUs are IF layers, steps of their own).
    Epilogue { relu: bool },
}

/// One step: the value of node `position`, computed from the group starting at `start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub position: NodeId,
    pub start: NodeId,
    pub fusion: Fusion,
}

/// A network lowered into steps.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Every step, in the order they run.
    pub steps: Vec<Step>,
    /// Position of the last step that reads each value (`None`: never read).
    pub last_read: Vec<Option<NodeId>>,
    /// Nodes constant over timesteps under direct input coding (computed once per image).
    pub static_node: Vec<bool>,
    /// The IF layer (index in [`SpikingNetwork::layers`]) of each node that is one.
    pub if_layer: Vec<Option<usize>>,
    /// For each node whose value is an IF layer's spikes, that layer's node: the layer
    /// itself, or, for a max pool over it (the spiking network's gated max, which passes one
    /// input's value unchanged: a spike at its channel's threshold or 0), the layer below,
    /// through chains of them. A conv reading such a value reads spikes, with exact products.
    pub spike_source: Vec<Option<NodeId>>,
}

impl Schedule {
    /// The ANN's schedule (no IF layers).
    pub fn ann(graph: &Graph, fusing: Fusing) -> Self {
        Self::lower(graph, fusing, vec![None; graph.nodes().len()])
    }

    /// The SNN's schedule: every ReLU an IF layer (a step of its own, whatever `fusing`
    /// says of ReLUs); an error names a ReLU that has no IF layer.
    pub fn snn(snn: &SpikingNetwork, fusing: Fusing) -> Result<Self, EngineError> {
        let graph = &snn.graph;
        let mut if_layer = vec![None; graph.nodes().len()];
        for (index, layer) in snn.layers.iter().enumerate() {
            if let Some(slot) = if_layer.get_mut(layer.node) {
                *slot = Some(index);
            }
        }
        if let Some((_, node)) =
            graph.nodes().iter().enumerate().find(|(id, n)| matches!(n.op, Op::Relu) && if_layer[*id].is_none())
        {
            return Err(EngineError::InvalidInput(format!(
                "ReLU node `{}` has no IF layer (no thresholds)",
                node.name
            )));
        }
        let fusing = match fusing {
            Fusing::Epilogue { .. } => Fusing::Epilogue { relu: false },
            Fusing::None => Fusing::None,
        };
        Ok(Self::lower(graph, fusing, if_layer))
    }

    fn lower(graph: &Graph, fusing: Fusing, if_layer: Vec<Option<usize>>) -> Self {
        let fusions = plan_fusions(graph, fusing);
        let mut steps = Vec::new();
        let mut step_at: Vec<Option<NodeId>> = vec![None; fusions.len()];
        for (start, fusion) in fusions.iter().enumerate() {
            if let Some(f) = fusion {
                step_at[f.last] = Some(start);
            }
        }
        let mut last_read: Vec<Option<NodeId>> = vec![None; graph.nodes().len()];
        for (position, start) in step_at.iter().enumerate() {
            if let Some(start) = *start {
                let fusion = fusions[start].clone().expect("a step starts at a fused group");
                for input in fusion.inputs(graph, start) {
                    last_read[input] = Some(position);
                }
                steps.push(Step { position, start, fusion });
            }
        }
        let mut spike_source: Vec<Option<NodeId>> = vec![None; graph.nodes().len()];
        for (id, node) in graph.nodes().iter().enumerate() {
            spike_source[id] = match node.op {
                _ if if_layer[id].is_some() => Some(id),
                Op::MaxPool2d(_) => spike_source[node.inputs[0]],
                _ => None,
            };
        }
        Self { steps, last_read, static_node: static_nodes(graph), if_layer, spike_source }
    }

    /// The IF layer (index in [`SpikingNetwork::layers`]) whose spikes node `id`'s value is
    /// ([`Schedule::spike_source`]).
    pub fn spike_layer(&self, id: NodeId) -> Option<usize> {
        self.spike_source[id].and_then(|node| self.if_layer[node])
    }

    /// The values dead once `step` has run: the inputs it read last, and its own value when
    /// no later step reads it (a plan keeps the output itself); sorted, each once.
    pub fn dead_after(&self, graph: &Graph, step: &Step) -> Vec<NodeId> {
        let mut dead: Vec<NodeId> = step
            .fusion
            .inputs(graph, step.start)
            .into_iter()
            .filter(|&id| self.last_read[id] == Some(step.position))
            .collect();
        if self.last_read[step.position].is_none() {
            dead.push(step.position);
        }
        dead.sort_unstable();
        dead.dedup();
        dead
    }
}

/// The only consumer of `id`, if it has exactly one and is not the network output.
fn sole_consumer(graph: &Graph, id: NodeId) -> Option<NodeId> {
    if id == graph.output() {
        return None;
    }
    match graph.consumers(id).as_slice() {
        &[c] => Some(c),
        _ => None,
    }
}

/// Groups nodes into steps: `fusions[i]` is set for each node that starts a step.
fn plan_fusions(graph: &Graph, fusing: Fusing) -> Vec<Option<Fusion>> {
    let nodes = graph.nodes();
    let mut fusions: Vec<Option<Fusion>> = vec![None; nodes.len()];
    let mut absorbed = vec![false; nodes.len()];
    let (fuse, fuse_relu) = match fusing {
        Fusing::None => (false, false),
        Fusing::Epilogue { relu } => (true, relu),
    };
    for (id, node) in nodes.iter().enumerate() {
        if absorbed[id] || matches!(node.op, Op::Input) {
            continue;
        }
        let mut fusion = Fusion { last: id, ..Default::default() };
        let next = |fusion: &Fusion| sole_consumer(graph, fusion.last).map(|c| (c, &nodes[c]));
        match node.op {
            // The epilogue order is bias -> scale/shift -> residual -> ReLU.
            Op::Conv2d(_) if fuse => {
                if let Some((c, Op::BatchNorm(_))) = next(&fusion).map(|(c, n)| (c, &n.op)) {
                    fusion.batch_norm = Some(c);
                    fusion.last = c;
                }
                // An addition another group already took (the branch's conv, when this is
                // the option-B projection that follows it) stays there: it runs once.
                if let Some((c, Op::Add)) = next(&fusion).map(|(c, n)| (c, &n.op)).filter(|(c, _)| !absorbed[*c]) {
                    let inputs = &nodes[c].inputs;
                    // Add(x, x) reads the conv twice: it cannot be the residual of itself.
                    if inputs[0] != inputs[1] {
                        let other = if inputs[0] == fusion.last { inputs[1] } else { inputs[0] };
                        fusion.residual = Some(other);
                        fusion.last = c;
                    }
                }
                if let Some((c, Op::Relu)) = next(&fusion).map(|(c, n)| (c, &n.op)).filter(|_| fuse_relu) {
                    fusion.relu = true;
                    fusion.last = c;
                }
            }
            Op::BatchNorm(_) | Op::Add if fuse => {
                if let Some((c, Op::Relu)) = next(&fusion).map(|(c, n)| (c, &n.op)).filter(|_| fuse_relu) {
                    fusion.relu = true;
                    fusion.last = c;
                }
            }
            _ => {}
        }
        // Every node after the start up to the last is absorbed (each is the sole
        // consumer of the one before).
        let mut cursor = id;
        while cursor != fusion.last {
            match sole_consumer(graph, cursor) {
                Some(c) => {
                    absorbed[c] = true;
                    cursor = c;
                }
                None => break,
            }
        }
        fusions[id] = Some(fusion);
    }
    fusions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::snn::convert;
    use crate::convert::threshold::Thresholds;
    use crate::model::graph::{BatchNorm, Conv2d, Pool2d, Shape};

    fn conv(out_channels: usize, in_channels: usize, kernel: usize) -> Op {
        let weight = vec![0.0; out_channels * in_channels * kernel * kernel];
        Op::Conv2d(Conv2d { out_channels, in_channels, kernel, stride: 1, padding: kernel / 2, weight, bias: None })
    }

    fn bn(channels: usize) -> Op {
        let v = vec![1.0; channels];
        Op::BatchNorm(BatchNorm { gamma: v.clone(), beta: v.clone(), mean: v.clone(), var: v, eps: 1e-5 })
    }

    /// An option-B block as the loader builds it: the branch, then the projection, then
    /// the sum. The branch's conv takes the sum (its step runs at the sum's position, after
    /// the projection's); the projection's conv must not take it a second time.
    #[test]
    fn an_addition_is_fused_into_one_step_only() {
        let mut g = Graph::new(Shape::new(2, 4, 4));
        let c1 = g.push("conv1", conv(4, 2, 3), &[0]).unwrap();
        let b1 = g.push("bn1", bn(4), &[c1]).unwrap();
        let sc = g.push("shortcut.0", conv(4, 2, 1), &[0]).unwrap();
        let sb = g.push("shortcut.1", bn(4), &[sc]).unwrap();
        let add = g.push("add", Op::Add, &[b1, sb]).unwrap();
        let relu = g.push("relu", Op::Relu, &[add]).unwrap();
        let schedule = Schedule::ann(&g, Fusing::Epilogue { relu: true });
        let step = |start: NodeId| schedule.steps.iter().find(|s| s.start == start).map(|s| s.fusion.clone());
        assert_eq!(schedule.steps.len(), 2);
        let (branch, projection) = (step(c1).unwrap(), step(sc).unwrap());
        assert_eq!((branch.last, branch.residual, branch.relu), (relu, Some(sb), true));
        assert_eq!((projection.last, projection.residual), (sb, None));
        assert!(schedule.steps.iter().position(|s| s.start == sc) < schedule.steps.iter().position(|s| s.start == c1));
    }

    /// Gated max pools pass their IF layer's spikes on, through chains of them; a max pool
    /// over a static value, an average pool and a conv do not.
    #[test]
    fn spikes_pass_through_max_pools_only() {
        let pool = |kernel, stride| Op::MaxPool2d(Pool2d { kernel, stride, padding: 0 });
        let conv = |channels| {
            let weight = vec![0.0; channels * channels];
            Op::Conv2d(Conv2d {
                out_channels: channels,
                in_channels: channels,
                kernel: 1,
                stride: 1,
                padding: 0,
                weight,
                bias: None,
            })
        };
        let mut g = Graph::new(Shape::new(2, 8, 8));
        let image_pool = g.push("image_pool", pool(2, 2), &[0]).unwrap();
        let c1 = g.push("conv1", conv(2), &[image_pool]).unwrap();
        let r1 = g.push("relu1", Op::Relu, &[c1]).unwrap();
        let p1 = g.push("pool1", pool(2, 1), &[r1]).unwrap();
        let p2 = g.push("pool2", pool(2, 1), &[p1]).unwrap();
        let c2 = g.push("conv2", conv(2), &[p2]).unwrap();
        let r2 = g.push("relu2", Op::Relu, &[c2]).unwrap();
        let avg = g.push("avg", Op::AvgPool2d(Pool2d { kernel: 2, stride: 1, padding: 0 }), &[r2]).unwrap();
        let after_avg = g.push("after_avg", pool(1, 1), &[avg]).unwrap();
        let snn = convert(&g, vec![(r1, Thresholds::Layer(1.0)), (r2, Thresholds::Layer(0.5))], 0.5).unwrap();
        let schedule = Schedule::snn(&snn, Fusing::Epilogue { relu: false }).unwrap();
        let layers: Vec<Option<usize>> =
            [image_pool, c1, r1, p1, p2, c2, r2, avg, after_avg].map(|id| schedule.spike_layer(id)).into();
        assert_eq!(layers, [None, None, Some(0), Some(0), Some(0), None, Some(1), None, None]);
    }
}
