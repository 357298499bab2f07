//! The result of simulating converted SNNs over many timesteps: accuracy after every
//! timestep per threshold method, next to the ANN, with per-layer activity.

use std::fmt::Write as _;

use serde::Serialize;

use crate::convert::energy::{EnergyModel, Operations};

use super::compare::{sweep_chart, SweepRun};
use super::plot::LineChart;
use super::{method_label, model_name, Report};

/// Activity of one IF layer during a run.
#[derive(Clone, Debug, Serialize)]
pub struct LayerActivity {
    /// Graph node name of the IF layer (the ReLU it replaced), e.g. `layer2.0.relu1`.
    pub layer: String,
    pub neurons: usize,
    /// Spikes per neuron per timestep, averaged over images.
    pub firing_rate: f64,
    /// Synaptic operations per image caused by this layer's spikes over all timesteps.
    pub synops_per_image: f64,
    /// The ANN's multiply-accumulates per image over the same connections (every neuron's
    /// value times its fan-out, once): what the layer's synaptic operations replace.
    pub macs_per_image: f64,
}

/// One simulated SNN: a threshold method's accuracy after each timestep.
#[derive(Clone, Debug, Serialize)]
pub struct SnnCurve {
    /// The method's name, e.g. `percentile:99.9`.
    pub threshold_method: String,
    /// Timesteps the thresholds were tuned for, where the method depends on it.
    pub tuned_for_timesteps: Option<usize>,
    /// Initial membrane potential as a fraction of the threshold: the network's (the layers
    /// of a `+v_init` method have their own; `--tuning-csv` lists them).
    pub v_init: f32,
    /// What the network's max pools became (`gated` or `avg`), if it had any.
    pub max_pooling: Option<String>,
    /// The IF layers' neuron (`if` or `signed`).
    pub neuron: String,
    /// Correct predictions after t = 1..=T timesteps (index t - 1).
    pub correct: Vec<usize>,
    /// Correct predictions of the network's constant-current twin read after T steps (the
    /// same network with quantization error only, `sweep --constant-currents`), if measured.
    pub constant_current_correct: Option<usize>,
    pub layers: Vec<LayerActivity>,
    /// Operations per image over all T steps, for the energy estimate (`None` where they
    /// are not known, e.g. merged from shard records of an older version).
    pub operations: Option<Operations>,
    /// Wall-clock seconds of this network's simulation (compilation excluded).
    pub seconds: f64,
}

impl SnnCurve {
    /// The method's name, with the timesteps its thresholds were tuned for if any, e.g.
    /// `channel-ttrbr (T=16)`: how tables, CSV headers and plots name the curve.
    pub fn label(&self) -> String {
        method_label(&self.threshold_method, self.tuned_for_timesteps)
    }

    /// Total synaptic operations per image over all timesteps.
    pub fn synops_per_image(&self) -> f64 {
        self.layers.iter().map(|l| l.synops_per_image).sum()
    }
}

/// A quantization-aware network's ANN with the activation it was trained with (see
/// [`crate::pipeline::quantized_ann_accuracy`]).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct QuantizedAnn {
    /// The activation, e.g. `qcfs:4`.
    pub activation: String,
    /// Correct predictions on the same images as the ANN.
    pub correct: usize,
}

/// Everything `spikeconv sweep` measured.
#[derive(Clone, Debug)]
pub struct SweepReport {
    pub model: String,
    pub data: String,
    /// `cpu` or `gpu`.
    pub backend: String,
    /// The device that ran the simulations.
    pub adapter: String,
    pub images: usize,
    pub timesteps: usize,
    /// Correct predictions of the ANN on the same images.
    pub ann_correct: usize,
    /// For a quantization-aware network, its ANN with the trained activation (the ANN of
    /// `ann_correct` has plain ReLUs).
    pub quantized_ann: Option<QuantizedAnn>,
    /// The ANN's operations per image (`None` where not known), for the energy estimate.
    pub ann_operations: Option<Operations>,
    /// The prices the energy estimates use.
    pub energy_model: EnergyModel,
    pub curves: Vec<SnnCurve>,
    /// Wall-clock seconds of the simulations.
    pub seconds: f64,
}

/// JSON form of one curve, self-contained (one object per threshold method).
#[derive(Serialize)]
struct CurveJson<'a> {
    model: &'a str,
    data: &'a str,
    backend: &'a str,
    adapter: &'a str,
    images: usize,
    timesteps: usize,
    ann_correct: usize,
    ann_accuracy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantized_ann: Option<&'a QuantizedAnn>,
    threshold_method: &'a str,
    tuned_for_timesteps: Option<usize>,
    v_init: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_pooling: Option<&'a str>,
    neuron: &'a str,
    correct: &'a [usize],
    accuracy: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    constant_current_correct: Option<usize>,
    /// Per layer, in topological order.
    firing_rate: Vec<f64>,
    synops_per_image: f64,
    layers: &'a [LayerActivity],
    #[serde(skip_serializing_if = "Option::is_none")]
    energy: Option<EnergyJson>,
    seconds: f64,
    image_timesteps_per_second: f64,
}

/// The energy estimate of one curve after T steps, per image (docs/METHOD.md, "Energy").
#[derive(Serialize)]
struct EnergyJson {
    e_mac_pj: f64,
    e_ac_pj: f64,
    snn_macs_per_image: f64,
    snn_acs_per_image: f64,
    snn_uj_per_image: f64,
    ann_macs_per_image: f64,
    ann_uj_per_image: f64,
    /// ANN energy over SNN energy.
    ann_over_snn: f64,
}

/// The SNN's and the ANN's estimated energy per image, in µJ, when both are known.
fn energy_pair(model: &EnergyModel, snn: Option<Operations>, ann: Option<Operations>) -> Option<(f64, f64)> {
    Some((model.microjoules(&snn?), model.microjoules(&ann?)))
}

impl SweepReport {
    fn accuracy(&self, correct: usize) -> f64 {
        correct as f64 / self.images.max(1) as f64
    }

    /// The timesteps shown in the text table: 1, 2, 4, 8, ... and T itself.
    pub fn table_timesteps(&self) -> Vec<usize> {
        let mut steps: Vec<usize> =
            std::iter::successors(Some(1usize), |t| t.checked_mul(2)).take_while(|&t| t <= self.timesteps).collect();
        if steps.last() != Some(&self.timesteps) {
            steps.push(self.timesteps);
        }
        steps
    }
}

impl Report for SweepReport {
    /// Accuracy (%) at t = 1, 2, 4, ..., T: one row per timestep, one column per method,
    /// with the ANN's accuracy on the same images in the header.
    fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} images, ANN accuracy {}/{} = {:.2} %, backend {}: {}",
            self.images,
            self.ann_correct,
            self.images,
            100.0 * self.accuracy(self.ann_correct),
            self.backend,
            self.adapter
        );
        if let Some(quantized) = &self.quantized_ann {
            let _ = writeln!(
                out,
                "ANN with its trained activation {}: {}/{} = {:.2} % (the ANN column has plain ReLUs)",
                quantized.activation,
                quantized.correct,
                self.images,
                100.0 * self.accuracy(quantized.correct)
            );
        }
        if let Some(strategy) = self.curves.iter().find_map(|curve| curve.max_pooling.as_deref()) {
            let meaning = match strategy {
                "avg" => "each replaced by the average pool of its window",
                _ => "gated on each input's spikes so far (Rueckauer et al. 2017)",
            };
            let _ = writeln!(out, "max pools in the SNN: {strategy} ({meaning})");
        }
        if self.curves.iter().any(|curve| curve.neuron == "signed") {
            let _ = writeln!(
                out,
                "neurons: signed (a spike fired too early is taken back by a -1 spike; Wang et al. 2022)"
            );
        }
        let headers: Vec<String> = self.curves.iter().map(SnnCurve::label).collect();
        let width = headers.iter().map(String::len).max().unwrap_or(0).max(9);
        let _ = write!(out, "{:>6}", "t");
        for header in &headers {
            let _ = write!(out, "  {header:>width$}");
        }
        let _ = writeln!(out, "  {:>8}", "ANN");
        for t in self.table_timesteps() {
            let _ = write!(out, "{t:>6}");
            for curve in &self.curves {
                let _ = write!(out, "  {:>width$.2}", 100.0 * self.accuracy(curve.correct[t - 1]));
            }
            let _ = writeln!(out, "  {:>8.2}", 100.0 * self.accuracy(self.ann_correct));
        }
        let energies: Vec<String> = (self.curves.iter())
            .filter_map(|c| {
                let (snn, ann) = energy_pair(&self.energy_model, c.operations, self.ann_operations)?;
                Some(if ann >= snn {
                    format!("{} {snn:.2} µJ ({:.2}× less)", c.label(), ann / snn)
                } else {
                    format!("{} {snn:.2} µJ ({:.2}× more)", c.label(), snn / ann)
                })
            })
            .collect();
        if let (false, Some(ann)) = (energies.is_empty(), self.ann_operations) {
            let _ = writeln!(
                out,
                "estimated energy per image at t = {} (E_MAC {} pJ, E_AC {} pJ; memory traffic not counted): ANN {:.2} µJ; {}",
                self.timesteps,
                self.energy_model.e_mac_pj,
                self.energy_model.e_ac_pj,
                self.energy_model.microjoules(&ann),
                energies.join(", ")
            );
        }
        let twins: Vec<String> = (self.curves.iter())
            .filter_map(|c| Some(format!("{} {:.2} %", c.label(), 100.0 * self.accuracy(c.constant_current_correct?))))
            .collect();
        if !twins.is_empty() {
            let _ = writeln!(
                out,
                "constant-current twins at t = {} (quantization error only): {}",
                self.timesteps,
                twins.join(", ")
            );
        }
        out
    }

    /// CSV with a row for every timestep: `t`, one accuracy column per method, `ann`; then
    /// the estimated energy per image in µJ of each method (`energy_uj:METHOD`) and of the
    /// ANN (`ann_energy_uj`), filled in the row of t = T, where it was measured.
    fn to_csv(&self) -> String {
        let mut out = String::from("t");
        for curve in &self.curves {
            let _ = write!(out, ",{}", csv_field(&curve.label()));
        }
        out.push_str(",ann");
        for curve in &self.curves {
            let _ = write!(out, ",{}", csv_field(&format!("energy_uj:{}", curve.label())));
        }
        out.push_str(",ann_energy_uj\n");
        let uj = |operations: Option<Operations>| {
            operations.map_or(String::new(), |o| format!("{:.6}", self.energy_model.microjoules(&o)))
        };
        for t in 1..=self.timesteps {
            let _ = write!(out, "{t}");
            for curve in &self.curves {
                let _ = write!(out, ",{:.6}", self.accuracy(curve.correct[t - 1]));
            }
            let _ = write!(out, ",{:.6}", self.accuracy(self.ann_correct));
            let last = t == self.timesteps;
            for curve in &self.curves {
                let _ = write!(out, ",{}", if last { uj(curve.operations) } else { String::new() });
            }
            let _ = writeln!(out, ",{}", if last { uj(self.ann_operations) } else { String::new() });
        }
        out
    }

    /// One JSON object per threshold method, one per line (a single method gives one object).
    fn to_json_lines(&self) -> Result<String, serde_json::Error> {
        let mut out = String::new();
        for curve in &self.curves {
            let json = CurveJson {
                model: &self.model,
                data: &self.data,
                backend: &self.backend,
                adapter: &self.adapter,
                images: self.images,
                timesteps: self.timesteps,
                ann_correct: self.ann_correct,
                ann_accuracy: self.accuracy(self.ann_correct),
                quantized_ann: self.quantized_ann.as_ref(),
                threshold_method: &curve.threshold_method,
                tuned_for_timesteps: curve.tuned_for_timesteps,
                v_init: curve.v_init,
                max_pooling: curve.max_pooling.as_deref(),
                neuron: &curve.neuron,
                correct: &curve.correct,
                accuracy: curve.correct.iter().map(|&c| self.accuracy(c)).collect(),
                constant_current_correct: curve.constant_current_correct,
                firing_rate: curve.layers.iter().map(|l| l.firing_rate).collect(),
                synops_per_image: curve.synops_per_image(),
                layers: &curve.layers,
                energy: energy_pair(&self.energy_model, curve.operations, self.ann_operations).map(|(snn, ann)| {
                    let (snn_ops, ann_ops) =
                        (curve.operations.unwrap_or_default(), self.ann_operations.unwrap_or_default());
                    EnergyJson {
                        e_mac_pj: self.energy_model.e_mac_pj,
                        e_ac_pj: self.energy_model.e_ac_pj,
                        snn_macs_per_image: snn_ops.macs,
                        snn_acs_per_image: snn_ops.acs,
                        snn_uj_per_image: snn,
                        ann_macs_per_image: ann_ops.macs,
                        ann_uj_per_image: ann,
                        ann_over_snn: ann / snn,
                    }
                }),
                seconds: curve.seconds,
                image_timesteps_per_second: (self.images * self.timesteps) as f64 / curve.seconds,
            };
            out.push_str(&serde_json::to_string(&json)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// Accuracy (%) against timestep, one series per method, the ANN as the reference line:
    /// [`sweep_chart`] of this report's curves, titled with the model's file name.
    fn chart(&self) -> LineChart {
        let runs: Vec<SweepRun> = self
            .curves
            .iter()
            .map(|curve| SweepRun {
                model: self.model.clone(),
                images: self.images,
                ann_correct: self.ann_correct,
                threshold_method: curve.threshold_method.clone(),
                tuned_for_timesteps: curve.tuned_for_timesteps,
                correct: curve.correct.clone(),
                energy: None,
            })
            .collect();
        sweep_chart(&runs, model_name(&self.model))
    }
}

/// Quotes a CSV field when it holds a separator or quote.
pub(crate) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> SweepReport {
        let curve = |name: &str, correct: Vec<usize>| SnnCurve {
            threshold_method: name.into(),
            tuned_for_timesteps: None,
            v_init: 0.5,
            max_pooling: None,
            neuron: "if".into(),
            correct,
            constant_current_correct: None,
            layers: vec![LayerActivity {
                layer: "relu".into(),
                neurons: 4,
                firing_rate: 0.25,
                synops_per_image: 10.0,
                macs_per_image: 16.0,
            }],
            operations: Some(Operations { macs: 100.0, acs: 10.0 }),
            seconds: 2.0,
        };
        SweepReport {
            model: "m".into(),
            data: "d".into(),
            backend: "gpu".into(),
            adapter: "a".into(),
            images: 4,
            timesteps: 5,
            ann_correct: 3,
            quantized_ann: None,
            ann_operations: Some(Operations { macs: 1000.0, acs: 0.0 }),
            energy_model: EnergyModel::new(2.0, 0.5).unwrap(),
            curves: vec![curve("max", vec![0, 1, 2, 3, 3]), curve("percentile:99.9", vec![1, 1, 2, 2, 4])],
            seconds: 1.0,
        }
    }

    #[test]
    fn energy_reaches_table_csv_and_json() {
        let r = report();
        // SNN: 2 pJ × 100 MACs + 0.5 pJ × 10 ACs = 205 pJ; ANN: 2 pJ × 1000 MACs = 2000 pJ.
        let table = r.to_table();
        assert!(table.contains("estimated energy per image at t = 5 (E_MAC 2 pJ, E_AC 0.5 pJ"), "{table}");
        assert!(table.contains("max 0.00 µJ (9.76× less)"), "{table}");
        let csv = r.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "t,max,percentile:99.9,ann,energy_uj:max,energy_uj:percentile:99.9,ann_energy_uj");
        assert!(lines[1].ends_with(",,,"), "energy only at t = T: {}", lines[1]);
        assert!(lines[5].ends_with(",0.000205,0.000205,0.002000"), "{}", lines[5]);
        let json: serde_json::Value = serde_json::from_str(r.to_json_lines().unwrap().lines().next().unwrap()).unwrap();
        let energy = &json["energy"];
        assert_eq!(energy["snn_macs_per_image"], 100.0);
        assert!((energy["ann_over_snn"].as_f64().unwrap() - 2000.0 / 205.0).abs() < 1e-9);
        assert_eq!(json["layers"][0]["macs_per_image"], 16.0);
        // Without the operations (e.g. merged from old shard records) there is no estimate.
        let mut old = report();
        old.ann_operations = None;
        assert!(!old.to_table().contains("estimated energy"));
        assert!(old.to_json_lines().unwrap().lines().all(|l| !l.contains("\"energy\"")));
    }

    #[test]
    fn table_shows_powers_of_two_and_last_step() {
        let r = report();
        assert_eq!(r.table_timesteps(), vec![1, 2, 4, 5]);
        let table = r.to_table();
        let last = table.lines().find(|l| l.trim_start().starts_with("5 ")).unwrap();
        assert_eq!(last.split_whitespace().collect::<Vec<_>>(), ["5", "75.00", "100.00", "75.00"]);
    }

    #[test]
    fn csv_has_every_timestep() {
        let csv = report().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("t,max,percentile:99.9,ann,"));
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[3], "3,0.500000,0.500000,0.750000,,,");
    }

    #[test]
    fn json_lines_are_self_contained() {
        let text = report().to_json_lines().unwrap();
        let objects: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1]["threshold_method"], "percentile:99.9");
        assert_eq!(objects[1]["correct"], serde_json::json!([1, 1, 2, 2, 4]));
        assert_eq!(objects[0]["accuracy"][4], 0.75);
        assert_eq!(objects[0]["ann_correct"], 3);
        assert_eq!(objects[0]["firing_rate"], serde_json::json!([0.25]));
        assert_eq!(objects[0]["image_timesteps_per_second"], 10.0);
    }
}
