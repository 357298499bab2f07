//! End to end through `spikeconv sweep` and `spikeconv convert` on the reference data:
//! ResNet-20 converted with baseline threshold methods, a few dozen test images, T = 32.

mod common;

use common::{assert_fails_with, json_lines, spikeconv, ReferencePaths};

fn counts(value: &serde_json::Value) -> Vec<u64> {
    value.as_array().expect("array").iter().map(|v| v.as_u64().expect("count")).collect()
}

const IMAGES: &str = "32";
const TIMESTEPS: &str = "32";
const CALIB_IMAGES: &str = "256";

#[test]
fn resnet20_sweep_converts_simulates_and_round_trips_through_a_file() {
    let Some(ReferencePaths { resnet20: model, calib, test }) = common::reference_paths() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("sweep.csv").display().to_string();
    let plot = dir.path().join("sweep.svg").display().to_string();
    let predictions = dir.path().join("predictions.csv").display().to_string();

    let output = spikeconv(&[
        "sweep",
        "--model",
        &model,
        "--calib",
        &calib,
        "--calib-images",
        CALIB_IMAGES,
        "--threshold",
        "max,percentile:99.9",
        "--data",
        &test,
        "--limit",
        IMAGES,
        "--timesteps",
        TIMESTEPS,
        "--json",
        "--csv",
        &csv,
        "--plot",
        &plot,
        "--predictions",
        &predictions,
        "--constant-currents",
    ]);
    let runs = json_lines(&output);
    assert_eq!(runs.len(), 2, "one object per method");
    for run in &runs {
        assert_eq!(run["images"], 32);
        assert_eq!(run["timesteps"], 32);
        let correct = counts(&run["correct"]);
        assert_eq!(correct.len(), 32);
        assert!(correct.iter().all(|&c| c <= 32));
        assert_eq!(run["accuracy"].as_array().unwrap().len(), 32);
        let rates = run["firing_rate"].as_array().expect("firing_rate");
        // ResNet-20: stem + 2 IF layers per block × 9 blocks.
        assert_eq!(rates.len(), 19);
        assert!(rates.iter().all(|r| (0.0..=1.0).contains(&r.as_f64().unwrap())));
        assert!(run["synops_per_image"].as_f64().unwrap() > 0.0);
        let ann = run["ann_correct"].as_u64().unwrap();
        assert!(ann >= 28, "ResNet-20 ANN on 32 images: {ann}");
        // After 32 steps the converted network is far better than chance and improves on t = 1.
        assert!(correct[31] >= 16, "{}: {correct:?}", run["threshold_method"]);
        assert!(correct[31] > correct[0], "{}: {correct:?}", run["threshold_method"]);
        // Without deviation error, 32 levels per activation keep most of the ANN's accuracy.
        let twin = run["constant_current_correct"].as_u64().expect("constant_current_correct");
        assert!((20..=32).contains(&twin), "{}: twin {twin}/32", run["threshold_method"]);
        // Energy per image (docs/METHOD.md): the stem conv on the image as MACs (16·32·32
        // outputs × 3·9 taps), the spikes' synaptic operations as accumulates, at the
        // default prices.
        let energy = &run["energy"];
        let number = |key: &str| energy[key].as_f64().unwrap_or_else(|| panic!("energy.{key}: {energy}"));
        assert_eq!(number("snn_macs_per_image"), 442_368.0);
        assert!((number("snn_acs_per_image") - run["synops_per_image"].as_f64().unwrap()).abs() < 1e-6);
        let expected = (4.6 * number("snn_macs_per_image") + 0.9 * number("snn_acs_per_image")) * 1e-6;
        assert!((number("snn_uj_per_image") - expected).abs() < 1e-9);
        assert!((number("ann_uj_per_image") - 4.6e-6 * number("ann_macs_per_image")).abs() < 1e-9);
    }
    assert_eq!(runs[0]["threshold_method"], "max");
    assert_eq!(runs[1]["threshold_method"], "percentile:99.9");
    let csv_path = csv;
    let csv = std::fs::read_to_string(&csv_path).expect("csv written");
    assert_eq!(csv.lines().count(), 33);
    assert!(csv.starts_with("t,max,percentile:99.9,ann,energy_uj:max,energy_uj:percentile:99.9,ann_energy_uj\n"));
    assert!(std::fs::read_to_string(&plot).expect("plot written").contains("<svg"));

    // Per-image predictions agree with the totals: each network's column matches the label
    // as often as its last correct count says, the ANN's as often as ann_correct.
    let predictions_path = predictions;
    let predictions = std::fs::read_to_string(&predictions_path).expect("predictions written");
    let mut rows = predictions.lines();
    assert_eq!(rows.next(), Some("image,label,ann,max t=32,percentile:99.9 t=32"));
    let rows: Vec<Vec<u64>> = rows.map(|row| row.split(',').map(|v| v.parse().expect("a number")).collect()).collect();
    assert_eq!(rows.len(), 32);
    assert!(rows.iter().enumerate().all(|(i, row)| row.len() == 5 && row[0] == i as u64 && row[1] < 10));
    let matches = |column: usize| rows.iter().filter(|row| row[column] == row[1]).count() as u64;
    assert_eq!(matches(2), runs[0]["ann_correct"].as_u64().unwrap());
    assert_eq!(matches(3), counts(&runs[0]["correct"])[31]);
    assert_eq!(matches(4), counts(&runs[1]["correct"])[31]);
    // `spikeconv paired` reads the file back: the last pair is max against percentile:99.9.
    let output = spikeconv(&["paired", &predictions_path]);
    assert!(output.status.success(), "paired failed: {}", String::from_utf8_lossy(&output.stderr));
    let table = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(table.starts_with("32 images, predictions after t = 32"), "{table}");
    let last: Vec<&str> = table.lines().last().expect("a pair").split_whitespace().collect();
    let only = |a: usize, b: usize| rows.iter().filter(|row| row[a] == row[1] && row[b] != row[1]).count().to_string();
    assert_eq!(last[..2], ["max", "percentile:99.9"], "{table}");
    assert_eq!(last[2..6], [matches(3).to_string(), matches(4).to_string(), only(3, 4), only(4, 3)], "{table}");
    assert_fails_with(&["paired", &csv_path], &["sweep.csv", "image,label,ann"]);
    // Split into one file per network, the two files compare as the one did (JSON lines).
    let column_file = |keep: usize, name: &str| {
        let text: String = predictions
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                format!("{},{},{},{}\n", fields[0], fields[1], fields[2], fields[keep])
            })
            .collect();
        let path = dir.path().join(name).display().to_string();
        std::fs::write(&path, text).expect("write split predictions");
        path
    };
    let (max_only, p999_only) = (column_file(3, "max.csv"), column_file(4, "p999.csv"));
    let output = spikeconv(&["paired", "--json", &max_only, &p999_only]);
    assert!(output.status.success(), "paired failed: {}", String::from_utf8_lossy(&output.stderr));
    let pairs: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(pairs.len(), 3);
    assert_eq!((pairs[2]["a"].as_str(), pairs[2]["b"].as_str()), (Some("max"), Some("percentile:99.9")));
    assert_eq!(pairs[2]["only_a_right"].to_string(), only(3, 4));
    assert_eq!(pairs[2]["only_b_right"].to_string(), only(4, 3));
    assert_fails_with(&["paired", &max_only, &max_only], &["max.csv", "`max`"]);

    // convert → file → sweep --snn gives the same curve as converting in the sweep.
    let snn = dir.path().join("resnet20_p999.safetensors").display().to_string();
    let output = spikeconv(&[
        "convert",
        "--model",
        &model,
        "--calib",
        &calib,
        "--calib-images",
        CALIB_IMAGES,
        "--threshold",
        "percentile:99.9",
        "-o",
        &snn,
    ]);
    assert!(output.status.success(), "convert failed: {}", String::from_utf8_lossy(&output.stderr));
    let output =
        spikeconv(&["sweep", "--snn", &snn, "--data", &test, "--limit", IMAGES, "--timesteps", TIMESTEPS, "--json"]);
    let from_file = json_lines(&output);
    assert_eq!(from_file.len(), 1);
    assert_eq!(counts(&from_file[0]["correct"]), counts(&runs[1]["correct"]));
    assert_eq!(from_file[0]["ann_correct"], runs[1]["ann_correct"]);
    assert!(from_file[0].get("constant_current_correct").is_none(), "only with --constant-currents");
}

#[test]
fn bad_sweep_input_gives_one_line_errors() {
    let Some(ReferencePaths { resnet20: model, calib, test }) = common::reference_paths() else { return };
    let base = ["sweep", "--model", &model, "--calib", &calib, "--data", &test, "--limit", "4"];
    let with = |extra: &[&'static str]| -> Vec<String> {
        base.iter().map(|s| s.to_string()).chain(extra.iter().map(|s| s.to_string())).collect()
    };
    let run = |extra: &[&'static str], needles: &[&str]| {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_fails_with(&args, needles);
    };
    run(&["--timesteps", "0"], &["--timesteps"]);
    run(&["--timesteps", "4", "--threshold", "median"], &["median"]);
    run(&["--timesteps", "4", "--threshold", "percentile:0"], &["percentile:0"]);
    run(&["--timesteps", "4", "--threshold", "percentile:100.5"], &["100.5"]);
    run(&["--timesteps", "4", "--calib-images", "20001"], &["data_batch_1.bin", "20001"]);
    run(&["--timesteps", "4", "--v-init", "1.5"], &["--v-init"]);
    assert_fails_with(&["sweep", "--model", &model, "--data", &test, "--timesteps", "4"], &["--calib"]);

    let dir = tempfile::tempdir().expect("temp dir");
    let edited = dir.path().join("edited.safetensors");
    std::fs::write(&edited, b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ").expect("write");
    let edited = edited.display().to_string();
    assert_fails_with(&["sweep", "--snn", &edited, "--data", &test, "--timesteps", "4"], &["edited.safetensors"]);
}
