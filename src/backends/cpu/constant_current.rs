//! The constant-current twin of a converted network on the CPU kernels: every IF layer
//! outputs the mean value of the spikes it would give in T steps if fed its input current
//! unchanged every step (`reference::snn::constant_current_forward` is the oracle). Its
//! accuracy is the converted network's with quantization error only: set beside the SNN's,
//! it splits the conversion loss into quantization and deviation error (docs/METHOD.md).

use std::convert::Infallible;

use crate::convert::snn::{constant_current_spikes, SpikingNetwork};
use crate::engine::{ann_accuracy, AnnAccuracy, EvaluationSet};

use super::ann::{eval_node, forward_with};
use super::lower::CpuGraph;
use super::ops::{to_nhwc, IfParams};
use super::CpuError;

/// A converted network lowered for the CPU kernels, run as its constant-current twin.
pub struct ConstantCurrentTwin {
    graph: CpuGraph,
    /// Node id → its IF layer, if it has one.
    layers: Vec<Option<IfParams>>,
    timesteps: usize,
}

impl ConstantCurrentTwin {
    /// Validates `snn` and lowers its twin read after `timesteps` steps. Its convolutions
    /// round each product before adding it, as the SNN simulation's do.
    pub fn new(snn: &SpikingNetwork, timesteps: usize) -> Result<Self, CpuError> {
        snn.validate()?;
        if timesteps == 0 {
            return Err(CpuError::InvalidInput("a constant-current twin is read after at least one timestep".into()));
        }
        let graph = CpuGraph::new(&snn.graph).rounding_each_product();
        let mut layers: Vec<Option<IfParams>> = vec![None; graph.ops.len()];
        for (index, layer) in snn.layers.iter().enumerate() {
            let channels = graph.shapes[layer.node].channels;
            layers[layer.node] = Some(IfParams {
                thresholds: layer.thresholds.per_channel(channels),
                bias_current: snn.layer_bias_current(index),
                v_init: snn.layer_v_init(index),
                // Fed a constant current, a signed neuron fires as the plain one.
                neuron: snn.neuron,
            });
        }
        Ok(Self { graph, layers, timesteps })
    }

    /// The output (`samples × classes`) for `samples` NHWC inputs, and each IF layer's
    /// spikes summed over its neurons and the samples (in the network's layer order).
    pub fn forward(&self, input: Vec<f32>, samples: usize) -> (Vec<f32>, Vec<u64>) {
        let mut spike_totals = Vec::new();
        let output = forward_with(&self.graph, input, |position, args| match &self.layers[position] {
            Some(layer) => {
                let (value, spikes) = self.if_layer(layer, args[0]);
                spike_totals.push(spikes);
                value
            }
            None => eval_node(&self.graph, position, args, samples),
        });
        (output, spike_totals)
    }

    /// One IF layer over NHWC currents: each neuron's value `m θ / T` and the spikes `m`
    /// summed.
    fn if_layer(&self, layer: &IfParams, current: &[f32]) -> (Vec<f32>, u64) {
        let channels = layer.thresholds.len();
        let timesteps = self.timesteps as f32;
        let mut spikes = 0u64;
        let value = current
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let c = i % channels;
                let m = constant_current_spikes(
                    x + layer.bias_current[c],
                    layer.thresholds[c],
                    layer.v_init,
                    self.timesteps,
                );
                spikes += u64::from(m);
                m as f32 * layer.thresholds[c] / timesteps
            })
            .collect();
        (value, spikes)
    }

    /// Correct predictions over `set`, `batch` images at a time.
    pub fn evaluate(&self, set: EvaluationSet<'_>, batch: usize) -> AnnAccuracy {
        let classes = self.graph.shapes[self.graph.output].len();
        let logits = |images: &[f32], count: usize| -> Result<_, Infallible> {
            Ok(self.forward(to_nhwc(images, self.graph.shapes[0], count), count).0)
        };
        match ann_accuracy(set, batch, classes, logits, |_| {}) {
            Ok(accuracy) => accuracy,
            Err(never) => match never {},
        }
    }
}
