//! The layer-major walk ([`crate::engine::walk`]) on the CPU backend: [`CpuSnn::walk`] runs
//! the network next to the ANN, and [`super::probe`] measures each layer it reaches.

use crate::convert::snn::SpikingNetwork;
use crate::engine::sizing::cpu_walk_images;
use crate::engine::walk::{network_setting, settings_of, AtLayer, LayerSetting, ProbeSource, ScanShape, Walker};
use crate::engine::{EngineError, LayerProbe};

use super::ops::IfParams;
use super::probe::{candidate_sums, error_sums, LayerInput};
use super::{CpuDevice, CpuError, CpuSnn};

impl ProbeSource for LayerInput<'_> {
    fn error_sums(&self, scan: &ScanShape, thresholds: &[f32], bias_current: &[f32]) -> Result<Vec<f64>, EngineError> {
        Ok(error_sums(self, thresholds, scan.v_init, scan.neuron, bias_current))
    }

    fn candidate_sums(
        &self,
        scan: &ScanShape,
        candidates: &[f32],
        per_channel: usize,
        bias_current: &[f32],
    ) -> Result<Vec<f64>, EngineError> {
        Ok(candidate_sums(self, candidates, per_channel, scan.v_init, scan.neuron, bias_current))
    }
}

impl Walker for CpuDevice {
    /// A few values of every timestep (a node's inputs, its output, a residual) must fit
    /// the walk's share of memory ([`cpu_walk_images`]).
    fn max_images(&self, snn: &SpikingNetwork, timesteps: usize) -> usize {
        cpu_walk_images(4 * snn.graph.largest_value() * timesteps.max(1))
    }

    fn walk_layers(
        &self,
        snn: &SpikingNetwork,
        images: &[f32],
        count: usize,
        timesteps: usize,
        at_layer: &mut AtLayer<'_>,
    ) -> Result<Vec<LayerSetting>, EngineError> {
        let engine = CpuSnn::new(snn).map_err(EngineError::backend)?;
        // The hook's own error, kept to return as it was, and every layer's setting.
        let mut failure: Option<EngineError> = None;
        let mut chosen: Vec<Option<LayerSetting>> = vec![None; snn.layers.len()];
        let result = engine.walk(images, count, timesteps, &mut |index, input| {
            let shape = input.shape;
            let setting = network_setting(snn, index);
            let scan = ScanShape {
                shape,
                images: count,
                timesteps,
                constant_current: input.constant,
                v_init: setting.v_init,
                neuron: snn.neuron,
            };
            let probe = LayerProbe::new(index, scan, setting.bias_current.clone(), &input);
            let setting = match at_layer(&probe) {
                Ok(chosen) => chosen.unwrap_or(setting),
                Err(error) => {
                    let message = error.to_string();
                    failure = Some(error);
                    return Err(CpuError::InvalidInput(message));
                }
            };
            let params = IfParams {
                thresholds: setting.thresholds.per_channel(shape.channels),
                bias_current: setting.bias_current.clone(),
                v_init: setting.v_init,
                neuron: snn.neuron,
            };
            chosen[index] = Some(setting);
            Ok(params)
        });
        if let Some(error) = failure {
            return Err(error);
        }
        result.map_err(EngineError::backend)?;
        settings_of(chosen, snn)
    }
}
