//! Max pooling in the spiking network. An IF layer's output is spikes, and the max of a
//! window of spikes at one step is not the spiking form of the ANN's max of rates: taken
//! naively (an OR of the window's spikes) it passes every neuron's spikes and overshoots.
//! Two strategies, chosen at conversion and recorded in the converted network:
//!
//! - [`MaxPoolStrategy::Gated`]: the graph keeps its max pools, which the simulation runs
//!   as a gate (Rueckauer et al., 2017, "Conversion of continuous-valued deep networks to
//!   efficient event-driven networks for image classification", Front. Neurosci. 11:682):
//!   each window passes the current value of the input with the largest accumulated value
//!   so far, over spikes the neuron that has fired most. Its rate tends to the max of the
//!   rates; early steps may pass a neuron that is not the final maximum.
//! - [`MaxPoolStrategy::Avg`]: every max pool becomes an average pool of the same window,
//!   a linear map the simulation runs exactly. Right for a network fine-tuned with average
//!   pools (`python/train_cifar.py --maxpool avg`); for a max-pool network it changes the
//!   network converted (calibration then sees the average-pool network).

use crate::model::graph::{Graph, Node, Op};

/// How the max pools of a network are converted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaxPoolStrategy {
    /// A gate on each window's accumulated input (Rueckauer et al., 2017).
    #[default]
    Gated,
    /// The average pool of the same window instead.
    Avg,
}

impl MaxPoolStrategy {
    pub const ALL: [MaxPoolStrategy; 2] = [MaxPoolStrategy::Gated, MaxPoolStrategy::Avg];

    /// The name on the command line and in converted-SNN files.
    pub fn name(self) -> &'static str {
        match self {
            MaxPoolStrategy::Gated => "gated",
            MaxPoolStrategy::Avg => "avg",
        }
    }

    /// One line saying what the strategy does, for the command's output.
    pub fn describe(self, layers: usize) -> String {
        match self {
            MaxPoolStrategy::Gated => format!(
                "max pooling: {layers} layer(s) as a gated max (each window passes the input that has fired most \
                 so far; Rueckauer et al. 2017)"
            ),
            MaxPoolStrategy::Avg => {
                format!("max pooling: {layers} layer(s) replaced by average pooling of the same window")
            }
        }
    }
}

impl std::fmt::Display for MaxPoolStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A max-pool strategy name that is not one of [`MaxPoolStrategy::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown max-pool strategy {0:?}, expected gated or avg")]
pub struct UnknownMaxPoolStrategy(pub String);

impl std::str::FromStr for MaxPoolStrategy {
    type Err = UnknownMaxPoolStrategy;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| UnknownMaxPoolStrategy(name.to_string()))
    }
}

/// Number of max-pool nodes in `graph`.
pub fn max_pools(graph: &Graph) -> usize {
    graph.nodes().iter().filter(|node| matches!(node.op, Op::MaxPool2d(_))).count()
}

/// `graph` prepared for conversion with `strategy`, and the strategy that applies (`None`
/// when the graph has no max pool): with [`MaxPoolStrategy::Avg`] every max pool becomes
/// the average pool of its window (same node names, shapes and order).
pub fn apply(graph: &Graph, strategy: MaxPoolStrategy) -> (Graph, Option<MaxPoolStrategy>) {
    if max_pools(graph) == 0 {
        return (graph.clone(), None);
    }
    if strategy == MaxPoolStrategy::Gated {
        return (graph.clone(), Some(strategy));
    }
    let nodes = graph
        .nodes()
        .iter()
        .map(|node| match node.op {
            Op::MaxPool2d(pool) => Node { op: Op::AvgPool2d(pool), ..node.clone() },
            _ => node.clone(),
        })
        .collect();
    (Graph::from_parts(nodes, graph.output()), Some(strategy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::{Pool2d, Shape};

    #[test]
    fn avg_replaces_every_max_pool_and_gated_keeps_them() {
        let mut graph = Graph::new(Shape::new(2, 4, 4));
        let relu = graph.push("relu", Op::Relu, &[0]).unwrap();
        let pool = Pool2d { kernel: 2, stride: 2, padding: 0 };
        graph.push("pool", Op::MaxPool2d(pool), &[relu]).unwrap();
        let (avg, used) = apply(&graph, MaxPoolStrategy::Avg);
        assert_eq!(used, Some(MaxPoolStrategy::Avg));
        assert_eq!(avg.node(2).op, Op::AvgPool2d(pool));
        assert_eq!(avg.node(2).shape, Shape::new(2, 2, 2));
        assert_eq!(max_pools(&avg), 0);
        let (gated, used) = apply(&graph, MaxPoolStrategy::Gated);
        assert_eq!((gated, used), (graph.clone(), Some(MaxPoolStrategy::Gated)));
        let (plain, used) = apply(&avg, MaxPoolStrategy::Gated);
        assert_eq!((plain, used), (avg, None));
        assert_eq!("AVG".parse::<MaxPoolStrategy>(), Ok(MaxPoolStrategy::Avg));
        assert!("or".parse::<MaxPoolStrategy>().is_err());
    }
}
