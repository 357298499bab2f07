//! End to end through the `spikeconv` binary on the reference data: the ANN accuracy of the
//! three pretrained ResNets on the first 256 CIFAR-10 test images, and one-line errors
//! with a non-zero exit for bad input.
//!
//! Expected counts come from `../shared/data/README.md` (an independent float32 forward
//! pass); ±1 allows float summation order to flip a near-tie.

mod common;

use common::{assert_fails_with, path, spikeconv};

use std::path::{Path, PathBuf};

const TEST_BATCH: &str = "cifar10/test_batch.bin";

/// Runs `spikeconv ann --json` (plus `extra` flags) and returns the parsed report.
fn ann_json(model: &str, data: &str, limit: usize, extra: &[&str]) -> serde_json::Value {
    let limit = limit.to_string();
    let mut args = vec!["ann", "--model", model, "--data", data, "--limit", &limit, "--json"];
    args.extend_from_slice(extra);
    let output = spikeconv(&args);
    assert!(output.status.success(), "spikeconv ann failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("--json prints one JSON object")
}

fn assert_accuracy(file: &str, expected_correct: i64) {
    let Some(data) = common::data_dir() else { return };
    let report = ann_json(&path(&data, &format!("weights/{file}")), &path(&data, TEST_BATCH), 256, &[]);
    assert_eq!(report["images"], 256);
    let correct = report["correct"].as_i64().expect("correct is a number");
    assert!((correct - expected_correct).abs() <= 1, "{file}: {correct} correct, expected {expected_correct} ± 1");
    let accuracy = report["accuracy"].as_f64().expect("accuracy is a number");
    assert!((accuracy - correct as f64 / 256.0).abs() < 1e-12);
    assert!(report["adapter"].as_str().is_some_and(|a| !a.is_empty()));
    assert!(report["model"].as_str().is_some_and(|m| m.ends_with(file)));
}

#[test]
fn resnet20_first_256_images() {
    assert_accuracy("resnet20_cifar10_akamaster.safetensors", 233);
}

#[test]
fn resnet56_first_256_images() {
    assert_accuracy("resnet56_cifar10_akamaster.safetensors", 240);
}

#[test]
fn resnet110_first_256_images() {
    assert_accuracy("resnet110_cifar10_fhempcnn.safetensors", 243);
}

fn scratch(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write scratch file");
    (dir, path)
}

#[test]
fn bad_input_gives_one_line_errors() {
    let Some(data) = common::data_dir() else { return };
    let model = path(&data, "weights/resnet20_cifar10_akamaster.safetensors");
    let images = path(&data, TEST_BATCH);

    assert_fails_with(&["ann", "--model", "missing.safetensors", "--data", &images], &["missing.safetensors"]);
    assert_fails_with(&["ann", "--model", &model, "--data", &images, "--limit", "0"], &["--limit"]);
    assert_fails_with(&["ann", "--model", &model, "--data", &images, "--mean", "0.5,0.5"], &["--mean"]);

    let (_dir, corrupt) = scratch("corrupt.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all");
    let corrupt = corrupt.display().to_string();
    assert_fails_with(&["ann", "--model", &corrupt, "--data", &images], &["corrupt.safetensors"]);

    let truncated_bytes = std::fs::read(&model).expect("read model");
    let (_dir2, truncated) = scratch("truncated.safetensors", &truncated_bytes[..truncated_bytes.len() / 2]);
    let truncated = truncated.display().to_string();
    assert_fails_with(&["ann", "--model", &truncated, "--data", &images], &["truncated.safetensors"]);

    let (_dir3, partial) = scratch("partial.bin", &vec![0u8; 3073 * 2 + 100]);
    let partial = partial.display().to_string();
    assert_fails_with(&["ann", "--model", &model, "--data", &partial], &["partial.bin"]);

    let mut bad_label = vec![0u8; 3073];
    bad_label[0] = 10;
    let (_dir4, bad_label) = scratch("bad_label.bin", &bad_label);
    let bad_label = bad_label.display().to_string();
    assert_fails_with(
        &["ann", "--model", &model, "--data", &bad_label, "--dataset", "cifar10"],
        &["bad_label.bin", "10"],
    );

    assert_fails_with(
        &["ann", "--model", &model, "--data", &images, "--adapter", "no-such-adapter-xyz"],
        &["no-such-adapter-xyz"],
    );
}

/// A checkpoint "saved straight from PyTorch": the real ResNet-20 rewritten with a
/// `module.` prefix, F16 tensors, `num_batches_tracked` entries and no metadata.
fn pytorch_style_copy(source: &Path, dir: &Path) -> PathBuf {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes = std::fs::read(source).expect("read checkpoint");
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("parse checkpoint");
    let mut converted: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = Vec::new();
    for (name, view) in tensors.tensors() {
        assert_eq!(view.dtype(), Dtype::F32, "{name}");
        let halves: Vec<u8> = view
            .data()
            .chunks_exact(4)
            .flat_map(|b| half::f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_le_bytes())
            .collect();
        if let Some(prefix) = name.strip_suffix(".running_var") {
            converted.push((
                format!("module.{prefix}.num_batches_tracked"),
                vec![],
                Dtype::I64,
                7i64.to_le_bytes().to_vec(),
            ));
        }
        converted.push((format!("module.{name}"), view.shape().to_vec(), Dtype::F16, halves));
    }
    let views: Vec<(String, TensorView<'_>)> = converted
        .iter()
        .map(|(name, shape, dtype, data)| (name.clone(), TensorView::new(*dtype, shape.clone(), data).expect("view")))
        .collect();
    let path = dir.join("resnet20_pytorch_f16.safetensors");
    safetensors::serialize_to_file(views, None, &path).expect("write copy");
    path
}

#[test]
fn pytorch_style_f16_checkpoint_needs_and_accepts_mean_and_std() {
    let Some(data) = common::data_dir() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = pytorch_style_copy(&data.join("weights/resnet20_cifar10_akamaster.safetensors"), dir.path());
    let model = copy.display().to_string();
    let images = path(&data, TEST_BATCH);

    // No metadata and no flags: a clear error, never a silent default.
    assert_fails_with(
        &["ann", "--model", &model, "--data", &images, "--limit", "8"],
        &["resnet20_pytorch_f16", "--mean"],
    );

    // With the normalization the checkpoint was trained with (README: ImageNet statistics).
    let report = ann_json(&model, &images, 256, &["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"]);
    let correct = report["correct"].as_i64().expect("correct");
    // F16 rounding of the weights may flip a near-tie or two on top of summation order.
    assert!((correct - 233).abs() <= 2, "{correct} correct, expected 233 ± 2");

    // The preset naming the same statistics gives the same count.
    let preset = ann_json(&model, &images, 256, &["--normalize", "imagenet"]);
    assert_eq!(preset["correct"], report["correct"]);
}

/// Mesa's device-select layer prints `XDG_RUNTIME_DIR is invalid` whenever a Vulkan
/// instance is created outside a desktop session; the binary switches the layer off itself,
/// so a user's run (here `devices`, which opens every backend's instance) prints none of it.
#[test]
fn no_vulkan_driver_noise_without_a_desktop_session() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spikeconv"))
        .arg("devices")
        .env_remove("NODEVICE_SELECT")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("run the spikeconv binary");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "driver noise on stderr: {stderr}");
}
