//! What threshold tuning did, layer by layer: the record `--tuning-csv` writes, so a reader
//! can see where in the network the tuned thresholds leave their percentile start and by
//! how much each layer's objective fell.

use std::fmt::Write;

use crate::tuning::tune::LayerTuning;

use super::sweep::csv_field;

/// The tuning records of every tuned network of one conversion.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TuningReport {
    pub runs: Vec<TuningRun>,
}

/// One tuned network: its method, the T it was tuned for and one record per IF layer.
#[derive(Clone, Debug, PartialEq)]
pub struct TuningRun {
    pub method: String,
    pub timesteps: usize,
    pub layers: Vec<LayerTuning>,
}

impl TuningReport {
    /// One CSV row per tuned network and IF layer, in topological order. `thresholds`
    /// counts the layer's thresholds (1 for a layer-wide one, else its channels);
    /// `start_threshold` and `tuned_threshold` are the layer's one threshold or, per
    /// channel, the mean over channels; `scale_min` and `scale_max` are the extreme
    /// per-channel ratios tuned / start (equal per layer); `start_v_init` and `v_init` the
    /// layer's initial membrane fraction before and after (they differ only where
    /// `--tune-v-init` chose another); `start_mean_error` and `mean_error` the mean over
    /// channels of `|mean of n θ / T − a|` before and after bias correction, and
    /// `bias_current` the mean over channels of `|bias current| / threshold` (they differ
    /// from start and 0 only with `--bias-correction`).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "method,tuned_for_timesteps,depth,layer,thresholds,start_threshold,tuned_threshold,\
             scale_min,scale_max,start_v_init,v_init,start_objective,objective,tracking_error,\
             start_mean_error,mean_error,bias_current\n",
        );
        for run in &self.runs {
            for (depth, layer) in run.layers.iter().enumerate() {
                let (start, tuned) = (layer.start.values(), layer.tuned.values());
                let thresholds = start.len().max(tuned.len());
                let ratios: Vec<f64> = (0..thresholds)
                    .map(|c| f64::from(layer.tuned.for_channel(c)) / f64::from(layer.start.for_channel(c)))
                    .collect();
                let scale_min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
                let scale_max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    csv_field(&run.method),
                    run.timesteps,
                    depth + 1,
                    csv_field(&layer.layer),
                    thresholds,
                    layer.start.mean(),
                    layer.tuned.mean(),
                    scale_min,
                    scale_max,
                    layer.start_v_init,
                    layer.v_init,
                    layer.start_objective,
                    layer.objective,
                    layer.tracking,
                    layer.start_mean_error,
                    layer.mean_error,
                    layer.bias_current,
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::threshold::Thresholds;

    #[test]
    fn csv_has_a_row_per_layer_with_its_scale() {
        let layer = |name: &str, start: Thresholds, tuned: Thresholds| LayerTuning {
            layer: name.into(),
            start,
            tuned,
            start_v_init: 0.5,
            v_init: 0.25,
            start_objective: 1.0,
            objective: 0.5,
            tracking: 0.25,
            start_mean_error: 0.125,
            mean_error: 0.0625,
            bias_current: 0.5,
        };
        let report = TuningReport {
            runs: vec![TuningRun {
                method: "channel-ttrbr".into(),
                timesteps: 8,
                layers: vec![
                    layer("relu", Thresholds::Layer(2.0), Thresholds::Layer(3.0)),
                    layer("layer1.0.relu1", Thresholds::Channel(vec![1.0, 2.0]), Thresholds::Channel(vec![0.5, 4.0])),
                ],
            }],
        };
        let csv = report.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("method,tuned_for_timesteps,depth,layer,thresholds,"));
        assert_eq!(lines[1], "channel-ttrbr,8,1,relu,1,2,3,1.5,1.5,0.5,0.25,1,0.5,0.25,0.125,0.0625,0.5");
        assert_eq!(lines[2], "channel-ttrbr,8,2,layer1.0.relu1,2,1.5,2.25,0.5,2,0.5,0.25,1,0.5,0.25,0.125,0.0625,0.5");
    }
}
