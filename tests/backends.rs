//! `--backend` end to end: the CPU backend and the wgpu kernels (lavapipe here) give the
//! same spikes on a real converted ResNet-20 step by step, the ANN counts are exact on
//! both, and bad choices are one-line errors.

mod common;

use common::{assert_fails_with, json_lines, reference_paths, spikeconv};

/// Per-step correct counts and per-layer firing rates of `sweep --snn FILE` on `backend`.
fn correct_per_step(snn: &str, test: &str, backend: &str, images: &str, timesteps: &str) -> (Vec<i64>, Vec<f64>) {
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
    let numbers = |key: &str| lines[0][key].as_array().expect(key).clone();
    (
        numbers("correct").iter().map(|c| c.as_i64().unwrap()).collect(),
        numbers("firing_rate").iter().map(|r| r.as_f64().unwrap()).collect(),
    )
}

#[test]
fn cpu_and_wgpu_backends_agree_on_a_real_network() {
    let Some(paths) = reference_paths() else { return };
    let Some(common::GpuBackend { ctx, .. }) = common::gpu() else { return };
    // lavapipe rounds each product before adding it, as the CPU backend's simulation does:
    // every spike is the same. A GPU may fuse the first conv's multiply-adds, which flips
    // a rare spike (ARCHITECTURE.md, "One arithmetic on every backend").
    let same_arithmetic = ctx.adapter_info.device_type == wgpu::DeviceType::Cpu;
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
    let (cpu, cpu_rates) = correct_per_step(&snn, &paths.test, "cpu", "64", "16");
    let (gpu, gpu_rates) = correct_per_step(&snn, &paths.test, "gpu", "64", "16");
    assert_eq!(cpu.len(), 16);
    if same_arithmetic {
        assert_eq!(cpu, gpu, "correct per step");
        assert_eq!(cpu_rates, gpu_rates, "firing rate of every layer");
    }
    for (t, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
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

#[test]
fn bench_reports_throughput_layers_and_the_fraction_of_a_given_peak() {
    let Some(paths) = reference_paths() else { return };
    let common = [
        "bench",
        "--backend",
        "cpu",
        "--model",
        &paths.resnet20,
        "--calib",
        &paths.calib,
        "--calib-images",
        "64",
        "--data",
        &paths.test,
        "--limit",
        "8",
        "--timesteps",
        "4",
        "--json",
    ];
    let mut args = common.to_vec();
    args.extend(["--peak-tflops", "2"]);
    let report = &json_lines(&spikeconv(&args))[0];
    assert_eq!(report["backend"], "cpu");
    // ResNet-20: 19 IF layers, 19 convolutions and the linear layer.
    assert_eq!(report["layers"], 39);
    assert_eq!(report["images"], 8);
    let rate = report["image_timesteps_per_second"].as_f64().unwrap();
    let gmac = report["gmac_per_second"].as_f64().unwrap();
    assert!(rate > 0.0 && gmac > 0.0, "{report}");
    // 40.8 M MAC per ResNet-20 image-timestep; two FLOPs each against 2 TFLOP/s.
    assert!((gmac / rate * 1e3 - 40.8).abs() < 0.5, "{report}");
    let fraction = report["fraction_of_peak"].as_f64().unwrap();
    assert!((fraction - 2.0 * gmac / 2000.0).abs() < 1e-12, "{report}");
    // The CPU backend says how its convolutions ran (19 per chunk); only the wgpu backend
    // counts dispatches.
    let chunks = 8u64.div_ceil(report["batch"].as_u64().unwrap());
    let convolutions = report["event_convolutions"].as_u64().unwrap() + report["dense_convolutions"].as_u64().unwrap();
    assert_eq!(convolutions, 19 * chunks, "{report}");
    assert!(report["dispatches_per_chunk"].is_null());
    let mut bad = common.to_vec();
    bad.extend(["--peak-tflops", "0"]);
    assert_fails_with(&bad, &["--peak-tflops", "positive"]);
}
