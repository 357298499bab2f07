//! `spikeconv plot` through the binary: runs saved with `--json` drawn together, and bad
//! input answered with one-line errors. No GPU needed.

mod common;

use common::{assert_fails_with, spikeconv};

fn sweep_line(model: &str, method: &str) -> String {
    serde_json::json!({
        "model": model, "images": 4, "timesteps": 3, "ann_correct": 3,
        "threshold_method": method, "tuned_for_timesteps": 8, "correct": [0, 2, 3],
    })
    .to_string()
}

#[test]
fn sweeps_from_two_files_make_one_chart() {
    let dir = tempfile::tempdir().unwrap();
    let standard = dir.path().join("standard.jsonl");
    let restructured = dir.path().join("restructured.jsonl");
    std::fs::write(&standard, sweep_line("w/std.safetensors", "ttrbr") + "\n").unwrap();
    std::fs::write(&restructured, sweep_line("w/res.safetensors", "ttrbr") + "\n").unwrap();
    for name in ["chart.svg", "chart.png"] {
        let out = dir.path().join(name);
        let output = spikeconv(&[
            "plot",
            standard.to_str().unwrap(),
            restructured.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--title",
            "ResNet-20",
        ]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stderr).contains("4 curves"), "two runs and two ANN lines");
        assert!(std::fs::metadata(&out).unwrap().len() > 1000, "{name} is written");
    }
    let svg = std::fs::read_to_string(dir.path().join("chart.svg")).unwrap();
    assert!(svg.contains("std ttrbr (T=8)") && svg.contains("res ttrbr (T=8)"), "curves named by model");
}

#[test]
fn bad_plot_input_gives_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs.jsonl");
    std::fs::write(&runs, sweep_line("m.safetensors", "max") + "\nnot json\n").unwrap();
    let runs = runs.to_str().unwrap();
    let out = dir.path().join("out.svg");
    let out = out.to_str().unwrap();
    assert_fails_with(&["plot", runs, "--out", out], &[&format!("{runs}:2"), "not a line of `spikeconv sweep --json`"]);
    let good = dir.path().join("good.jsonl");
    std::fs::write(&good, sweep_line("m.safetensors", "max")).unwrap();
    let good = good.to_str().unwrap();
    assert_fails_with(&["plot", good, "--out", &format!("{out}.pdf")], &["must end in .svg or .png"]);
    assert_fails_with(&["plot", "--out", out], &["<RUNS.jsonl>"]);
    let missing = dir.path().join("missing.jsonl");
    assert_fails_with(&["plot", missing.to_str().unwrap(), "--out", out], &["missing.jsonl"]);
}
