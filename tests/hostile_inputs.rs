//! What a hostile or careless user feeds the binary gives a one-line error naming the file,
//! never a panic, a hang or an exhausted memory (issue 34's reproducers).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use spikeconv::convert::snn_file::{write_snn, InputNormalization, SnnFile};

/// Runs the binary, killing it (and failing) if it takes longer than 20 s.
fn run_bounded(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spikeconv"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the spikeconv binary");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("{args:?} still running after 20 s (a hang)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn assert_clean_error(args: &[&str], needles: &[&str]) {
    let output = run_bounded(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} succeeded: {stderr}");
    assert_eq!(output.status.code(), Some(1), "{args:?}: not a clean exit: {stderr}");
    let message = stderr.trim();
    assert!(!message.contains("panicked") && message.lines().count() == 1, "{args:?}: {message}");
    for needle in needles {
        assert!(message.contains(needle), "{args:?}: `{needle}` not in: {message}");
    }
}

#[test]
fn a_network_whose_input_is_not_a_cifar_image_is_refused_before_it_runs() {
    let Some(data) = common::data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let snn = dir.path().join("small_input.safetensors");
    // A valid SNN file whose graph reads 3×8×8 images (4 classes).
    let file = SnnFile {
        snn: common::dyadic::dyadic_snn(3, false, 0.5),
        normalization: InputNormalization::rgb([0.0; 3], [1.0; 3]),
        source_model: "dyadic".into(),
    };
    write_snn(&snn, &file).unwrap();
    let test = common::path(&data, "cifar10/test_batch.bin");
    let snn = snn.display().to_string();
    assert_clean_error(
        &["sweep", "--backend", "cpu", "--snn", &snn, "--data", &test, "--limit", "2", "--timesteps", "2"],
        &["input is 3×8×8", "test_batch.bin", "3×32×32"],
    );
}

#[test]
fn devices_fifos_and_directories_are_refused_without_hanging() {
    let Some(data) = common::data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let fifo = fifo.display().to_string();
    let folder = dir.path().display().to_string();
    let test = common::path(&data, "cifar10/test_batch.bin");
    let model = common::path(&data, "weights/resnet20_cifar10_akamaster.safetensors");
    for (input, kind) in [("/dev/zero", "a device"), (fifo.as_str(), "a FIFO")] {
        assert_clean_error(
            &["sweep", "--backend", "cpu", "--snn", input, "--data", &test, "--timesteps", "1"],
            &[input, kind],
        );
        assert_clean_error(&["ann", "--backend", "cpu", "--model", input, "--data", &test], &[input, kind]);
        assert_clean_error(&["ann", "--backend", "cpu", "--model", &model, "--data", input], &[input, kind]);
        assert_clean_error(&["paired", input], &[input, kind]);
        assert_clean_error(&["merge", input], &[input, kind]);
        assert_clean_error(&["plot", input, "--out", &format!("{folder}/x.svg")], &[input]);
    }
    assert_clean_error(&["ann", "--backend", "cpu", "--model", &folder, "--data", &test], &[&folder, "directory"]);
}

#[test]
fn a_limit_reads_only_the_images_it_keeps() {
    let Some(data) = common::data_dir() else { return };
    // 3 whole records, then a torn one: the first 2 images are readable with --limit 2,
    // since nothing past them is read, yet the torn file is still refused whole.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(data.join("cifar10/test_batch.bin")).unwrap();
    let torn = dir.path().join("torn.bin");
    std::fs::write(&torn, &bytes[..3 * 3073 + 100]).unwrap();
    let dataset = spikeconv::data::cifar::Dataset::open_first(&torn, Some(spikeconv::data::CifarFormat::Cifar10), Some(2));
    let message = dataset.unwrap_err().to_string();
    assert!(message.contains("torn.bin") && message.contains("not a whole number"), "{message}");
    let whole = dir.path().join("whole.bin");
    std::fs::write(&whole, &bytes[..5 * 3073]).unwrap();
    let first = spikeconv::data::cifar::Dataset::open_first(&whole, None, Some(2)).unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first.pixels, bytes[1..3073].iter().chain(&bytes[3074..2 * 3073]).copied().collect::<Vec<u8>>());
    let _ = Path::new("");
}
