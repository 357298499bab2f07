//! `--backend` end to end: the CPU backend and the wgpu kernels (lavapipe here) agree on a
//! real converted ResNet-20 step by step, the ANN counts are exact on both, and bad choices
//! are one-line errors.

mod common;

use common::{assert_fails_with, json_lines, reference_paths, spikeconv};

/// Per-step correct counts of `sweep --snn FILE` on `backend`.
fn correct_per_step(snn: &str, test: &str, backend: &str, images: &str, timesteps: &str) -> Vec<i64> {
    let output = spikeconv(&[
        "sweep",
        "--snn",
        snn,
        "--data",
        test,
        "--limit",
        images,
        "--timesteps",
        timesteps,
        "--backend",
        backend,
        "--json",
    ]);
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1, "one network");
    assert_eq!(lines[0]["backend"], backend);
    lines[0]["correct"].as_array().expect("correct counts").iter().map(|c| c.as_i64().unwrap()).collect()
}

#[test]
fn cpu_and_wgpu_backends_agree_on_a_real_network() {
    let Some(paths) = reference_paths() else { return };
    if common::gpu().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let snn = dir.path().join("resnet20.safetensors").display().to_string();
    let output = spikeconv(&[
        "convert",
        "--backend",
        "cpu",
        "--model",
        &paths.resnet20,
        "--calib",
        &paths.calib,
        "--calib-images",
        "256",
        "--threshold",
        "channel-percentile:99.9",
        "-o",
        &snn,
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let cpu = correct_per_step(&snn, &paths.test, "cpu", "64", "16");
    let gpu = correct_per_step(&snn, &paths.test, "gpu", "64", "16");
    assert_eq!(cpu.len(), 16);
    for (t, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        // Summation order may flip a rare spike: at most one image per 64 here.
        assert!((c - g).abs() <= 1, "t = {}: CPU {c}, GPU {g}", t + 1);
    }
    assert!(cpu[15] > 32, "the converted network classifies (test strength): {cpu:?}");

    for backend in ["cpu", "gpu"] {
        let output = spikeconv(&[
            "ann",
            "--model",
            &paths.resnet20,
            "--data",
            &paths.test,
            "--limit",
            "256",
            "--backend",
            backend,
            "--json",
        ]);
        let report = &json_lines(&output)[0];
        assert_eq!(report["correct"], 233, "{backend}: the README's count for the first 256 images");
        assert_eq!(report["backend"], backend);
    }
}

#[test]
fn an_unknown_backend_is_a_one_line_error() {
    assert_fails_with(
        &["ann", "--backend", "tpu", "--model", "m.safetensors", "--data", "d.bin"],
        &["unknown backend `tpu`", "auto, cpu or gpu"],
    );
}

#[test]
fn backend_gpu_without_an_adapter_is_an_error() {
    let Some(paths) = reference_paths() else { return };
    // No adapter of a backend this platform lacks.
    let backend = if cfg!(target_os = "linux") { "dx12" } else { "gl" };
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spikeconv"))
        .args(["ann", "--backend", "gpu", "--model", &paths.resnet20, "--data", &paths.test, "--limit", "8"])
        .env("WGPU_BACKEND", backend)
        .env("NODEVICE_SELECT", "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("--backend gpu") && stderr.contains("no GPU adapter"), "{stderr}");
}

#[test]
fn a_batch_that_does_not_fit_is_an_error() {
    let Some(paths) = reference_paths() else { return };
    // 10 000 images × 4096 steps × ResNet-20's largest value (64 KiB) would be terabytes.
    assert_fails_with(
        &[
            "sweep",
            "--backend",
            "cpu",
            "--model",
            &paths.resnet20,
            "--calib",
            &paths.calib,
            "--calib-images",
            "16",
            "--data",
            &paths.test,
            "--timesteps",
            "4096",
            "--batch",
            "10000",
        ],
        &["--batch 10000", "GiB", "images fit"],
    );
}

#[test]
fn profile_on_the_cpu_backend_is_an_error_before_any_work() {
    let Some(paths) = reference_paths() else { return };
    for command in ["sweep", "bench"] {
        assert_fails_with(
            &[
                command,
                "--backend",
                "cpu",
                "--model",
                &paths.resnet20,
                "--calib",
                &paths.calib,
                "--data",
                &paths.test,
                "--timesteps",
                "4",
                "--profile",
            ],
            &["--profile", "timestamp", "cpu"],
        );
    }
}
