//! Shared test helpers: a seeded random generator and access to the reference data.
//!
//! Tests that need `../shared/data` (or a GPU adapter) skip with a message when it is
//! missing, except under `CI=true`, where a missing resource fails the test.
#![allow(dead_code)]

pub use spikeconv::backends::wgpu::GpuBackend;
use spikeconv::backends::Backend;
use std::path::PathBuf;

pub mod dyadic;

/// Small deterministic generator (SplitMix64) so tests need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    pub fn vec(&mut self, len: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..len).map(|_| self.uniform(lo, hi)).collect()
    }

    /// Uniform integer in `[0, n)`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// True when running under CI, where missing resources are failures.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips (returns `None`) or, under CI, fails when a resource is missing.
pub fn missing<T>(what: &str) -> Option<T> {
    if in_ci() {
        panic!("CI=true and {what} is missing: this test must not be skipped in CI");
    }
    eprintln!("skipping: {what} is missing (set CI=true to make this a failure)");
    None
}

/// The reference data folder: `$SPIKECONV_DATA`, else `../shared/data` beside the checkout.
pub fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SPIKECONV_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join("cifar10/test_batch.bin").is_file() && dir.join("weights").is_dir() {
        Some(dir)
    } else {
        missing(&format!("the reference data ({})", dir.display()))
    }
}

/// The wgpu backend shared by a test binary, opened on first use (on any adapter, lavapipe
/// included); `None` (a skip, or a failure under `CI=true`) when no adapter can be opened.
pub fn gpu_backend() -> Option<&'static Backend> {
    use std::sync::OnceLock;
    static GPU: OnceLock<Result<Backend, String>> = OnceLock::new();
    let opened = GPU.get_or_init(|| {
        let ctx = spikeconv::backends::wgpu::GpuContext::new(None).map_err(|e| e.to_string())?;
        // A kernel that fails to compile is a bug, never a reason to skip.
        Ok(Backend::Gpu(GpuBackend::new(ctx).unwrap_or_else(|e| panic!("{e}"))))
    });
    match opened {
        Ok(backend) => Some(backend),
        Err(message) => missing(&format!("a GPU adapter ({message})")),
    }
}

/// The GPU context and compiled kernels of [`gpu_backend`].
pub fn gpu() -> Option<&'static GpuBackend> {
    match gpu_backend()? {
        Backend::Gpu(gpu) => Some(gpu),
        Backend::Cpu(_) => unreachable!("gpu_backend opens the wgpu backend"),
    }
}

/// The CPU backend.
pub fn cpu_backend() -> &'static Backend {
    use std::sync::OnceLock;
    static CPU: OnceLock<Backend> = OnceLock::new();
    CPU.get_or_init(|| Backend::Cpu(spikeconv::backends::cpu::CpuDevice::detect()))
}

/// Runs each named test body `fn(&Backend)` on every backend, as candle's `test_device!`
/// does: `on_every_backend!(body)` makes the tests `body::cpu` and `body::wgpu` (the latter
/// skipped without an adapter, failed under `CI=true`).
#[allow(unused_macros)]
macro_rules! on_every_backend {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[test]
            fn cpu() {
                super::$body(crate::common::cpu_backend());
            }

            #[test]
            fn wgpu() {
                if let Some(backend) = crate::common::gpu_backend() {
                    super::$body(backend);
                }
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use on_every_backend;

/// Runs the `spikeconv` binary with `args` (Mesa's device-select layer silenced).
pub fn spikeconv(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_spikeconv"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .output()
        .expect("run the spikeconv binary")
}

/// Asserts a failed run whose stderr is an error (not a panic) mentioning every `needle`.
pub fn assert_fails_with(args: &[&str], needles: &[&str]) {
    let output = spikeconv(args);
    assert!(!output.status.success(), "expected failure for {args:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = stderr.trim();
    assert!(!message.contains("panicked"), "panic instead of an error: {message}");
    for needle in needles {
        assert!(message.contains(needle), "error for {args:?} should mention `{needle}`: {message}");
    }
}

/// `rel` inside the data folder `data`, as a command-line argument.
pub fn path(data: &std::path::Path, rel: &str) -> String {
    data.join(rel).display().to_string()
}

/// Command-line paths of the reference data most end-to-end tests use.
pub struct ReferencePaths {
    /// The standard ResNet-20 checkpoint.
    pub resnet20: String,
    /// Training images to calibrate on (`data_batch_1.bin`).
    pub calib: String,
    /// The CIFAR-10 test set.
    pub test: String,
}

/// [`ReferencePaths`] inside [`data_dir`]; `None` as [`data_dir`].
pub fn reference_paths() -> Option<ReferencePaths> {
    let data = data_dir()?;
    Some(ReferencePaths {
        resnet20: path(&data, "weights/resnet20_cifar10_akamaster.safetensors"),
        calib: path(&data, "cifar10/data_batch_1.bin"),
        test: path(&data, "cifar10/test_batch.bin"),
    })
}

/// The standard ResNet-20 of the reference data, ready to calibrate and convert.
pub struct ResNet20 {
    pub network: spikeconv::model::Network,
    /// Its graph with BatchNorm folded into the convolutions.
    pub folded: spikeconv::model::graph::Graph,
    /// Training images to calibrate on (`data_batch_1.bin`).
    pub train: spikeconv::data::Dataset,
    /// The CIFAR-10 test set.
    pub test: spikeconv::data::Dataset,
}

/// [`ResNet20`] from [`data_dir`]; `None` as [`data_dir`].
pub fn resnet20() -> Option<ResNet20> {
    let data = data_dir()?;
    let network = spikeconv::model::load(
        data.join("weights/resnet20_cifar10_akamaster.safetensors"),
        &spikeconv::model::LoadOptions::default(),
    )
    .unwrap();
    let folded = spikeconv::convert::fold_bn::fold_batch_norm(&network.graph);
    let open = |rel: &str| spikeconv::data::Dataset::open(data.join(rel), None).unwrap();
    Some(ResNet20 { folded, train: open("cifar10/data_batch_1.bin"), test: open("cifar10/test_batch.bin"), network })
}

/// The JSON objects a successful `--json` run printed, one per line.
pub fn json_lines(output: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(output.status.success(), "spikeconv failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}
