//! Charts across runs: the JSON lines that `spikeconv sweep --json` and
//! `spikeconv analyze --json` print, read back and drawn together, so that networks from
//! different checkpoints (standard against restructured blocks) or different runs share
//! one plot.

use std::path::Path;

use serde::Deserialize;

use super::plot::{LineChart, Series};
use super::{method_label, model_name};

/// One line of `spikeconv sweep --json`: a converted network's accuracy after every step.
#[derive(Clone, Debug, Deserialize)]
pub struct SweepRun {
    pub model: String,
    pub images: usize,
    pub ann_correct: usize,
    pub threshold_method: String,
    #[serde(default)]
    pub tuned_for_timesteps: Option<usize>,
    /// Correct predictions after t = 1..=T.
    pub correct: Vec<usize>,
    /// The energy estimate after T steps (absent from sweeps written before it).
    #[serde(default)]
    pub energy: Option<SweepEnergy>,
}

/// The part of a sweep line's `energy` that [`energy_chart`] draws.
#[derive(Clone, Debug, Deserialize)]
pub struct SweepEnergy {
    pub snn_uj_per_image: f64,
    pub ann_uj_per_image: f64,
}

/// One line of `spikeconv analyze --json`: a converted network's errors per IF layer.
#[derive(Clone, Debug, Deserialize)]
pub struct AnalysisRun {
    pub model: String,
    pub images: usize,
    pub timesteps: usize,
    pub threshold_method: String,
    #[serde(default)]
    pub tuned_for_timesteps: Option<usize>,
    pub layers: Vec<LayerRow>,
}

/// The per-layer values of an [`AnalysisRun`] that can be drawn.
#[derive(Clone, Debug, Deserialize)]
pub struct LayerRow {
    pub depth: usize,
    /// Mean threshold over the layer's channels.
    pub threshold: f64,
    pub deviation: f64,
    pub quantization: f64,
    pub total: f64,
    pub input_variance: f64,
    pub firing_rate: f64,
    /// Absent from analyses written before spikeconv recorded it.
    #[serde(default)]
    pub channel_mean_error: Option<f64>,
}

/// What is drawn against depth for analysis runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerMetric {
    Deviation,
    Quantization,
    Total,
    /// Deviation divided by the layer's mean threshold: comparable across networks whose
    /// activations are on different scales.
    RelativeDeviation,
    /// Total error divided by the layer's mean threshold.
    RelativeTotal,
    InputVariance,
    FiringRate,
    /// Mean over channels of |a channel's mean error| (what `--bias-correction` cancels).
    ChannelMeanError,
}

impl LayerMetric {
    /// The value of `row`; `None` where the run does not record it.
    fn value(self, row: &LayerRow) -> Option<f64> {
        Some(match self {
            LayerMetric::Deviation => row.deviation,
            LayerMetric::Quantization => row.quantization,
            LayerMetric::Total => row.total,
            LayerMetric::RelativeDeviation => row.deviation / row.threshold,
            LayerMetric::RelativeTotal => row.total / row.threshold,
            LayerMetric::InputVariance => row.input_variance,
            LayerMetric::FiringRate => row.firing_rate,
            LayerMetric::ChannelMeanError => row.channel_mean_error?,
        })
    }

    /// The field of `analyze --json` the metric reads, for errors.
    fn field(self) -> &'static str {
        match self {
            LayerMetric::Deviation | LayerMetric::RelativeDeviation => "deviation",
            LayerMetric::Quantization => "quantization",
            LayerMetric::Total | LayerMetric::RelativeTotal => "total",
            LayerMetric::InputVariance => "input_variance",
            LayerMetric::FiringRate => "firing_rate",
            LayerMetric::ChannelMeanError => "channel_mean_error",
        }
    }

    fn axis_label(self) -> &'static str {
        match self {
            LayerMetric::Deviation => "mean |deviation error| (activation units)",
            LayerMetric::Quantization => "mean |quantization error| (activation units)",
            LayerMetric::Total => "mean |SNN - ANN| (activation units)",
            LayerMetric::RelativeDeviation => "mean |deviation error| / threshold",
            LayerMetric::RelativeTotal => "mean |SNN - ANN| / threshold",
            LayerMetric::InputVariance => "input current variance over time",
            LayerMetric::FiringRate => "spikes per neuron per step",
            LayerMetric::ChannelMeanError => "mean over channels of |channel mean error| (activation units)",
        }
    }
}

/// The runs found in a set of JSON-lines files: all of one kind.
#[derive(Clone, Debug)]
pub enum Runs {
    Sweeps(Vec<SweepRun>),
    Analyses(Vec<AnalysisRun>),
}

/// A JSON-lines file that is not what `sweep --json` or `analyze --json` writes.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}:{line}: not a line of `spikeconv sweep --json` or `analyze --json`: {message}")]
    Line { path: String, line: usize, message: String },
    #[error("{path}:{line}: {found} line after {expected} lines; draw sweeps and analyses separately")]
    Mixed { path: String, line: usize, found: &'static str, expected: &'static str },
    #[error("no runs in {0}")]
    Empty(String),
    #[error(
        "run `{run}` has no `{field}` in its layers (written by an older spikeconv); run `spikeconv analyze` again"
    )]
    Missing { run: String, field: &'static str },
    #[error("run `{0}` has no energy estimate (written by an older spikeconv); run `spikeconv sweep` again")]
    NoEnergy(String),
    #[error("--metric {0} is drawn from sweep runs (sweep --json), not analyses")]
    SweepMetric(&'static str),
}

enum Run {
    Sweep(SweepRun),
    Analysis(AnalysisRun),
}

impl Run {
    fn kind(&self) -> &'static str {
        match self {
            Run::Sweep(_) => "sweep",
            Run::Analysis(_) => "analysis",
        }
    }
}

/// Parses one JSON line: an analysis line has `layers` with errors, a sweep line `correct`.
fn parse_line(text: &str) -> Result<Run, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let kind = if value.get("correct").is_some() { "sweep" } else { "analysis" };
    let run = if kind == "sweep" {
        let run: Result<SweepRun, _> = serde_json::from_value(value);
        if let Ok(sweep) = &run {
            if sweep.images == 0 {
                return Err("a sweep of 0 images has no accuracy".into());
            }
            if sweep.ann_correct > sweep.images || sweep.correct.iter().any(|&c| c > sweep.images) {
                return Err(format!("counts above its {} images", sweep.images));
            }
        }
        run.map(Run::Sweep)
    } else {
        serde_json::from_value(value).map(Run::Analysis)
    };
    run.map_err(|e| format!("as a {kind} line: {e}"))
}

/// Reads the runs of every file (blank lines skipped). All runs must be of one kind.
pub fn read_runs(paths: &[&Path]) -> Result<Runs, CompareError> {
    let mut sweeps = Vec::new();
    let mut analyses = Vec::new();
    let mut first_kind: Option<&'static str> = None;
    for path in paths {
        let shown = path.display().to_string();
        let text = crate::io::read_text(path).map_err(|e| CompareError::Read {
            path: shown.clone(),
            message: e.to_string().strip_prefix(&format!("{shown}: ")).unwrap_or(&e.to_string()).to_string(),
        })?;
        for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let run = parse_line(line).map_err(|message| CompareError::Line {
                path: shown.clone(),
                line: index + 1,
                message,
            })?;
            let expected = *first_kind.get_or_insert(run.kind());
            if run.kind() != expected {
                return Err(CompareError::Mixed { path: shown, line: index + 1, found: run.kind(), expected });
            }
            match run {
                Run::Sweep(run) => sweeps.push(run),
                Run::Analysis(run) => analyses.push(run),
            }
        }
    }
    match first_kind {
        None => {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            Err(CompareError::Empty(names.join(", ")))
        }
        Some("sweep") => Ok(Runs::Sweeps(sweeps)),
        Some(_) => Ok(Runs::Analyses(analyses)),
    }
}

/// Series names: the method, prefixed by the model's file stem when the runs come from
/// more than one model.
fn labels<'a>(runs: impl Iterator<Item = (&'a str, String)> + Clone) -> Vec<String> {
    let first = runs.clone().next().map(|(model, _)| model);
    let one_model = runs.clone().all(|(model, _)| Some(model) == first);
    runs.map(|(model, method)| if one_model { method } else { format!("{} {method}", model_name(model)) }).collect()
}

/// Accuracy (%) against timestep, one series per run. The ANN is the reference line when
/// every run has the same model and images, else one flat `ANN` series per model.
pub fn sweep_chart(runs: &[SweepRun], title: &str) -> LineChart {
    let percent = |correct: usize, images: usize| 100.0 * correct as f64 / images.max(1) as f64;
    let names =
        labels(runs.iter().map(|r| (r.model.as_str(), method_label(&r.threshold_method, r.tuned_for_timesteps))));
    let mut series: Vec<Series> = runs
        .iter()
        .zip(names)
        .map(|(run, name)| Series {
            name,
            points: run.correct.iter().enumerate().map(|(t, &c)| ((t + 1) as f64, percent(c, run.images))).collect(),
        })
        .collect();
    let longest = runs.iter().map(|r| r.correct.len()).max().unwrap_or(1).max(1);
    let mut anns: Vec<(&str, usize, usize)> =
        runs.iter().map(|r| (r.model.as_str(), r.images, r.ann_correct)).collect();
    anns.sort();
    anns.dedup();
    let reference = match anns.as_slice() {
        [(_, images, correct)] => {
            let value = percent(*correct, *images);
            Some((format!("ANN {value:.2} %"), value))
        }
        _ => {
            for (model, images, correct) in &anns {
                let value = percent(*correct, *images);
                series.push(Series {
                    name: format!("ANN {} {value:.2} %", model_name(model)),
                    points: vec![(1.0, value), (longest as f64, value)],
                });
            }
            None
        }
    };
    let images = match runs.first().map(|r| r.images) {
        Some(first) if runs.iter().all(|r| r.images == first) => format!("{first} images"),
        _ => "images differ between runs".into(),
    };
    LineChart {
        title: format!("{title} ({images})"),
        x_label: "timestep".into(),
        y_label: "accuracy (%)".into(),
        series,
        reference,
        log_x: longest >= 16,
    }
}

/// Accuracy after T (%) against the estimated energy per image after T (µJ), one series per
/// model and method with a point for every run (sweeps to different T), in order of energy;
/// the ANN's accuracy is the reference line (its energy in the label) when every run has
/// the same model and images. An error names a run without an estimate.
pub fn energy_chart(runs: &[SweepRun], title: &str) -> Result<LineChart, CompareError> {
    let percent = |correct: usize, images: usize| 100.0 * correct as f64 / images.max(1) as f64;
    let mut series: Vec<Series> = Vec::new();
    let names = labels(runs.iter().map(|r| (r.model.as_str(), r.threshold_method.clone())));
    for (run, name) in runs.iter().zip(names) {
        let label = method_label(&run.threshold_method, run.tuned_for_timesteps);
        let energy = run.energy.as_ref().ok_or(CompareError::NoEnergy(label))?;
        let accuracy = percent(run.correct.last().copied().unwrap_or(0), run.images);
        match series.iter_mut().find(|s| s.name == name) {
            Some(existing) => existing.points.push((energy.snn_uj_per_image, accuracy)),
            None => series.push(Series { name, points: vec![(energy.snn_uj_per_image, accuracy)] }),
        }
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let mut anns: Vec<(&str, usize, usize)> =
        runs.iter().map(|r| (r.model.as_str(), r.images, r.ann_correct)).collect();
    anns.sort();
    anns.dedup();
    let reference = match (anns.as_slice(), runs.first().and_then(|r| r.energy.as_ref())) {
        ([(_, images, correct)], Some(energy)) => {
            let value = percent(*correct, *images);
            Some((format!("ANN {value:.2} % at {:.1} µJ", energy.ann_uj_per_image), value))
        }
        _ => None,
    };
    Ok(LineChart {
        title: format!("{title}: accuracy after T against energy"),
        x_label: "estimated energy per image (µJ)".into(),
        y_label: "accuracy after T (%)".into(),
        series,
        reference,
        log_x: false,
    })
}

/// `metric` against IF layer depth, one series per run; an error names a run that does
/// not record the metric.
pub fn analysis_chart(runs: &[AnalysisRun], metric: LayerMetric, title: &str) -> Result<LineChart, CompareError> {
    let names =
        labels(runs.iter().map(|r| (r.model.as_str(), method_label(&r.threshold_method, r.tuned_for_timesteps))));
    let series = runs
        .iter()
        .zip(names)
        .map(|(run, name)| {
            let points: Option<Vec<(f64, f64)>> =
                run.layers.iter().map(|row| Some((row.depth as f64, metric.value(row)?))).collect();
            match points {
                Some(points) => Ok(Series { name, points }),
                None => Err(CompareError::Missing { run: name, field: metric.field() }),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut steps: Vec<usize> = runs.iter().map(|r| r.timesteps).collect();
    steps.sort_unstable();
    steps.dedup();
    let steps: Vec<String> = steps.iter().map(usize::to_string).collect();
    Ok(LineChart {
        title: format!("{title} (T = {})", steps.join(", ")),
        x_label: "IF layer depth".into(),
        y_label: metric.axis_label().into(),
        series,
        reference: None,
        log_x: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep_line(model: &str, method: &str, correct: &[usize], ann: usize) -> String {
        serde_json::json!({
            "model": model, "data": "d.bin", "adapter": "a", "images": 10, "timesteps": correct.len(),
            "ann_correct": ann, "threshold_method": method, "tuned_for_timesteps": null, "v_init": 0.5,
            "correct": correct, "seconds": 1.0,
        })
        .to_string()
    }

    fn analysis_line(model: &str, method: &str, deviations: &[f64]) -> String {
        let layers: Vec<serde_json::Value> = deviations
            .iter()
            .enumerate()
            .map(|(i, d)| {
                serde_json::json!({
                    "layer": format!("relu{i}"), "depth": i + 1, "neurons": 4, "threshold": 2.0,
                    "quantization": 0.1, "deviation": d, "total": 0.2, "squared": 0.1, "tracking": 0.1,
                    "mean_deviation": d, "mean_quantization": 0.0, "input_variance": 2.0, "firing_rate": 0.1,
                    "mean_error": 0.1 + d, "channel_mean_error": d / 2.0,
                })
            })
            .collect();
        serde_json::json!({
            "model": model, "calib": "c.bin", "adapter": "a", "first_image": 0, "images": 4, "timesteps": 16,
            "threshold_method": method, "tuned_for_timesteps": 16, "v_init": 0.5, "block": "standard",
            "layers": layers,
        })
        .to_string()
    }

    fn write(dir: &tempfile::TempDir, name: &str, lines: &[String]) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    #[test]
    fn energy_chart_puts_each_method_s_runs_in_order_of_energy() {
        let with_energy = |method: &str, correct: &[usize], snn_uj: f64| {
            let mut line: serde_json::Value =
                serde_json::from_str(&sweep_line("w/std.safetensors", method, correct, 9)).unwrap();
            line["energy"] = serde_json::json!({"snn_uj_per_image": snn_uj, "ann_uj_per_image": 190.0});
            line.to_string()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "e.jsonl",
            &[
                with_energy("max", &[1, 2, 3, 8], 40.0),
                with_energy("ttrbr", &[5, 7], 12.0),
                with_energy("max", &[1, 6], 20.0),
            ],
        );
        let Runs::Sweeps(runs) = read_runs(&[&path]).unwrap() else { panic!("sweeps expected") };
        let chart = energy_chart(&runs, "ResNet-20").unwrap();
        let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["max", "ttrbr"]);
        // Accuracy after each run's T, against its energy, in order of energy.
        assert_eq!(chart.series[0].points, vec![(20.0, 60.0), (40.0, 80.0)]);
        assert_eq!(chart.reference, Some(("ANN 90.00 % at 190.0 µJ".into(), 90.0)));
        // A run without an estimate is named.
        let old = write(&dir, "old.jsonl", &[sweep_line("w/std.safetensors", "max", &[1], 9)]);
        let Runs::Sweeps(runs) = read_runs(&[&old]).unwrap() else { panic!("sweeps expected") };
        let error = energy_chart(&runs, "x").unwrap_err().to_string();
        assert!(error.contains("run `max` has no energy estimate"), "{error}");
    }

    #[test]
    fn sweeps_of_two_models_are_named_by_model_with_one_ann_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(&dir, "a.jsonl", &[sweep_line("w/std.safetensors", "max", &[1, 5], 9)]);
        let b = write(&dir, "b.jsonl", &["".into(), sweep_line("w/restr.safetensors", "max", &[2, 6], 8)]);
        let Runs::Sweeps(runs) = read_runs(&[&a, &b]).unwrap() else { panic!("sweeps expected") };
        let chart = sweep_chart(&runs, "ResNet-20");
        let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["std max", "restr max", "ANN restr 80.00 %", "ANN std 90.00 %"]);
        assert_eq!(chart.series[1].points, vec![(1.0, 20.0), (2.0, 60.0)]);
        assert_eq!(chart.reference, None);
        assert_eq!(chart.title, "ResNet-20 (10 images)");
    }

    #[test]
    fn sweeps_of_one_model_share_the_ann_reference() {
        let dir = tempfile::tempdir().unwrap();
        let a =
            write(&dir, "a.jsonl", &[sweep_line("m.st", "max", &[1], 9), sweep_line("m.st", "percentile:99", &[3], 9)]);
        let Runs::Sweeps(runs) = read_runs(&[&a]).unwrap() else { panic!("sweeps expected") };
        let chart = sweep_chart(&runs, "t");
        assert_eq!(chart.series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["max", "percentile:99"]);
        assert_eq!(chart.reference, Some(("ANN 90.00 %".into(), 90.0)));
    }

    #[test]
    fn analyses_draw_the_chosen_metric_by_depth() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(&dir, "a.jsonl", &[analysis_line("std.st", "percentile:99.9", &[0.0, 0.02, 0.05])]);
        let b = write(&dir, "b.jsonl", &[analysis_line("restr.st", "channel-ttrbr", &[0.0, 0.01])]);
        let Runs::Analyses(runs) = read_runs(&[&a, &b]).unwrap() else { panic!("analyses expected") };
        let chart = analysis_chart(&runs, LayerMetric::Deviation, "ResNet-110").unwrap();
        assert_eq!(chart.series[0].name, "std percentile:99.9 (T=16)");
        assert_eq!(chart.series[0].points, vec![(1.0, 0.0), (2.0, 0.02), (3.0, 0.05)]);
        assert_eq!(chart.series[1].name, "restr channel-ttrbr (T=16)");
        let variance = analysis_chart(&runs, LayerMetric::InputVariance, "x").unwrap();
        assert_eq!(variance.series[1].points, vec![(1.0, 2.0), (2.0, 2.0)]);
        let relative = analysis_chart(&runs, LayerMetric::RelativeDeviation, "x").unwrap();
        assert_eq!(relative.series[0].points, vec![(1.0, 0.0), (2.0, 0.01), (3.0, 0.025)]);
        assert_eq!(variance.title, "x (T = 16)");
        let bias = analysis_chart(&runs, LayerMetric::ChannelMeanError, "x").unwrap();
        assert_eq!(bias.series[0].points, vec![(1.0, 0.0), (2.0, 0.01), (3.0, 0.025)]);
    }

    #[test]
    fn an_older_analysis_without_channel_mean_errors_is_drawn_but_not_for_that_metric() {
        let dir = tempfile::tempdir().unwrap();
        let mut line: serde_json::Value = serde_json::from_str(&analysis_line("m.st", "max", &[0.1, 0.2])).unwrap();
        for layer in line["layers"].as_array_mut().unwrap() {
            layer.as_object_mut().unwrap().remove("channel_mean_error");
        }
        let old = write(&dir, "old.jsonl", &[line.to_string()]);
        let Runs::Analyses(runs) = read_runs(&[&old]).unwrap() else { panic!("analyses expected") };
        assert_eq!(analysis_chart(&runs, LayerMetric::Deviation, "x").unwrap().series[0].points.len(), 2);
        let err = analysis_chart(&runs, LayerMetric::ChannelMeanError, "x").unwrap_err().to_string();
        assert!(err.contains("run `max (T=16)` has no `channel_mean_error`"), "{err}");
    }

    #[test]
    fn bad_files_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let mixed = write(&dir, "mixed.jsonl", &[sweep_line("m", "max", &[1], 1), analysis_line("m", "max", &[0.1])]);
        let err = read_runs(&[&mixed]).unwrap_err().to_string();
        assert!(err.contains("mixed.jsonl:2") && err.contains(": analysis line after sweep lines"), "{err}");

        let garbage = write(&dir, "garbage.jsonl", &["{\"model\": 3}".into()]);
        let err = read_runs(&[&garbage]).unwrap_err().to_string();
        assert!(err.contains("garbage.jsonl:1") && err.contains("analysis line"), "{err}");

        let not_json = write(&dir, "text.jsonl", &["t,max".into()]);
        let err = read_runs(&[&not_json]).unwrap_err().to_string();
        assert!(err.contains("text.jsonl:1"), "{err}");

        let empty = write(&dir, "empty.jsonl", &[]);
        assert_eq!(read_runs(&[&empty]).unwrap_err().to_string(), format!("no runs in {}", empty.display()));

        let missing = dir.path().join("missing.jsonl");
        let err = read_runs(&[&missing]).unwrap_err().to_string();
        assert!(err.starts_with(&missing.display().to_string()), "{err}");
    }
}
