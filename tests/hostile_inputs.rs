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

/// A command-line error from the argument parser: exit status 2, its first line names the
/// flags at fault (clap adds a usage line below it).
fn assert_usage_error(args: &[&str], needles: &[&str]) {
    let output = run_bounded(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    for needle in needles {
        assert!(first.contains(needle), "{args:?}: `{needle}` not in: {first}");
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
    let dataset =
        spikeconv::data::cifar::Dataset::open_first(&torn, Some(spikeconv::data::CifarFormat::Cifar10), Some(2));
    let message = dataset.unwrap_err().to_string();
    assert!(message.contains("torn.bin") && message.contains("not a whole number"), "{message}");
    let whole = dir.path().join("whole.bin");
    std::fs::write(&whole, &bytes[..5 * 3073]).unwrap();
    let first = spikeconv::data::cifar::Dataset::open_first(&whole, None, Some(2)).unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first.pixels, bytes[1..3073].iter().chain(&bytes[3074..2 * 3073]).copied().collect::<Vec<u8>>());
}

/// Writes a valid ResNet-style dyadic SNN file, then rewrites it with `mutate` applied to
/// its tensors and metadata.
fn mutated_snn(
    dir: &Path,
    name: &str,
    mutate: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>, &mut std::collections::HashMap<String, String>),
) -> String {
    let clean = dir.join("clean.safetensors");
    let file = SnnFile {
        snn: common::dyadic::dyadic_preact_snn(5, true, 0.5),
        normalization: InputNormalization::rgb([0.0; 3], [1.0; 3]),
        source_model: "dyadic".into(),
    };
    write_snn(&clean, &file).unwrap();
    let bytes = std::fs::read(&clean).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap_or_default();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut list: Vec<(String, Vec<usize>, Vec<f32>)> = tensors
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let values = v.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (n, v.shape().to_vec(), values)
        })
        .collect();
    mutate(&mut list, &mut metadata);
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> =
        list.into_iter().map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = raw
        .iter()
        .map(|(n, s, b)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap())
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, safetensors::serialize(views, Some(metadata)).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn snn_files_with_meaningless_values_or_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "nan weight",
            mutated_snn(dir.path(), "nan.safetensors", |t, _| {
                let conv = t.iter_mut().find(|(n, _, _)| n.ends_with("conv1.weight")).unwrap();
                conv.2[0] = f32::NAN;
            }),
            "conv1.weight` element 0 is NaN",
        ),
        (
            "infinite bias",
            mutated_snn(dir.path(), "inf.safetensors", |t, _| {
                let fc = t.iter_mut().find(|(n, _, _)| n == "fc.bias").unwrap();
                fc.2[1] = f32::INFINITY;
            }),
            "fc.bias` element 1 is inf",
        ),
        (
            "negative variance",
            mutated_snn(dir.path(), "var.safetensors", |t, _| {
                let var = t.iter_mut().find(|(n, _, _)| n.ends_with("running_var")).unwrap();
                var.2[0] = -1.0;
            }),
            "variance + eps must be > 0",
        ),
        (
            "control characters in the method",
            mutated_snn(dir.path(), "ctl.safetensors", |_, m| {
                m.insert("threshold_method".into(), "max\u{1b}[31m\nrow".into());
            }),
            "metadata `threshold_method`",
        ),
        (
            "empty method",
            mutated_snn(dir.path(), "empty.safetensors", |_, m| {
                m.insert("threshold_method".into(), "".into());
            }),
            "not a printable name",
        ),
    ];
    for (case, path, needle) in cases {
        let error = spikeconv::convert::snn_file::read_snn(Path::new(&path)).unwrap_err().to_string();
        assert!(error.contains(&path) && error.contains(needle) && !error.contains('\n'), "{case}: {error}");
    }
}

#[test]
fn meaningless_options_are_errors_not_silence() {
    let Some(data) = common::data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let test = common::path(&data, "cifar10/test_batch.bin");
    let calib = common::path(&data, "cifar10/data_batch_1.bin");
    let model = common::path(&data, "weights/resnet20_cifar10_akamaster.safetensors");
    let ann = ["ann", "--backend", "cpu", "--model", &model, "--data", &test, "--limit", "2"];
    let with = |extra: &[&'static str]| -> Vec<String> {
        ann.iter().map(|s| s.to_string()).chain(extra.iter().map(|s| s.to_string())).collect()
    };
    let run = |args: Vec<String>, needles: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_clean_error(&args, needles);
    };
    run(with(&["--mean", "0,0,0", "--std", "1e-45,1,1"]), &["standard deviation", "outside"]);
    run(with(&["--mean", "1e30,0,0", "--std", "1,1,1"]), &["mean", "outside"]);
    let sweep = |extra: &[&str]| -> Vec<String> {
        [
            "sweep",
            "--backend",
            "cpu",
            "--model",
            &model,
            "--calib",
            &calib,
            "--calib-images",
            "8",
            "--data",
            &test,
            "--limit",
            "2",
            "--timesteps",
            "2",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
    };
    run(sweep(&["--v-init", "-0.1"]), &["--v-init", "-0.1", "[0, 1]"]);
    run(sweep(&["--v-init=-0.1"]), &["--v-init", "[0, 1]"]);

    // --snn with flags that only a conversion reads.
    let snn = dir.path().join("r20.safetensors").display().to_string();
    let output = run_bounded(&[
        "convert",
        "--backend",
        "cpu",
        "--model",
        &model,
        "--calib",
        &calib,
        "--calib-images",
        "8",
        "--threshold",
        "max",
        "-o",
        &snn,
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for flag in [["--mean", "0,0,0"], ["--std", "1,1,1"], ["--tuning-csv", "t.csv"]] {
        assert_usage_error(
            &["sweep", "--snn", &snn, "--data", &test, "--limit", "2", "--timesteps", "2", flag[0], flag[1]],
            &[flag[0], "--snn"],
        );
    }

    // paired with the ANN's column only; plot of a run of 0 images.
    let only_ann = dir.path().join("ann_only.csv");
    std::fs::write(&only_ann, "image,label,ann\n0,3,3\n1,8,1\n").unwrap();
    let only_ann = only_ann.display().to_string();
    assert_clean_error(&["paired", &only_ann], &[&only_ann, "no network"]);
    let empty_run = dir.path().join("empty.jsonl");
    std::fs::write(
        &empty_run,
        r#"{"model":"m","images":0,"ann_correct":0,"threshold_method":"max","tuned_for_timesteps":null,"correct":[0,0]}"#,
    )
    .unwrap();
    let empty_run = empty_run.display().to_string();
    let svg = dir.path().join("x.svg").display().to_string();
    assert_clean_error(&["plot", &empty_run, "--out", &svg], &[&empty_run, "0 images"]);

    // An output path that cannot be created names the flag and the path.
    let gone = "/proc/nonexistent/a.jsonl";
    assert_clean_error(
        &[
            "bench",
            "--backend",
            "cpu",
            "--model",
            &model,
            "--calib",
            &calib,
            "--calib-images",
            "8",
            "--data",
            &test,
            "--limit",
            "2",
            "--timesteps",
            "1",
            "--append",
            gone,
        ],
        &["--append", gone],
    );
}

#[test]
fn work_beyond_the_memory_budget_is_refused_with_what_to_lower() {
    let Some(data) = common::data_dir() else { return };
    let test = common::path(&data, "cifar10/test_batch.bin");
    let calib = common::path(&data, "cifar10/data_batch_1.bin");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/resnet20_restructured.safetensors");
    let base = [
        "sweep",
        "--backend",
        "cpu",
        "--model",
        model,
        "--calib",
        &calib,
        "--calib-images",
        "16",
        "--data",
        &test,
        "--limit",
        "1",
    ];
    let args = |extra: &[&'static str]| -> Vec<String> { base.iter().chain(extra).map(|s| s.to_string()).collect() };
    for extra in [&["--timesteps", "65536"][..], &["--timesteps", "64", "--memory-limit", "10M"][..]] {
        let args = args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_clean_error(&args, &["memory budget", "not even one image fits: lower --timesteps"]);
    }
    // A budget that holds a few images: the chunk shrinks to it and the run completes.
    let args = args(&["--timesteps", "8", "--memory-limit", "64M", "--batch", "1"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run_bounded(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn corrupt_headers_name_the_tensor_and_snn_files_are_not_checkpoints() {
    let Some(data) = common::data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let test = common::path(&data, "cifar10/test_batch.bin");
    let raw = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/resnet20_restructured.safetensors")).unwrap();
    let length = u64::from_le_bytes(raw[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&raw[8..8 + length]).unwrap();
    let rewrite = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| -> String {
        let mut header = header.clone();
        edit(&mut header);
        let text = serde_json::to_vec(&header).unwrap();
        let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
        bytes.extend(&text);
        bytes.extend(&raw[8 + length..]);
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    for (name, edit, needle) in [
        (
            "offsets.safetensors",
            &(|h: &mut serde_json::Value| h["bn1.weight"]["data_offsets"][1] = 260.into())
                as &dyn Fn(&mut serde_json::Value),
            "tensor bn1.weight is corrupt: data_offsets [192, 260] span 68 bytes, but shape [16] of F32 needs 64",
        ),
        (
            "dtype.safetensors",
            &|h: &mut serde_json::Value| h["bn1.weight"]["dtype"] = "Q7".into(),
            "tensor bn1.weight is corrupt: unknown dtype \"Q7\"",
        ),
        (
            "shape.safetensors",
            &|h: &mut serde_json::Value| h["linear.bias"]["shape"] = serde_json::json!([3, 5]),
            "tensor linear.bias is corrupt",
        ),
    ] {
        let path = rewrite(name, edit);
        assert_clean_error(
            &["ann", "--backend", "cpu", "--model", &path, "--data", &test, "--limit", "1"],
            &[&path, needle],
        );
    }
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &raw[..raw.len() / 2]).unwrap();
    let truncated = truncated.display().to_string();
    assert_clean_error(
        &["ann", "--backend", "cpu", "--model", &truncated, "--data", &test],
        &["is corrupt", "truncated?"],
    );

    // A converted SNN file given as a checkpoint says to pass it as --snn.
    let snn = dir.path().join("snn.safetensors");
    let file = SnnFile {
        snn: common::dyadic::dyadic_snn(3, false, 0.5),
        normalization: InputNormalization::rgb([0.0; 3], [1.0; 3]),
        source_model: "dyadic".into(),
    };
    write_snn(&snn, &file).unwrap();
    let snn = snn.display().to_string();
    assert_clean_error(
        &["ann", "--backend", "cpu", "--model", &snn, "--data", &test],
        &["converted SNN file", "--snn"],
    );

    // A chart that cannot be written: the OS's message, not a debug form.
    let runs = dir.path().join("run.jsonl");
    std::fs::write(&runs, r#"{"model":"m","images":4,"ann_correct":3,"threshold_method":"max","tuned_for_timesteps":null,"correct":[1,2]}"#).unwrap();
    let runs = runs.display().to_string();
    for out in ["/proc/nonexistent/x.png", "/proc/nonexistent/x.svg"] {
        let output = run_bounded(&["plot", &runs, "--out", out]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(&format!("{out}: cannot create: No such file or directory")),
            "{stderr}"
        );
        assert!(!stderr.contains("Os {") && !stderr.contains("ImageError"), "{stderr}");
    }
}

#[test]
fn a_converted_network_is_written_byte_for_byte_the_same_every_time() {
    let file = SnnFile {
        snn: common::dyadic::dyadic_snn(4, true, 0.5),
        normalization: InputNormalization::rgb([0.1; 3], [0.5; 3]),
        source_model: "dyadic".into(),
    };
    let first = spikeconv::convert::snn_file::to_bytes(&file).unwrap();
    for _ in 0..8 {
        assert_eq!(spikeconv::convert::snn_file::to_bytes(&file).unwrap(), first, "metadata order must not vary");
    }
    assert_eq!(spikeconv::convert::snn_file::from_bytes(&first).unwrap(), file);
}
