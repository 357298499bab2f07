//! End to end through the `spikeconv` binary on the reference data: the ANN accuracy of the
//! three pretrained ResNets on the first 256 CIFAR-10 test images, and one-line errors
//! with a non-zero exit for bad input.
//!
//! Expected counts come from `../shared/data/README.md` (an independent float32 forward
//! pass); ±1 allows float summation order to flip a near-tie.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn spikeconv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spikeconv"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .output()
        .expect("run the spikeconv binary")
}

fn weights(data: &Path, file: &str) -> String {
    data.join("weights").join(file).display().to_string()
}

fn test_batch(data: &Path) -> String {
    data.join("cifar10/test_batch.bin").display().to_string()
}

/// Runs `spikeconv ann --json` and returns the parsed report.
fn ann_json(model: &str, data: &str, limit: usize) -> serde_json::Value {
    let limit = limit.to_string();
    let output = spikeconv(&["ann", "--model", model, "--data", data, "--limit", &limit, "--json"]);
    assert!(output.status.success(), "spikeconv ann failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("--json prints one JSON object")
}

fn assert_accuracy(file: &str, expected_correct: i64) {
    let Some(data) = common::data_dir() else { return };
    let report = ann_json(&weights(&data, file), &test_batch(&data), 256);
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

/// Asserts a failed run with a one-line error on stderr that mentions every `needle`.
fn assert_fails_with(args: &[&str], needles: &[&str]) {
    let output = spikeconv(args);
    assert!(!output.status.success(), "expected failure for {args:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = stderr.trim();
    assert!(!message.contains("panicked"), "panic instead of an error: {message}");
    for needle in needles {
        assert!(message.contains(needle), "error for {args:?} should mention `{needle}`: {message}");
    }
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
    let model = weights(&data, "resnet20_cifar10_akamaster.safetensors");
    let images = test_batch(&data);

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
    assert_fails_with(&["ann", "--model", &model, "--data", &bad_label, "--dataset", "cifar10"], &["bad_label.bin", "10"]);

    assert_fails_with(&["ann", "--model", &model, "--data", &images, "--adapter", "no-such-adapter-xyz"], &["no-such-adapter-xyz"]);
}
