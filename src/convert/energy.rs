//! The energy estimate every SNN paper reports beside accuracy (docs/METHOD.md, "Energy"):
//! operations per image, priced per operation.
//!
//! - ANN: every multiply-accumulate (MAC) of its convolutions and linear layers, at E_MAC.
//! - SNN: the nodes computed once per image from the analog input (the first convolution
//!   under direct coding: static nodes) as MACs; every synaptic operation (a spike times
//!   its fan-out, [`crate::convert::snn::fan_out`]) and every bias-current addition (one
//!   per neuron per step, in layers that have one) as an accumulate (AC), at E_AC.
//!
//! The defaults are Horowitz's 45 nm figures for 32-bit floats (ISSCC 2014, "Computing's
//! energy problem"): 4.6 pJ per MAC, 0.9 pJ per add. Memory traffic is not counted.

use serde::{Deserialize, Serialize};

use super::snn::{static_nodes, SpikingNetwork};
use crate::model::graph::Graph;

/// Picojoules of a 32-bit float multiply-accumulate (45 nm, Horowitz 2014).
pub const E_MAC_PJ: f64 = 4.6;
/// Picojoules of a 32-bit float add (45 nm, Horowitz 2014).
pub const E_AC_PJ: f64 = 0.9;

/// The price of one operation of each kind, in picojoules.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyModel {
    pub e_mac_pj: f64,
    pub e_ac_pj: f64,
}

impl Default for EnergyModel {
    fn default() -> Self {
        Self { e_mac_pj: E_MAC_PJ, e_ac_pj: E_AC_PJ }
    }
}

impl EnergyModel {
    /// A model with both prices finite and non-negative.
    pub fn new(e_mac_pj: f64, e_ac_pj: f64) -> Result<Self, String> {
        for (name, value) in [("E_MAC", e_mac_pj), ("E_AC", e_ac_pj)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!("{name} = {value} pJ: an energy per operation is a finite number ≥ 0"));
            }
        }
        Ok(Self { e_mac_pj, e_ac_pj })
    }

    /// Microjoules of `operations`.
    pub fn microjoules(&self, operations: &Operations) -> f64 {
        (self.e_mac_pj * operations.macs + self.e_ac_pj * operations.acs) * 1e-6
    }
}

/// Operations per image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Operations {
    /// Multiply-accumulates.
    pub macs: f64,
    /// Accumulates (synaptic operations and bias-current additions).
    pub acs: f64,
}

impl Operations {
    /// These operations and `synops` synaptic operations more.
    pub fn with_synops(self, synops: f64) -> Self {
        Self { acs: self.acs + synops, ..self }
    }
}

/// The ANN's operations per image: all of its MACs.
pub fn ann_operations(graph: &Graph) -> Operations {
    Operations { macs: graph.macs_per_image() as f64, acs: 0.0 }
}

/// The SNN's operations per image over `timesteps` steps that do not depend on its spikes:
/// the MACs of the nodes computed once per image and one addition per neuron and step in
/// each channel with a bias current. [`Operations::with_synops`] adds the synaptic
/// operations its spikes caused.
pub fn snn_fixed_operations(snn: &SpikingNetwork, timesteps: usize) -> Operations {
    let graph = &snn.graph;
    let computed_once: u64 =
        static_nodes(graph).iter().enumerate().filter(|(_, &once)| once).map(|(id, _)| graph.node_macs(id)).sum();
    let bias_additions: f64 = (0..snn.layers.len())
        .map(|index| {
            let channels = snn.layer_bias_current(index).iter().filter(|&&b| b != 0.0).count();
            (channels * graph.node(snn.layers[index].node).shape.plane() * timesteps) as f64
        })
        .sum();
    Operations { macs: computed_once as f64, acs: bias_additions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::snn::convert;
    use crate::convert::threshold::Thresholds;
    use crate::model::graph::{Conv2d, Linear, Op, Shape};

    fn conv(out_channels: usize, in_channels: usize, stride: usize) -> Op {
        Op::Conv2d(Conv2d {
            out_channels,
            in_channels,
            kernel: 3,
            stride,
            padding: 1,
            weight: vec![0.1; out_channels * in_channels * 9],
            bias: None,
        })
    }

    /// conv1 (3→4, 8×8) → IF → conv2 (4→8, stride 2, 4×4) → IF → pool → fc (8→10).
    fn tiny() -> SpikingNetwork {
        let mut g = Graph::new(Shape::new(3, 8, 8));
        let c1 = g.push("conv1", conv(4, 3, 1), &[0]).unwrap();
        let r1 = g.push("relu1", Op::Relu, &[c1]).unwrap();
        let c2 = g.push("conv2", conv(8, 4, 2), &[r1]).unwrap();
        let r2 = g.push("relu2", Op::Relu, &[c2]).unwrap();
        let p = g.push("pool", Op::GlobalAvgPool, &[r2]).unwrap();
        let linear = Linear { in_features: 8, out_features: 10, weight: vec![0.0; 80], bias: vec![0.0; 10] };
        g.push("fc", Op::Linear(linear), &[p]).unwrap();
        convert(&g, vec![(r1, Thresholds::Layer(1.0)), (r2, Thresholds::Layer(1.0))], 0.5).unwrap()
    }

    #[test]
    fn operations_and_energy_by_hand() {
        let mut snn = tiny();
        // By hand: conv1 8·8·4 outputs × 3·9 taps = 6912 MACs (on the image: once per image);
        // conv2 4·4·8 × 4·9 = 4608; fc 8·10 = 80.
        assert_eq!(ann_operations(&snn.graph), Operations { macs: 11600.0, acs: 0.0 });
        assert_eq!(snn_fixed_operations(&snn, 5), Operations { macs: 6912.0, acs: 0.0 });
        // A bias current in 3 of relu2's 8 channels: 3 channels × 16 neurons × 5 steps.
        snn.layers[1].bias_current = Some(vec![0.1, 0.0, -0.2, 0.0, 0.0, 0.3, 0.0, 0.0]);
        let fixed = snn_fixed_operations(&snn, 5);
        assert_eq!(fixed, Operations { macs: 6912.0, acs: 240.0 });
        let ops = fixed.with_synops(1000.0);
        assert_eq!(ops.acs, 1240.0);
        let model = EnergyModel::default();
        assert!((model.microjoules(&ops) - (4.6 * 6912.0 + 0.9 * 1240.0) * 1e-6).abs() < 1e-12);
        assert!((model.microjoules(&ann_operations(&snn.graph)) - 4.6 * 11600.0 * 1e-6).abs() < 1e-12);
    }

    #[test]
    fn prices_must_be_finite_and_non_negative() {
        assert!(EnergyModel::new(4.6, 0.9).is_ok());
        assert!(EnergyModel::new(0.0, 0.0).is_ok());
        for (mac, ac) in [(-1.0, 0.9), (4.6, f64::NAN), (f64::INFINITY, 0.9)] {
            let error = EnergyModel::new(mac, ac).unwrap_err();
            assert!(error.contains("finite number ≥ 0"), "{error}");
        }
    }
}
