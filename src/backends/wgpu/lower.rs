//! The one lowering of a graph for the GPU plans ([`super::ann`], [`super::snn`],
//! [`super::layerwise`]): which nodes fuse into one step (a conv with its BatchNorm, residual
//! add and, for the ANN, ReLU), where each step runs, what it reads, and after which step
//! each value is dead (so its buffer can be reused).

use crate::model::graph::{Graph, NodeId, Op};

/// What one step computes: a node, possibly with later nodes fused into it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fusion {
    /// A BatchNorm folded into the conv epilogue.
    pub(crate) batch_norm: Option<NodeId>,
    /// The other addend of an `Add` folded into the conv epilogue.
    pub(crate) residual: Option<NodeId>,
    /// A ReLU applied in the epilogue.
    pub(crate) relu: bool,
    /// The last node of the group: the step runs at its position and produces its value.
    pub(crate) last: NodeId,
}

impl Fusion {
    /// The values the group's step reads: its first node's inputs and the residual.
    pub(crate) fn inputs(&self, graph: &Graph, start: NodeId) -> Vec<NodeId> {
        let mut inputs = graph.node(start).inputs.clone();
        inputs.extend(self.residual);
        inputs
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

/// Groups nodes into steps: `fusions[i]` is set for each node that starts a step. Without
/// `fuse_relu`, ReLU nodes stay steps of their own (the SNN plan replaces them by IF layers).
pub(crate) fn plan_fusions(graph: &Graph, fuse_relu: bool) -> Vec<Option<Fusion>> {
    let nodes = graph.nodes();
    let mut fusions: Vec<Option<Fusion>> = vec![None; nodes.len()];
    let mut absorbed = vec![false; nodes.len()];
    for (id, node) in nodes.iter().enumerate() {
        if absorbed[id] || matches!(node.op, Op::Input) {
            continue;
        }
        let mut fusion = Fusion { last: id, ..Default::default() };
        let next = |fusion: &Fusion| sole_consumer(graph, fusion.last).map(|c| (c, &nodes[c]));
        match node.op {
            // The epilogue order is bias -> scale/shift -> residual -> ReLU.
            Op::Conv2d(_) => {
                if let Some((c, Op::BatchNorm(_))) = next(&fusion).map(|(c, n)| (c, &n.op)) {
                    fusion.batch_norm = Some(c);
                    fusion.last = c;
                }
                if let Some((c, Op::Add)) = next(&fusion).map(|(c, n)| (c, &n.op)) {
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
            Op::BatchNorm(_) | Op::Add => {
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

/// Where each fused group runs: `step_at[position]` is the first node of the group whose
/// last node is `position` (a step runs there, once every value it reads exists).
pub(crate) fn step_positions(fusions: &[Option<Fusion>]) -> Vec<Option<NodeId>> {
    let mut step_at = vec![None; fusions.len()];
    for (start, fusion) in fusions.iter().enumerate() {
        if let Some(f) = fusion {
            step_at[f.last] = Some(start);
        }
    }
    step_at
}

/// A graph lowered into fused steps.
pub(crate) struct Lowering {
    pub(crate) fusions: Vec<Option<Fusion>>,
    /// `step_at[position]`: the first node of the group whose step runs at `position`.
    pub(crate) step_at: Vec<Option<NodeId>>,
    /// Position of the last step that reads each value (`None`: never read).
    pub(crate) last_read: Vec<Option<NodeId>>,
}

impl Lowering {
    /// Lowers `graph`; without `fuse_relu` ReLU nodes stay steps of their own (the SNN
    /// replaces them by IF layers).
    pub(crate) fn new(graph: &Graph, fuse_relu: bool) -> Self {
        let fusions = plan_fusions(graph, fuse_relu);
        let step_at = step_positions(&fusions);
        let mut last_read: Vec<Option<NodeId>> = vec![None; graph.nodes().len()];
        for (position, start) in step_at.iter().enumerate() {
            if let Some(start) = *start {
                let fusion = fusions[start].as_ref().expect("a step starts at a fused group");
                for input in fusion.inputs(graph, start) {
                    last_read[input] = Some(position);
                }
            }
        }
        Self { fusions, step_at, last_read }
    }

    /// Every step in order: `(position, start, fusion)`, the step producing the value of
    /// node `position` from the group that starts at `start`.
    pub(crate) fn steps(&self) -> impl Iterator<Item = (NodeId, NodeId, &Fusion)> + '_ {
        self.step_at.iter().enumerate().filter_map(|(position, start)| {
            start.map(|start| (position, start, self.fusions[start].as_ref().expect("a step starts at a fused group")))
        })
    }

    /// The values the step at `position` (starting at `start`) reads.
    pub(crate) fn inputs(&self, graph: &Graph, start: NodeId) -> Vec<NodeId> {
        self.fusions[start].as_ref().expect("a step starts at a fused group").inputs(graph, start)
    }

    /// The values dead once the step at `position` (starting at `start`) has run: the
    /// inputs it read last, and its own value when nothing reads it; sorted, each once.
    pub(crate) fn dead_after(&self, graph: &Graph, start: NodeId, position: NodeId) -> Vec<NodeId> {
        let mut dead: Vec<NodeId> =
            self.inputs(graph, start).into_iter().filter(|&id| self.last_read[id] == Some(position)).collect();
        if self.last_read[position].is_none() {
            dead.push(position);
        }
        dead.sort_unstable();
        dead.dedup();
        dead
    }
}
