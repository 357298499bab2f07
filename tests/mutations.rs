//! Seeded mutations of real inputs — the restructured ResNet-20 checkpoint, a converted SNN
//! file of it and a few CIFAR-10 records — through the library's readers and, where a
//! mutant still loads, through a short run on the CPU backend. Every mutant must give a
//! clean error or a sane result (counts within the images): never a panic. The seed of a
//! failing mutant is in the message; keep it as a regression case below.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::Rng;
use spikeconv::backends::{Backend, BackendChoice};
use spikeconv::convert::snn_file::{from_bytes, to_bytes, InputNormalization, SnnFile};
use spikeconv::convert::{fold_batch_norm, ThresholdMethod};
use spikeconv::data::cifar::{CifarFormat, Dataset};
use spikeconv::model::{self, LoadOptions};

/// Mutants per input: 300 in the test suite, `SPIKECONV_MUTANTS` to run more
/// (`results/mutations-1000` runs 1000 of each).
fn mutants() -> u64 {
    std::env::var("SPIKECONV_MUTANTS").ok().and_then(|n| n.parse().ok()).unwrap_or(300)
}
const CHECKPOINT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/resnet20_restructured.safetensors");

/// One mutation of `bytes`: flipped bits, overwritten bytes (in the header or the data),
/// a truncation, an insertion, a NaN, infinity or huge float written over an f32, or a
/// header number changed; chosen by `rng`.
fn mutate(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()).min(bytes.len() as u64 - 8) as usize;
    let kind = rng.below(8);
    let in_header = |rng: &mut Rng| rng.below(header.max(1));
    let anywhere = |rng: &mut Rng, len: usize| rng.below(len.max(1));
    match kind {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = anywhere(rng, out.len());
                out[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = in_header(rng);
            out[i] = b"{}[],:\"0123456789e-.x\\ \x00\xff"[rng.below(23)];
        }
        2 => out.truncate(anywhere(rng, out.len())),
        3 => {
            let i = anywhere(rng, out.len());
            let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next_u64() as u8).collect();
            out.splice(i..i, extra);
        }
        4 | 5 => {
            // A float of the data section: NaN, ±inf, huge or tiny.
            let data = out.len().saturating_sub(header) / 4;
            if data > 0 {
                let i = header + 4 * rng.below(data);
                let value = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3e38, -3e38, 1e-40, 0.0][rng.below(7)];
                out[i..i + 4].copy_from_slice(&value.to_le_bytes());
            }
        }
        6 => {
            // A digit of the header replaced by another: shapes, offsets, sizes.
            let digits: Vec<usize> = (8..header).filter(|&i| out[i].is_ascii_digit()).collect();
            if !digits.is_empty() {
                let i = digits[rng.below(digits.len())];
                out[i] = b'0' + rng.below(10) as u8;
            }
        }
        _ => {
            // The header length itself.
            let len = rng.next_u64() % (bytes.len() as u64 * 2);
            out[..8].copy_from_slice(&len.to_le_bytes());
        }
    }
    out
}

fn no_panic<T>(what: &str, seed: u64, work: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| panic!("{what}: mutant of seed {seed} panicked"))
}

fn test_images(n: usize) -> Option<Dataset> {
    let data = common::data_dir()?;
    Some(Dataset::open_first(data.join("cifar10/test_batch.bin"), None, Some(n)).unwrap())
}

#[test]
fn mutated_checkpoints_load_cleanly_or_fail_cleanly() {
    let Some(images) = test_images(2) else { return };
    let backend = Backend::open(BackendChoice::Cpu, None).unwrap();
    let bytes = std::fs::read(CHECKPOINT).unwrap();
    let (mut loaded, mut refused) = (0, 0);
    for seed in 0..mutants() {
        let mutant = mutate(&bytes, &mut Rng::new(seed));
        let result = no_panic("checkpoint load", seed, || {
            model::load_bytes("mutant.safetensors", mutant, &LoadOptions::default())
        });
        match result {
            Err(error) => {
                let message = error.to_string();
                assert!(message.starts_with("mutant.safetensors") && !message.contains('\n'), "seed {seed}: {message}");
                refused += 1;
            }
            Ok(network) => {
                loaded += 1;
                let accuracy = no_panic("ANN of a loaded mutant", seed, || {
                    backend.evaluate_ann(
                        &network.graph,
                        spikeconv::engine::EvaluationSet::new(&images, &network.normalization, 2),
                        2,
                        |_| {},
                    )
                });
                if let Ok(accuracy) = accuracy {
                    assert!(accuracy.correct <= 2 && accuracy.predictions.iter().all(|&p| p < 10), "seed {seed}");
                }
            }
        }
    }
    eprintln!("checkpoint mutants: {loaded} loaded and ran, {refused} refused, 0 panics");
    // What ran them, as a JSON line (results/mutations-1000 records it in its manifest).
    eprintln!("{}", serde_json::json!({"backend": backend.name(), "adapter": backend.describe()}));
    assert!(
        refused > mutants() / 4 && loaded > 0,
        "the mutations exercise both outcomes: {loaded} loaded, {refused} refused"
    );
}

#[test]
fn mutated_snn_files_load_cleanly_or_fail_cleanly() {
    let Some(images) = test_images(2) else { return };
    let backend = Backend::open(BackendChoice::Cpu, None).unwrap();
    let network = model::load(CHECKPOINT, &LoadOptions::default()).unwrap();
    let folded = fold_batch_norm(&network.graph);
    // Thresholds without calibration: every IF layer at 1.0 (the file format is what is tested).
    let thresholds = folded
        .nodes()
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.op, spikeconv::model::graph::Op::Relu))
        .map(|(id, _)| (id, spikeconv::convert::Thresholds::Layer(1.0)))
        .collect();
    let mut snn = spikeconv::convert::convert(&folded, thresholds, 0.5).unwrap();
    snn.threshold_method = ThresholdMethod::Max.to_string();
    let file = SnnFile {
        snn,
        normalization: InputNormalization::rgb(network.normalization.mean, network.normalization.std),
        source_model: "resnet20_restructured.safetensors".into(),
    };
    let bytes = to_bytes(&file).unwrap();
    let (mut loaded, mut refused) = (0, 0);
    for seed in 0..mutants() {
        let mutant = mutate(&bytes, &mut Rng::new(1000 + seed));
        match no_panic("SNN file read", seed, || from_bytes(&mutant)) {
            Err(message) => {
                assert!(!message.contains('\n') && !message.is_empty(), "seed {seed}: {message}");
                refused += 1;
            }
            Ok(file) => {
                loaded += 1;
                let normalization = spikeconv::model::Normalization::new(
                    file.normalization.mean.clone().try_into().unwrap_or([0.0; 3]),
                    file.normalization.std.clone().try_into().unwrap_or([1.0; 3]),
                );
                let Ok(normalization) = normalization else { continue };
                let result = no_panic("SNN of a loaded mutant", seed, || {
                    backend.evaluate_snn(
                        &file.snn,
                        spikeconv::engine::EvaluationSet::new(&images, &normalization, 2),
                        2,
                        2,
                        |_| {},
                    )
                });
                if let Ok(accuracy) = result {
                    assert!(accuracy.correct.iter().all(|&c| c <= 2), "seed {seed}: {:?}", accuracy.correct);
                }
            }
        }
    }
    eprintln!("SNN-file mutants: {loaded} loaded and ran, {refused} refused, 0 panics");
    assert!(refused > mutants() / 4 && loaded > 0, "{loaded} loaded, {refused} refused");
}

#[test]
fn mutated_datasets_load_cleanly_or_fail_cleanly() {
    let Some(data) = common::data_dir() else { return };
    let backend = Backend::open(BackendChoice::Cpu, None).unwrap();
    let network = model::load(CHECKPOINT, &LoadOptions::default()).unwrap();
    let records = std::fs::read(data.join("cifar10/test_batch.bin")).unwrap()[..4 * 3073].to_vec();
    let dir = tempfile::tempdir().unwrap();
    let (mut loaded, mut refused) = (0, 0);
    for seed in 0..mutants() {
        let mut rng = Rng::new(2000 + seed);
        let mut mutant = records.clone();
        match rng.below(4) {
            0 => mutant.truncate(rng.below(mutant.len() + 1)),
            1 => {
                let record = rng.below(4);
                mutant[record * 3073] = rng.next_u64() as u8; // the label byte
            }
            2 => mutant.extend((0..rng.below(3074)).map(|_| rng.next_u64() as u8)),
            _ => {
                let i = rng.below(mutant.len());
                mutant[i] ^= 0xff;
            }
        }
        let path = dir.path().join(format!("mutant{seed}.bin"));
        std::fs::write(&path, &mutant).unwrap();
        let format = [None, Some(CifarFormat::Cifar10)][rng.below(2)];
        match no_panic("dataset read", seed, || Dataset::open_first(&path, format, Some(1 + rng.below(5)))) {
            Err(error) => {
                refused += 1;
                let message = error.to_string();
                assert!(
                    message.contains(&format!("mutant{seed}.bin")) && !message.contains('\n'),
                    "seed {seed}: {message}"
                );
            }
            Ok(dataset) => {
                loaded += 1;
                assert!(dataset.labels.iter().all(|&l| usize::from(l) < dataset.num_classes), "seed {seed}");
                let images = dataset.len();
                let result = no_panic("ANN on a mutant dataset", seed, || {
                    backend.evaluate_ann(
                        &network.graph,
                        spikeconv::engine::EvaluationSet::new(&dataset, &network.normalization, images),
                        2,
                        |_| {},
                    )
                });
                match result {
                    Ok(accuracy) => assert!(accuracy.correct <= images, "seed {seed}"),
                    Err(error) => assert!(!error.to_string().contains('\n'), "seed {seed}: {error}"),
                }
            }
        }
    }
    eprintln!("dataset mutants: {loaded} loaded and ran, {refused} refused, 0 panics");
}

/// The text readers of `paired` (prediction CSV) and `plot` (sweep and analysis JSON lines)
/// on mutated real outputs: a clean error or a table, never a panic.
#[test]
fn mutated_prediction_tables_and_run_files_read_cleanly_or_fail_cleanly() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let csv = std::fs::read_to_string(root.join("cpu-full-sweep-resnet20-T32/out/predictions.csv")).unwrap();
    let csv: String = csv.lines().take(200).map(|l| format!("{l}\n")).collect();
    let jsonl = std::fs::read_to_string(root.join("cpu-full-sweep-resnet20-T32/out/sweep.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text_mutant = |text: &str, seed: u64| -> String {
        let mut rng = Rng::new(seed);
        let mut chars: Vec<char> = text.chars().collect();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(chars.len().max(1));
            match rng.below(4) {
                0 => chars[i] = ",\n-0123456789x\"{}[]:e.".chars().nth(rng.below(22)).unwrap(),
                1 => {
                    chars.remove(i);
                }
                2 => chars.insert(i, ['9', ',', '\n', '-'][rng.below(4)]),
                _ => chars.truncate(i),
            }
        }
        chars.into_iter().collect()
    };
    for seed in 0..mutants() {
        let mutant = text_mutant(&csv, 3000 + seed);
        if let Ok(table) = no_panic("prediction CSV", seed, || spikeconv::report::PredictionTable::from_csv(&mutant)) {
            no_panic("paired table", seed, || table.paired_table());
        }
        let mutant = text_mutant(&jsonl, 4000 + seed);
        let path = dir.path().join(format!("runs{seed}.jsonl"));
        std::fs::write(&path, mutant).unwrap();
        use spikeconv::report::compare::{read_runs, sweep_chart, Runs};
        if let Ok(Runs::Sweeps(runs)) = no_panic("run lines", seed, || read_runs(&[path.as_path()])) {
            let chart = no_panic("chart of runs", seed, || sweep_chart(&runs, "mutant"));
            let svg = dir.path().join("chart.svg");
            if let Err(e) = no_panic("drawing the chart", seed, || chart.write(&svg)) {
                assert!(!e.to_string().contains('\n'), "seed {seed}: {e}");
            }
        }
    }
}
