//! End to end through `spikeconv analyze`, `sweep --threshold ttrbr` and `convert` with a
//! tuned method, on ResNet-20 and the reference data (sizes kept small for CI).

mod common;

use common::{assert_fails_with, json_lines, spikeconv, ReferencePaths};

#[test]
fn resnet20_analyze_reports_every_layer_and_the_first_has_no_deviation() {
    let Some(ReferencePaths { resnet20: model, calib, .. }) = common::reference_paths() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("analyze.csv");
    let plot = dir.path().join("analyze.svg");
    let output = spikeconv(&[
        "analyze",
        "--model",
        &model,
        "--calib",
        &calib,
        "--calib-images",
        "128",
        "--threshold",
        "percentile:99.9,ttrbr",
        "--timesteps",
        "8",
        "--images",
        "8",
        "--tune-images",
        "8",
        "--json",
        "--csv",
        csv.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 2, "one object per method");
    assert_eq!(lines[1]["threshold_method"], "ttrbr");
    assert_eq!(lines[1]["tuned_for_timesteps"], 8);
    for line in &lines {
        assert_eq!(line["images"], 8);
        assert_eq!(line["first_image"], 8, "analysed images follow the tuning images");
        let layers = line["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 19, "ResNet-20 has 19 IF layers");
        // The first IF layer's current is the (constant) direct input: no deviation error.
        assert_eq!(layers[0]["deviation"], 0.0);
        assert_eq!(layers[0]["input_variance"], 0.0);
        // Every later layer's input varies over time and deviates.
        assert!(layers[1..].iter().all(|l| l["input_variance"].as_f64().unwrap() > 0.0));
        assert!(layers[1..].iter().all(|l| l["deviation"].as_f64().unwrap() > 0.0));
        for layer in layers {
            let rate = layer["firing_rate"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&rate) && layer["quantization"].as_f64().unwrap() >= 0.0);
        }
    }
    let csv = std::fs::read_to_string(csv).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 19);
    assert!(std::fs::read_to_string(plot).unwrap().contains("deviation, ttrbr"));
}

#[test]
fn resnet20_ttrbr_sweep_and_tuned_file_round_trip() {
    let Some(ReferencePaths { resnet20: model, calib, test }) = common::reference_paths() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("tuned.safetensors").display().to_string();
    let common_args = ["--calib", &calib, "--calib-images", "128", "--tune-images", "16"];

    // One run tunes for two T (the method × T comparison); both curves run 8 steps.
    let csv = dir.path().join("sweep.csv");
    let tuning = dir.path().join("tuning.csv");
    let mut args = vec!["sweep", "--model", &model, "--threshold", "channel-ttrbr", "--tune-timesteps", "4,8"];
    args.extend(common_args);
    args.extend(["--data", &test, "--limit", "16", "--timesteps", "8", "--json", "--csv", csv.to_str().unwrap()]);
    args.extend(["--tuning-csv", tuning.to_str().unwrap()]);
    let curves = json_lines(&spikeconv(&args));
    assert_eq!(curves.len(), 2);
    assert_eq!(curves[0]["tuned_for_timesteps"], 4);
    assert_eq!(curves[1]["tuned_for_timesteps"], 8);
    assert_ne!(curves[0]["firing_rate"], curves[1]["firing_rate"], "thresholds depend on T");
    let header = std::fs::read_to_string(&csv).unwrap().lines().next().unwrap().to_string();
    assert_eq!(
        header,
        "t,channel-ttrbr (T=4),channel-ttrbr (T=8),ann,energy_uj:channel-ttrbr (T=4),energy_uj:channel-ttrbr (T=8),ann_energy_uj"
    );
    let sweep = &curves[1..];
    assert_eq!(sweep[0]["threshold_method"], "channel-ttrbr");

    // The tuning record: a row per T and IF layer (19 in ResNet-20), every layer's objective
    // no worse than its start's, every threshold positive and finite.
    let tuning = std::fs::read_to_string(&tuning).expect("--tuning-csv written");
    let rows: Vec<Vec<&str>> = tuning.lines().skip(1).map(|line| line.split(',').collect()).collect();
    assert_eq!(rows.len(), 2 * 19, "{tuning}");
    assert_eq!((rows[0][1], rows[0][2], rows[0][3]), ("4", "1", "relu"));
    assert_eq!((rows[19][1], rows[37][3]), ("8", "layer3.2.relu2"));
    for row in &rows {
        let number = |i: usize| row[i].parse::<f64>().unwrap_or_else(|_| panic!("column {i} of {row:?}"));
        assert!([5, 6, 7, 8].iter().all(|&i| number(i) > 0.0 && number(i).is_finite()), "{row:?}");
        assert_eq!((number(9), number(10)), (0.5, 0.5), "v_init is not tuned without --tune-v-init: {row:?}");
        assert!(number(12) <= number(11), "objective above its start: {row:?}");
    }

    let mut args = vec!["convert", "--model", &model, "--threshold", "channel-ttrbr", "--tune-timesteps", "8"];
    args.extend(common_args);
    args.extend(["-o", &file]);
    let output = spikeconv(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("tuned for T = 8"));

    // The file holds the same tuned network: simulating it gives the same counts.
    let from_file = json_lines(&spikeconv(&[
        "sweep",
        "--snn",
        &file,
        "--data",
        &test,
        "--limit",
        "16",
        "--timesteps",
        "8",
        "--json",
    ]));
    assert_eq!(from_file[0]["tuned_for_timesteps"], 8);
    assert_eq!(from_file[0]["correct"], sweep[0]["correct"], "tuning is deterministic");
}

#[test]
fn resnet20_tuned_v_init_is_stored_and_simulated_from_the_file() {
    let Some(ReferencePaths { resnet20: model, calib, test }) = common::reference_paths() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("tuned.safetensors").display().to_string();
    let tuning = dir.path().join("tuning.csv").display().to_string();
    let tune =
        ["--threshold", "ttrbr", "--tune-v-init", "--calib", &calib, "--calib-images", "64", "--tune-images", "8"];
    let mut args = vec!["convert", "--model", &model, "--tune-timesteps", "4", "--tuning-csv", &tuning, "-o", &file];
    args.extend(tune);
    let output = spikeconv(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // Every layer records a v_init from the candidates, and some layer left 0.5.
    let tuning = std::fs::read_to_string(&tuning).expect("--tuning-csv written");
    let rows: Vec<Vec<&str>> = tuning.lines().skip(1).map(|line| line.split(',').collect()).collect();
    assert_eq!(rows.len(), 19, "{tuning}");
    let v_init: Vec<f32> = rows.iter().map(|row| row[10].parse().unwrap()).collect();
    assert!(v_init.iter().all(|v| ::spikeconv::convert::ttrbr::V_INIT_CANDIDATES.contains(v)), "{v_init:?}");
    assert!(v_init.iter().any(|&v| v != 0.5), "some layer tunes its v_init (test strength): {v_init:?}");
    assert!(rows.iter().all(|row| row[0] == "ttrbr+v_init"), "{tuning}");

    // The file carries them: simulated from it, the network counts what the sweep that
    // tuned it counts (tuning is deterministic).
    let limit = ["--data", &test, "--limit", "8", "--timesteps", "4", "--json"];
    let mut args = vec!["sweep", "--model", &model, "--tune-timesteps", "4"];
    args.extend(tune);
    args.extend(limit);
    let tuned = json_lines(&spikeconv(&args));
    let mut args = vec!["sweep", "--snn", &file];
    args.extend(limit);
    let from_file = json_lines(&spikeconv(&args));
    assert_eq!(from_file[0]["threshold_method"], "ttrbr+v_init");
    assert_eq!(from_file[0]["correct"], tuned[0]["correct"]);
    assert_eq!(from_file[0]["firing_rate"], tuned[0]["firing_rate"]);
}

#[test]
fn resnet20_bias_correction_is_stored_and_simulated_from_the_file() {
    let Some(ReferencePaths { resnet20: model, calib, test }) = common::reference_paths() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("corrected.safetensors").display().to_string();
    let tuning = dir.path().join("tuning.csv").display().to_string();
    let correct = [
        "--threshold",
        "channel-percentile:99.9",
        "--bias-correction",
        "--calib",
        &calib,
        "--calib-images",
        "64",
        "--tune-images",
        "8",
        "--tune-timesteps",
        "4",
    ];
    let mut args = vec!["convert", "--model", &model, "--tuning-csv", &tuning, "-o", &file];
    args.extend(correct);
    let output = spikeconv(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // Every layer's mean error shrinks or stays; the thresholds stay the baseline's.
    let tuning = std::fs::read_to_string(&tuning).expect("--tuning-csv written");
    let rows: Vec<Vec<&str>> = tuning.lines().skip(1).map(|line| line.split(',').collect()).collect();
    assert_eq!(rows.len(), 19, "{tuning}");
    let number = |row: &[&str], column: usize| row[column].parse::<f64>().unwrap();
    for row in &rows {
        assert_eq!(row[0], "channel-percentile:99.9+bias", "{row:?}");
        assert_eq!(row[5], row[6], "thresholds unchanged: {row:?}");
        assert!(number(row, 15) <= number(row, 14), "mean error after <= before: {row:?}");
    }
    assert!(rows.iter().any(|row| number(row, 15) < 0.5 * number(row, 14)), "correction works (test strength)");

    // One round instead of the default three: named for it, and the first layer (same
    // thresholds, same input) keeps at least the mean error three rounds leave.
    let one_round = dir.path().join("one_round.csv").display().to_string();
    let one_round_file = dir.path().join("one_round.safetensors").display().to_string();
    let mut args =
        vec!["convert", "--model", &model, "--tuning-csv", &one_round, "--bias-rounds", "1", "-o", &one_round_file];
    args.extend(correct);
    let output = spikeconv(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let one_round = std::fs::read_to_string(&one_round).expect("--tuning-csv written");
    let first: Vec<&str> = one_round.lines().nth(1).expect("a row per layer").split(',').collect();
    assert_eq!(first[0], "channel-percentile:99.9+bias:1");
    assert!(number(&first, 15) >= number(&rows[0], 15), "{first:?} {:?}", rows[0]);

    // The sweep gives the plain and the corrected network; the file holds the corrected
    // one and simulates like it.
    let limit = ["--data", &test, "--limit", "8", "--timesteps", "4", "--json"];
    let mut args = vec!["sweep", "--model", &model];
    args.extend(correct);
    args.extend(limit);
    let swept = json_lines(&spikeconv(&args));
    let methods: Vec<&str> = swept[..2].iter().map(|run| run["threshold_method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["channel-percentile:99.9", "channel-percentile:99.9+bias"]);
    assert_eq!(swept[1]["tuned_for_timesteps"], 4);
    let mut args = vec!["sweep", "--snn", &file];
    args.extend(limit);
    let from_file = json_lines(&spikeconv(&args));
    assert_eq!(from_file[0]["threshold_method"], "channel-percentile:99.9+bias");
    assert_eq!(from_file[0]["correct"], swept[1]["correct"]);
    assert_eq!(from_file[0]["firing_rate"], swept[1]["firing_rate"]);
    assert_ne!(swept[0]["firing_rate"], swept[1]["firing_rate"], "the bias currents change the spikes");
}

#[test]
fn bad_tuning_input_gives_one_line_errors() {
    let Some(ReferencePaths { resnet20: model, calib, .. }) = common::reference_paths() else { return };
    let out = std::env::temp_dir().join("spikeconv-never-written.safetensors").display().to_string();
    let convert_with = |options: &[&'static str]| {
        let mut args = vec!["convert", "--model", &model, "--calib", &calib, "-o", &out];
        args.extend(options);
        args
    };
    assert_fails_with(&convert_with(&["--calib-images", "8", "--threshold", "ttrbr"]), &["--tune-timesteps"]);
    assert_fails_with(
        &["analyze", "--model", &model, "--calib", &calib, "--threshold", "ttrbr:0", "--timesteps", "8"],
        &["ttrbr:0", "(0, 100]"],
    );
    assert_fails_with(&["analyze", "--model", &model, "--calib", &calib, "--timesteps", "0"], &["timesteps"]);
    assert_fails_with(
        &convert_with(&["--threshold", "percentile:99.9", "--tune-v-init"]),
        &["--tune-v-init", "no tuned method"],
    );
    assert_fails_with(
        &convert_with(&["--threshold", "percentile:99.9", "--bias-correction"]),
        &["--bias-correction", "--tune-timesteps"],
    );
    assert_fails_with(
        &convert_with(&[
            "--tune-timesteps",
            "8",
            "--threshold",
            "percentile:99.9",
            "--bias-correction",
            "--refit-thresholds",
        ]),
        &["--refit-thresholds", "no tuned method"],
    );
    assert_fails_with(
        &convert_with(&["--tune-timesteps", "8", "--threshold", "ttrbr", "--refit-thresholds"]),
        &["--bias-correction"],
    );
    assert_fails_with(
        &convert_with(&["--tune-timesteps", "8", "--threshold", "ttrbr", "--bias-rounds", "2"]),
        &["--bias-correction"],
    );
    assert_fails_with(
        &convert_with(&["--tune-timesteps", "8", "--threshold", "ttrbr", "--bias-correction", "--bias-rounds", "0"]),
        &["--bias-rounds", "1..=64"],
    );
    assert_fails_with(
        &convert_with(&["--threshold", "ttrbr", "--tune-timesteps", "8,16"]),
        &["--tune-timesteps", "one T"],
    );
}

/// The restructured ResNet-20 of assets/ (fine-tuned on all 50 000 training images) keeps
/// the ANN accuracy recorded in its metadata and assets/README.md on the whole test set:
/// 9158 of 10 000, within two images for summation order (the standard network: 9173).
#[test]
fn restructured_resnet20_asset_keeps_its_accuracy_on_the_whole_test_set() {
    let Some(ReferencePaths { test, .. }) = common::reference_paths() else { return };
    let model = format!("{}/assets/resnet20_restructured.safetensors", env!("CARGO_MANIFEST_DIR"));
    let ann = json_lines(&spikeconv(&["ann", "--backend", "cpu", "--model", &model, "--data", &test, "--json"]));
    assert_eq!(ann[0]["images"], 10_000);
    let correct = ann[0]["correct"].as_i64().unwrap();
    assert!((correct - 9158).abs() <= 2, "restructured ResNet-20: {correct}/10000, recorded 9158");
    assert!(correct >= 9130, "the asset must stay at or above 91.3 % (issue 23): {correct}");
}

/// The restructured ResNet-110 of assets/, grown from the BSD-2-Clause ResNet-56 and
/// fine-tuned on all 50 000 training images (issue 32; assets/README.md): its ANN on the
/// whole test set, within two images of the 9279 recorded in its metadata (`test_correct`,
/// PyTorch) and in assets/README.md, the same in spikeconv. Issue 32 asks for 9330 (the
/// ResNet-56 it grew from has 9339): not reached yet, so the floor here is this file's.
#[test]
fn grown_resnet110_asset_keeps_its_accuracy_on_the_whole_test_set() {
    let Some(ReferencePaths { test, .. }) = common::reference_paths() else { return };
    let model = format!("{}/assets/resnet110_restructured.safetensors", env!("CARGO_MANIFEST_DIR"));
    let ann = json_lines(&spikeconv(&["ann", "--backend", "cpu", "--model", &model, "--data", &test, "--json"]));
    assert_eq!((&ann[0]["images"], &ann[0]["arch"]), (&10_000.into(), &"resnet110".into()));
    let correct = ann[0]["correct"].as_i64().unwrap();
    assert!((correct - 9279).abs() <= 2, "grown ResNet-110: {correct}/10000, recorded 9279");
}

#[test]
fn restructured_and_preact_resnet20_from_assets_load_run_and_convert() {
    let Some(ReferencePaths { calib, test, .. }) = common::reference_paths() else { return };
    // (file, block form, correct of the first 256 test images when recorded in assets/README.md)
    for (file, block, recorded) in
        [("resnet20_restructured.safetensors", "restructured", 235), ("resnet20_preact.safetensors", "preact", 234)]
    {
        let model = format!("{}/assets/{file}", env!("CARGO_MANIFEST_DIR"));
        let ann = json_lines(&spikeconv(&["ann", "--model", &model, "--data", &test, "--limit", "256", "--json"]));
        let correct = ann[0]["correct"].as_i64().unwrap();
        assert!((correct - recorded).abs() <= 1, "{block} ResNet-20: {correct}/256, recorded {recorded}");

        // 19 IF layers, as in the standard network; the block form reaches the report.
        let output = spikeconv(&[
            "analyze",
            "--model",
            &model,
            "--calib",
            &calib,
            "--calib-images",
            "64",
            "--timesteps",
            "8",
            "--images",
            "4",
            "--json",
        ]);
        let lines = json_lines(&output);
        assert_eq!(lines[0]["block"], block);
        let layers = lines[0]["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 19, "{block}");
    }
}

/// The quantization-aware networks of assets/ (QCFS, fine-tuned from the restructured ones)
/// keep their accuracy: the ANN with the trained activation (the `trained` sweep reports it)
/// within a few images of PyTorch's count (assets/README.md; BN folded, near-ties at the
/// floor's steps), and the same weights with plain ReLUs as recorded there. The ResNet-20s (L =
/// 4 and 8) on the whole test set; the ResNet-110 on the first 1000 images (PyTorch 881 quantized, 890
/// with ReLUs; on all 10 000: 8789 and spikeconv 8788, 8904), its 10 000 costing CI minutes.
#[test]
fn quantization_aware_assets_keep_their_accuracy() {
    let Some(ReferencePaths { test, calib, .. }) = common::reference_paths() else { return };
    // (file, test images, activation, PyTorch's quantized count, spikeconv's plain-ReLU count)
    for (file, images, activation, pytorch, relu) in [
        ("resnet20_restructured_qcfs4.safetensors", 10_000, "qcfs:4", 8769, 8933),
        ("resnet20_restructured_qcfs4_clipgrad.safetensors", 10_000, "qcfs:4", 9029, 8714),
        ("resnet20_restructured_qcfs8.safetensors", 10_000, "qcfs:8", 9038, 9110),
        ("resnet110_restructured_qcfs4.safetensors", 1000, "qcfs:4", 881, 890),
    ] {
        let model = format!("{}/assets/{file}", env!("CARGO_MANIFEST_DIR"));
        let lines = json_lines(&spikeconv(&[
            "sweep",
            "--backend",
            "cpu",
            "--model",
            &model,
            "--calib",
            &calib,
            "--calib-images",
            "16",
            "--threshold",
            "trained",
            "--data",
            &test,
            "--limit",
            &images.to_string(),
            "--timesteps",
            "1",
            "--json",
        ]));
        assert_eq!(lines[0]["images"], images);
        let quantized = lines[0]["quantized_ann"]["correct"].as_i64().unwrap();
        assert_eq!(lines[0]["quantized_ann"]["activation"], activation, "{file}");
        assert!((quantized - pytorch).abs() <= 5, "{file}: quantized ANN {quantized}/{images}, PyTorch {pytorch}");
        let plain = lines[0]["ann_correct"].as_i64().unwrap();
        assert!((plain - relu).abs() <= 2, "{file}: plain-ReLU ANN {plain}/{images}, recorded {relu}");
    }
}

/// Signed neurons on the quantization-aware ResNet-20 (`trained`: θ = λ, v_init = θ/2): the
/// choice reaches the JSON, the converted file and its simulation, and on real images it
/// removes most of the deviation error at T = L = 4 (in PyTorch on the first 1000 test
/// images: 60.8 % with plain IF neurons, 88.4 % with signed ones; quantized ANN 88.0 %).
#[test]
fn signed_neurons_convert_the_quantization_aware_resnet20_at_t_equal_l() {
    let Some(ReferencePaths { test, calib, .. }) = common::reference_paths() else { return };
    let model = format!("{}/assets/resnet20_restructured_qcfs4.safetensors", env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("signed.safetensors").display().to_string();
    let sweep = |neuron: &str| {
        let args = ["--backend", "cpu", "--model", &model, "--calib", &calib, "--calib-images", "16"];
        let mut sweep = vec!["sweep"];
        sweep.extend(args);
        sweep.extend(["--threshold", "trained", "--neuron", neuron, "--data", &test, "--limit", "200"]);
        sweep.extend(["--timesteps", "4", "--json"]);
        json_lines(&spikeconv(&sweep)).remove(0)
    };
    let (plain, signed) = (sweep("if"), sweep("signed"));
    assert_eq!((&plain["neuron"], &signed["neuron"]), (&"if".into(), &"signed".into()));
    let at_t4 = |line: &serde_json::Value| line["correct"][3].as_i64().unwrap();
    assert!(at_t4(&signed) >= at_t4(&plain) + 30, "T = 4: signed {} vs plain {} of 200", at_t4(&signed), at_t4(&plain));
    let quantized = signed["quantized_ann"]["correct"].as_i64().unwrap();
    assert!(at_t4(&signed) + 10 >= quantized, "signed {} within 10 of the quantized ANN {quantized}", at_t4(&signed));

    // The converted file records the neuron and simulates it.
    let converted = spikeconv(&[
        "convert",
        "--backend",
        "cpu",
        "--model",
        &model,
        "--calib",
        &calib,
        "--calib-images",
        "16",
        "--threshold",
        "trained",
        "--neuron",
        "signed",
        "-o",
        &file,
    ]);
    assert!(converted.status.success(), "{}", String::from_utf8_lossy(&converted.stderr));
    let again = json_lines(&spikeconv(&[
        "sweep",
        "--backend",
        "cpu",
        "--snn",
        &file,
        "--data",
        &test,
        "--limit",
        "200",
        "--timesteps",
        "4",
        "--json",
    ]))
    .remove(0);
    assert_eq!((&again["neuron"], &again["correct"]), (&signed["neuron"], &signed["correct"]));
    assert_fails_with(&["sweep", "--snn", &file, "--neuron", "if", "--data", &test], &["--neuron"]);
}
