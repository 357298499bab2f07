//! Property tests (proptest) of every reader of user input: arbitrary bytes or text, and
//! real files with arbitrary edits, give a value or a one-line error, never a panic.
//! The seeded mutation suite (tests/mutations.rs) also runs what loads; proptest here
//! explores the readers alone, and shrinks any failure to a minimal input.

use proptest::prelude::*;
use spikeconv::data::cifar::Dataset;
use spikeconv::model::{self, LoadOptions};

const CHECKPOINT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/resnet20_restructured.safetensors");

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

/// A real file with `edits` (position fraction, byte) written over it and cut at `cut`.
fn edited(bytes: &[u8], edits: &[(f64, u8)], cut: f64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for &(at, byte) in edits {
        let i = ((at * out.len() as f64) as usize).min(out.len() - 1);
        out[i] = byte;
    }
    out.truncate(((cut * bytes.len() as f64) as usize).max(1));
    out
}

fn header_region(bytes: &[u8]) -> f64 {
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as f64;
    (8.0 + length) / bytes.len() as f64
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn checkpoint_loader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = model::load_bytes("arbitrary.safetensors", bytes, &LoadOptions::default()) {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn checkpoint_loader_never_panics_on_edited_headers(
        edits in proptest::collection::vec((0.0..1.0f64, any::<u8>()), 1..6),
        cut in 0.5..1.0f64,
    ) {
        let real = std::fs::read(CHECKPOINT).unwrap();
        let within = header_region(&real);
        let edits: Vec<(f64, u8)> = edits.into_iter().map(|(at, b)| (at * within, b)).collect();
        let bytes = edited(&real, &edits, cut);
        if let Err(e) = model::load_bytes("edited.safetensors", bytes, &LoadOptions::default()) {
            let message = e.to_string();
            prop_assert!(message.starts_with("edited.safetensors") && !message.contains('\n'), "{}", message);
        }
    }

    #[test]
    fn snn_file_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(message) = spikeconv::convert::snn_file::from_bytes(&bytes) {
            prop_assert!(!message.contains('\n'));
        }
    }

    #[test]
    fn dataset_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..7000), limit in proptest::option::of(0..4usize)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        std::fs::write(&path, &bytes).unwrap();
        match Dataset::open_first(&path, None, limit) {
            Ok(dataset) => {
                prop_assert!(dataset.labels.iter().all(|&l| usize::from(l) < dataset.num_classes));
                prop_assert_eq!(dataset.pixels.len(), dataset.len() * 3072);
            }
            Err(e) => prop_assert!(e.to_string().contains("data.bin") && !e.to_string().contains('\n')),
        }
    }

    #[test]
    fn prediction_csv_reader_never_panics(text in "(image,label,ann[a-z0-9 =,()]*\n)?([0-9,\\-x]{0,20}\n){0,6}") {
        if let Ok(table) = spikeconv::report::PredictionTable::from_csv(&text) {
            let _ = table.paired_table();
        }
    }

    #[test]
    fn run_line_reader_never_panics(text in "\\{(\"[a-z_]{1,16}\":(-?[0-9]{1,4}|\\[[0-9,]{0,12}\\]|\"[a-z:.0-9]{0,8}\"|null),?){0,8}\\}\n?") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.jsonl");
        std::fs::write(&path, &text).unwrap();
        if let Err(e) = spikeconv::report::compare::read_runs(&[path.as_path()]) {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn shard_records_never_panic(text in "\\{(\"[a-z_]{1,16}\":(-?[0-9]{1,4}|\\[[0-9,]{0,12}\\]|\"[a-z\\-]{0,24}\"|null),?){0,10}\\}") {
        let _ = spikeconv::jobs::ShardRecord::from_json("shard.json", &text);
    }
}
