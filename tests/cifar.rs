//! CIFAR binary reader tests: CIFAR-10 / CIFAR-100 files the tests write (good and bad,
//! single files and directories, format detection), then the real CIFAR-10 test batch.

mod common;

use std::path::{Path, PathBuf};

use common::Rng;
use spikeconv::data::{CifarFormat, DataError, Dataset, IMAGE_BYTES};
use spikeconv::model::{Normalization, NormalizePreset};

/// One record: label byte(s) then the image.
fn record(labels: &[u8], image: &[u8]) -> Vec<u8> {
    assert_eq!(image.len(), IMAGE_BYTES);
    [labels, image].concat()
}

/// `count` random images with labels `label_of(i)`; returns (file bytes, images).
fn batch(format: CifarFormat, count: usize, seed: u64, label_of: impl Fn(usize) -> Vec<u8>) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut rng = Rng::new(seed);
    let images: Vec<Vec<u8>> = (0..count).map(|_| (0..IMAGE_BYTES).map(|_| rng.next_u64() as u8).collect()).collect();
    let bytes = images
        .iter()
        .enumerate()
        .flat_map(|(i, image)| {
            let labels = label_of(i);
            assert_eq!(labels.len(), format.label_bytes());
            record(&labels, image)
        })
        .collect();
    (bytes, images)
}

struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("temp dir"))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).expect("write batch");
        path
    }

    fn dir(&self, name: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }
}

/// The error message of an open that must fail, checked to name `what` and be one line.
fn open_error(path: &Path, format: Option<CifarFormat>, what: &str) -> (DataError, String) {
    let error = Dataset::open(path, format).expect_err("open should fail");
    let message = error.to_string();
    assert!(message.contains(what), "message does not name {what}: {message}");
    assert!(!message.contains('\n'), "message is not one line: {message}");
    (error, message)
}

#[test]
fn reads_cifar10_records_in_order() {
    let scratch = Scratch::new();
    let (bytes, images) = batch(CifarFormat::Cifar10, 7, 1, |i| vec![(i % 10) as u8]);
    let path = scratch.write("batch.bin", &bytes);
    for format in [Some(CifarFormat::Cifar10), None] {
        let dataset = Dataset::open(&path, format).unwrap();
        assert_eq!(dataset.format, CifarFormat::Cifar10);
        assert_eq!(dataset.num_classes, 10);
        assert_eq!(dataset.len(), 7);
        assert_eq!(dataset.labels, vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(dataset.pixels, images.concat());
        assert_eq!(dataset.image(3), Some(images[3].as_slice()));
        assert_eq!(dataset.label(6), Some(6));
        assert_eq!((dataset.image(7), dataset.label(7)), (None, None));
        assert_eq!(dataset.files, vec![path.clone()]);
    }
}

#[test]
fn reads_cifar100_fine_labels() {
    let scratch = Scratch::new();
    let (bytes, images) = batch(CifarFormat::Cifar100, 5, 2, |i| vec![(i * 4) as u8, (i * 20 + 19) as u8]);
    let path = scratch.write("train.bin", &bytes);
    for format in [Some(CifarFormat::Cifar100), None] {
        let dataset = Dataset::open(&path, format).unwrap();
        assert_eq!(dataset.format, CifarFormat::Cifar100);
        assert_eq!(dataset.num_classes, 100);
        assert_eq!(dataset.labels, vec![19, 39, 59, 79, 99]);
        assert_eq!(dataset.pixels, images.concat());
    }
}

#[test]
fn directory_reads_every_bin_file_in_name_order() {
    let scratch = Scratch::new();
    let dir = scratch.dir("batches");
    let (b2, images2) = batch(CifarFormat::Cifar10, 3, 3, |_| vec![2]);
    let (b1, images1) = batch(CifarFormat::Cifar10, 2, 4, |_| vec![1]);
    scratch.write("batches/data_batch_2.bin", &b2);
    scratch.write("batches/data_batch_1.bin", &b1);
    scratch.write("batches/batches.meta.txt", b"airplane\nautomobile\n");
    scratch.write("batches/readme.html", b"<html>");
    std::fs::create_dir_all(dir.join("nested.bin")).unwrap();

    let dataset = Dataset::open(&dir, None).unwrap();
    assert_eq!(dataset.labels, vec![1, 1, 2, 2, 2]);
    assert_eq!(dataset.pixels, [images1, images2].concat().concat());
    let names: Vec<_> = dataset.files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["data_batch_1.bin", "data_batch_2.bin"]);
}

#[test]
fn directory_mixing_test_and_training_batches_is_refused() {
    let scratch = Scratch::new();
    let dir = scratch.dir("cifar-10-batches-bin");
    let (bytes, _) = batch(CifarFormat::Cifar10, 1, 5, |_| vec![0]);
    scratch.write("cifar-10-batches-bin/data_batch_1.bin", &bytes);
    scratch.write("cifar-10-batches-bin/test_batch.bin", &bytes);
    let (error, message) = open_error(&dir, None, "cifar-10-batches-bin");
    assert!(matches!(error, DataError::MixedSplits { .. }));
    assert!(message.contains("test_batch.bin") && message.contains("data_batch_1.bin"), "{message}");
    // The single file is fine.
    assert_eq!(Dataset::open(dir.join("test_batch.bin"), None).unwrap().len(), 1);
}

#[test]
fn empty_inputs_are_reported() {
    let scratch = Scratch::new();
    let empty = scratch.write("empty.bin", &[]);
    let (error, _) = open_error(&empty, None, "empty.bin");
    assert!(matches!(error, DataError::Empty { .. }));
    let (error, _) = open_error(&empty, Some(CifarFormat::Cifar100), "empty.bin");
    assert!(matches!(error, DataError::Empty { .. }));

    let dir = scratch.dir("nothing");
    scratch.write("nothing/batches.meta.txt", b"cat\n");
    let (error, _) = open_error(&dir, None, "nothing");
    assert!(matches!(error, DataError::NoBatchFiles { .. }));

    let (error, _) = open_error(&scratch.0.path().join("absent.bin"), None, "absent.bin");
    assert!(matches!(error, DataError::Io { .. }));
}

#[test]
fn sizes_that_are_not_whole_records_are_reported() {
    let scratch = Scratch::new();
    let (bytes, _) = batch(CifarFormat::Cifar10, 3, 6, |_| vec![4]);
    let cut = scratch.write("cut.bin", &bytes[..bytes.len() - 1]);
    let (error, message) = open_error(&cut, None, "cut.bin");
    assert!(matches!(error, DataError::UnknownFormat { size: 9218, .. }), "{message}");
    let (error, message) = open_error(&cut, Some(CifarFormat::Cifar10), "cut.bin");
    assert!(matches!(error, DataError::PartialRecord { size: 9218, record_bytes: 3073, .. }));
    assert!(message.contains("9218 bytes") && message.contains("CIFAR-10") && message.contains("3073"), "{message}");

    // An explicit format that does not fit: three CIFAR-10 records read as CIFAR-100.
    let whole = scratch.write("whole.bin", &bytes);
    let (error, _) = open_error(&whole, Some(CifarFormat::Cifar100), "whole.bin");
    assert!(matches!(error, DataError::PartialRecord { format: CifarFormat::Cifar100, .. }));

    // In a directory, the file that breaks the format others fixed is named.
    let dir = scratch.dir("mixed_formats");
    scratch.write("mixed_formats/a.bin", &bytes);
    let (b100, _) = batch(CifarFormat::Cifar100, 2, 7, |_| vec![1, 1]);
    scratch.write("mixed_formats/b.bin", &b100);
    let (error, message) = open_error(&dir, None, "b.bin");
    assert!(matches!(error, DataError::PartialRecord { format: CifarFormat::Cifar10, .. }), "{message}");
}

#[test]
fn ambiguous_sizes_need_an_explicit_format() {
    let scratch = Scratch::new();
    // 3074 CIFAR-10 records are exactly 3073 CIFAR-100 records (3073 * 3074 bytes).
    let (bytes, _) = batch(CifarFormat::Cifar10, 3074, 8, |i| vec![(i % 10) as u8]);
    let path = scratch.write("ambiguous.bin", &bytes);
    let (error, message) = open_error(&path, None, "ambiguous.bin");
    assert!(matches!(error, DataError::AmbiguousFormat { .. }));
    assert!(message.contains("cifar10") && message.contains("cifar100"), "{message}");
    assert_eq!(Dataset::open(&path, Some(CifarFormat::Cifar10)).unwrap().len(), 3074);

    // A directory is unambiguous when one of its files decides.
    let dir = scratch.dir("decided");
    std::fs::rename(&path, dir.join("a.bin")).unwrap();
    scratch.write("decided/b.bin", &batch(CifarFormat::Cifar10, 1, 9, |_| vec![9]).0);
    let dataset = Dataset::open(&dir, None).unwrap();
    assert_eq!((dataset.format, dataset.len()), (CifarFormat::Cifar10, 3075));
}

#[test]
fn labels_out_of_range_name_file_record_and_label() {
    let scratch = Scratch::new();
    let (bytes, _) = batch(CifarFormat::Cifar10, 6, 10, |i| vec![if i == 4 { 10 } else { 3 }]);
    let path = scratch.write("badlabel.bin", &bytes);
    let (error, message) = open_error(&path, None, "badlabel.bin");
    assert!(matches!(error, DataError::LabelOutOfRange { record: 4, label: 10, .. }), "{message}");
    assert!(message.ends_with("badlabel.bin: record 4 has label 10, expected 0..10 (CIFAR-10)"), "{message}");

    let (bytes, _) = batch(CifarFormat::Cifar100, 3, 11, |i| vec![5, if i == 2 { 100 } else { 50 }]);
    let path = scratch.write("badfine.bin", &bytes);
    let (_, message) = open_error(&path, None, "badfine.bin");
    assert!(message.contains("record 2 has fine label 100, expected 0..100"), "{message}");

    let (bytes, _) = batch(CifarFormat::Cifar100, 3, 12, |i| vec![if i == 1 { 20 } else { 0 }, 7]);
    let path = scratch.write("badcoarse.bin", &bytes);
    let (_, message) = open_error(&path, None, "badcoarse.bin");
    assert!(message.contains("record 1 has coarse label 20, expected 0..20"), "{message}");

    // A CIFAR-100 file read as CIFAR-10 trips on its labels or its size.
    let (bytes, _) = batch(CifarFormat::Cifar100, 3073, 13, |_| vec![12, 60]);
    let path = scratch.write("hundred.bin", &bytes);
    let (error, _) = open_error(&path, Some(CifarFormat::Cifar10), "hundred.bin");
    assert!(matches!(error, DataError::LabelOutOfRange { record: 0, label: 12, .. }));
}

#[test]
fn normalized_batch_is_nchw_and_clipped_to_the_dataset() {
    let scratch = Scratch::new();
    let (bytes, images) = batch(CifarFormat::Cifar10, 5, 14, |_| vec![0]);
    let mut dataset = Dataset::open(scratch.write("norm.bin", &bytes), None).unwrap();
    let norm = Normalization::new([0.5, 0.25, 0.75], [0.5, 0.2, 0.1]).unwrap();
    let mut out = vec![123.0; 7];

    assert_eq!(dataset.normalized_batch(1, 2, &norm, &mut out), 2);
    assert_eq!(out.len(), 2 * IMAGE_BYTES);
    for (n, image) in images[1..3].iter().enumerate() {
        for (c, (mean, std)) in norm.mean.iter().zip(&norm.std).enumerate() {
            for pixel in [0, 1, 31, 32, 1023] {
                let raw = image[c * 1024 + pixel];
                let expected = (raw as f32 / 255.0 - mean) / std;
                let got = out[n * IMAGE_BYTES + c * 1024 + pixel];
                assert!((got - expected).abs() <= 1e-6 * expected.abs().max(1.0), "image {n} c {c} p {pixel}");
            }
        }
    }

    assert_eq!(dataset.normalized_batch(3, 10, &norm, &mut out), 2, "clipped at the end");
    assert_eq!(out.len(), 2 * IMAGE_BYTES);
    assert_eq!(dataset.normalized_batch(9, 1, &norm, &mut out), 0);
    assert!(out.is_empty());
    assert_eq!(dataset.normalized_batch(usize::MAX, usize::MAX, &norm, &mut out), 0);

    dataset.truncate(2);
    assert_eq!((dataset.len(), dataset.pixels.len()), (2, 2 * IMAGE_BYTES));
    dataset.truncate(10);
    assert_eq!(dataset.len(), 2);
    dataset.truncate(0);
    assert!(dataset.is_empty() && dataset.pixels.is_empty());
}

#[test]
fn real_cifar10_test_batch() {
    let Some(dir) = common::data_dir() else { return };
    let path = dir.join("cifar10/test_batch.bin");
    let raw = std::fs::read(&path).unwrap();
    let dataset = Dataset::open(&path, None).unwrap();
    assert_eq!(dataset.format, CifarFormat::Cifar10);
    assert_eq!(dataset.len(), 10_000);
    // First record: label byte 3 (cat), as the file's first byte says.
    assert_eq!(raw[0], 3);
    assert_eq!(dataset.labels[0], 3);
    assert_eq!(dataset.image(0), Some(&raw[1..3073]));
    assert_eq!(dataset.labels[9_999], u16::from(raw[9_999 * 3073]));
    // The official test set is balanced: 1000 images per class.
    let mut per_class = [0usize; 10];
    for &label in &dataset.labels {
        per_class[usize::from(label)] += 1;
    }
    assert_eq!(per_class, [1000; 10]);

    let norm = NormalizePreset::Imagenet.normalization();
    let mut out = Vec::new();
    assert_eq!(dataset.normalized_batch(0, 1, &norm, &mut out), 1);
    assert_eq!(out[0], (raw[1] as f32 / 255.0 - 0.485) / 0.229);
    assert_eq!(out[2048], (raw[1 + 2048] as f32 / 255.0 - 0.406) / 0.225);

    // The directory holds training and test batches: refused rather than mixed.
    let (error, _) = open_error(&dir.join("cifar10"), None, "cifar10");
    assert!(matches!(error, DataError::MixedSplits { .. }));
}
