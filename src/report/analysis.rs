//! The result of `spikeconv analyze`: per IF layer, by depth, the conversion errors of one
//! or more converted networks (threshold methods), as a table, CSV, JSON lines and a plot.

use std::fmt::Write as _;

use serde::Serialize;

use crate::tuning::analyze::LayerErrors;

use super::plot::{LineChart, Series};
use super::{method_label, model_name, Report};

/// One converted network's per-layer errors.
#[derive(Clone, Debug, Serialize)]
pub struct NetworkErrors {
    pub threshold_method: String,
    pub tuned_for_timesteps: Option<usize>,
    pub v_init: f32,
    /// Residual block form of the checkpoint (`standard`, `restructured` or `preact`).
    pub block: String,
    pub layers: Vec<LayerErrors>,
}

/// Everything `spikeconv analyze` measured.
#[derive(Clone, Debug)]
pub struct AnalysisReport {
    pub model: String,
    pub calib: String,
    /// `cpu` or `gpu`.
    pub backend: String,
    /// The device that ran the simulations.
    pub adapter: String,
    /// Index in the calibration file of the first analysed image.
    pub first_image: usize,
    pub images: usize,
    pub timesteps: usize,
    pub networks: Vec<NetworkErrors>,
}

#[derive(Serialize)]
struct NetworkJson<'a> {
    model: &'a str,
    calib: &'a str,
    backend: &'a str,
    adapter: &'a str,
    first_image: usize,
    images: usize,
    timesteps: usize,
    #[serde(flatten)]
    network: &'a NetworkErrors,
}

impl Report for AnalysisReport {
    /// One table per network: a row per IF layer with its mean errors.
    fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} calibration images from #{}, T = {}, backend {}: {}; errors in activation units (mean over neurons; \
             |ch mean|: mean over channels of |a channel's mean error|, what --bias-correction cancels)",
            self.model, self.images, self.first_image, self.timesteps, self.backend, self.adapter
        );
        for network in &self.networks {
            let _ = writeln!(
                out,
                "\n{} ({} blocks, v_init {})",
                method_label(&network.threshold_method, network.tuned_for_timesteps),
                network.block,
                network.v_init
            );
            let _ = writeln!(
                out,
                "{:>5}  {:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8}",
                "depth", "layer", "threshold", "|quant|", "|dev|", "|total|", "dev", "|ch mean|", "input var", "rate"
            );
            for row in &network.layers {
                let _ = writeln!(
                    out,
                    "{:>5}  {:<22} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>10.4} {:>8.4}",
                    row.depth,
                    row.layer,
                    row.threshold,
                    row.quantization,
                    row.deviation,
                    row.total,
                    row.mean_deviation,
                    row.channel_mean_error,
                    row.input_variance,
                    row.firing_rate
                );
            }
        }
        out
    }

    /// Long-format CSV: one row per (network, layer).
    fn to_csv(&self) -> String {
        let mut out = String::from(
            "threshold_method,tuned_for_timesteps,block,depth,layer,neurons,threshold,quantization,deviation,total,\
             squared,tracking,mean_deviation,mean_quantization,input_variance,firing_rate,mean_error,\
             channel_mean_error\n",
        );
        for network in &self.networks {
            for row in &network.layers {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6}",
                    network.threshold_method,
                    network.tuned_for_timesteps.map(|t| t.to_string()).unwrap_or_default(),
                    network.block,
                    row.depth,
                    row.layer,
                    row.neurons,
                    row.threshold,
                    row.quantization,
                    row.deviation,
                    row.total,
                    row.squared,
                    row.tracking,
                    row.mean_deviation,
                    row.mean_quantization,
                    row.input_variance,
                    row.firing_rate,
                    row.mean_error,
                    row.channel_mean_error
                );
            }
        }
        out
    }

    /// One JSON object per network, one per line.
    fn to_json_lines(&self) -> Result<String, serde_json::Error> {
        let mut out = String::new();
        for network in &self.networks {
            let json = NetworkJson {
                model: &self.model,
                calib: &self.calib,
                backend: &self.backend,
                adapter: &self.adapter,
                first_image: self.first_image,
                images: self.images,
                timesteps: self.timesteps,
                network,
            };
            out.push_str(&serde_json::to_string(&json)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// Mean |deviation error| and |quantization error| against layer depth, two series
    /// per network, titled with the model's file name.
    fn chart(&self) -> LineChart {
        let title = model_name(&self.model);
        let series = self
            .networks
            .iter()
            .flat_map(|network| {
                let label = method_label(&network.threshold_method, network.tuned_for_timesteps);
                let points = |value: fn(&LayerErrors) -> f64| {
                    network.layers.iter().map(|row| (row.depth as f64, value(row))).collect::<Vec<_>>()
                };
                [
                    Series { name: format!("deviation, {label}"), points: points(|r| r.deviation) },
                    Series { name: format!("quantization, {label}"), points: points(|r| r.quantization) },
                ]
            })
            .collect();
        LineChart {
            title: format!("{title}: conversion error per IF layer, T = {}, {} images", self.timesteps, self.images),
            x_label: "IF layer depth".into(),
            y_label: "mean |error| (activation units)".into(),
            series,
            reference: None,
            log_x: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(depth: usize, deviation: f64) -> LayerErrors {
        LayerErrors {
            layer: format!("relu{depth}"),
            depth,
            neurons: 16,
            threshold: 1.5,
            quantization: 0.1,
            deviation,
            total: 0.2,
            squared: 0.05,
            tracking: 0.02,
            mean_deviation: -deviation,
            mean_quantization: 0.01,
            mean_error: 0.02 - deviation,
            channel_mean_error: 0.05,
            input_variance: 0.3,
            firing_rate: 0.125,
        }
    }

    fn report() -> AnalysisReport {
        AnalysisReport {
            model: "m.safetensors".into(),
            calib: "c.bin".into(),
            backend: "cpu".into(),
            adapter: "test".into(),
            first_image: 128,
            images: 8,
            timesteps: 16,
            networks: vec![NetworkErrors {
                threshold_method: "ttrbr".into(),
                tuned_for_timesteps: Some(16),
                v_init: 0.5,
                block: "standard".into(),
                layers: vec![row(1, 0.0), row(2, 0.25)],
            }],
        }
    }

    #[test]
    fn csv_has_a_row_per_layer() {
        let csv = report().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].starts_with("ttrbr,16,standard,2,relu2,16,1.500000,0.100000,0.250000,"), "{}", lines[2]);
        assert!(lines[0].ends_with(",mean_error,channel_mean_error"), "{}", lines[0]);
        assert!(lines[2].ends_with(",-0.230000,0.050000"), "{}", lines[2]);
    }

    #[test]
    fn json_lines_are_self_contained() {
        let json = report().to_json_lines().unwrap();
        let value: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
        assert_eq!(value["timesteps"], 16);
        assert_eq!(value["backend"], "cpu");
        assert_eq!(value["threshold_method"], "ttrbr");
        assert_eq!(value["layers"][1]["deviation"], 0.25);
    }

    #[test]
    fn chart_has_two_series_per_network() {
        let chart = report().chart();
        assert!(chart.title.starts_with("m: "), "{}", chart.title);
        assert_eq!(chart.series.len(), 2);
        assert_eq!(chart.series[0].points, [(1.0, 0.0), (2.0, 0.25)]);
        assert!(report().to_table().contains("relu2"));
    }
}
