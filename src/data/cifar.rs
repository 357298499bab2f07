//! Reader for the official CIFAR-10 / CIFAR-100 binary batches ("binary version" downloads).
//!
//! A record is the label byte(s) then 3072 pixel bytes: the 32x32 red plane, then green,
//! then blue, each row-major. CIFAR-10 has 1 label byte (0..9); CIFAR-100 has 2 (coarse
//! 0..19, then fine 0..99) and this reader keeps the fine label (100 classes).
//!
//! A path may be one batch file or a directory. A directory is read as every `*.bin` file
//! in it (not recursive), in byte order of the file names (`data_batch_1.bin` before
//! `data_batch_2.bin`); other files such as `batches.meta.txt` are ignored. A directory that
//! holds both test batches (`test*.bin`) and training batches (`data_batch*.bin`,
//! `train*.bin`) — like the official `cifar-10-batches-bin/` — is refused, since reading it
//! whole would silently mix the splits: pass the batch file instead.

use std::fmt;
use std::path::{Path, PathBuf};

use super::DataError;
use crate::model::graph::Shape;
use crate::model::Normalization;

/// Bytes of one 32x32 RGB image.
pub const IMAGE_BYTES: usize = 3 * 32 * 32;
/// Per-image shape of the images (channels x height x width).
pub const IMAGE_SHAPE: Shape = Shape::new(3, 32, 32);

/// Which binary layout a file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CifarFormat {
    /// 1 label byte (0..9) + 3072 pixel bytes.
    Cifar10,
    /// 2 label bytes (coarse 0..19, fine 0..99) + 3072 pixel bytes; the fine label is used.
    Cifar100,
}

impl CifarFormat {
    /// Both formats, in auto-detection order.
    pub const ALL: [CifarFormat; 2] = [CifarFormat::Cifar10, CifarFormat::Cifar100];

    /// Label bytes at the start of each record.
    pub const fn label_bytes(self) -> usize {
        match self {
            CifarFormat::Cifar10 => 1,
            CifarFormat::Cifar100 => 2,
        }
    }

    /// Bytes per record: labels then pixels (3073 or 3074).
    pub const fn record_bytes(self) -> usize {
        self.label_bytes() + IMAGE_BYTES
    }

    /// Number of (fine) classes.
    pub const fn num_classes(self) -> usize {
        match self {
            CifarFormat::Cifar10 => 10,
            CifarFormat::Cifar100 => 100,
        }
    }

    /// Short name (`cifar10`, `cifar100`).
    pub const fn name(self) -> &'static str {
        match self {
            CifarFormat::Cifar10 => "cifar10",
            CifarFormat::Cifar100 => "cifar100",
        }
    }
}

impl fmt::Display for CifarFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CifarFormat::Cifar10 => "CIFAR-10",
            CifarFormat::Cifar100 => "CIFAR-100",
        })
    }
}

/// Number of coarse classes of CIFAR-100 (checked, not kept).
const CIFAR100_COARSE_CLASSES: u16 = 20;

/// Labelled 8-bit images, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// One label per image, `< num_classes`.
    pub labels: Vec<u16>,
    /// `labels.len() * IMAGE_BYTES` bytes: each image's R, G, B planes, row-major.
    pub pixels: Vec<u8>,
    /// Number of classes of the format (10 or 100).
    pub num_classes: usize,
    /// The layout the files were read as.
    pub format: CifarFormat,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
}

impl Dataset {
    /// Reads a batch file or a directory of them (see the module docs for the directory rule).
    /// `format: None` detects the layout from the file sizes.
    pub fn open(path: impl AsRef<Path>, format: Option<CifarFormat>) -> Result<Dataset, DataError> {
        Self::open_first(path, format, None)
    }

    /// [`Dataset::open`] keeping only the first `limit` images: the files are read up to
    /// there and no further (a `--limit 8` on a 1 GB file reads 8 records). Only regular
    /// files are opened (a FIFO or a device is an error, never a hang).
    pub fn open_first(
        path: impl AsRef<Path>,
        format: Option<CifarFormat>,
        limit: Option<usize>,
    ) -> Result<Dataset, DataError> {
        let path = path.as_ref();
        let io_error = |source| DataError::Io { path: path.display().to_string(), source };
        let meta = std::fs::metadata(path).map_err(io_error)?;
        let files = if meta.is_dir() { batch_files(path)? } else { vec![path.to_path_buf()] };

        let mut sizes = Vec::with_capacity(files.len());
        for file in &files {
            let size = crate::io::regular_file_size(file).map_err(|e| DataError::Input { source: e })?;
            if size == 0 {
                return Err(DataError::Empty { path: file.display().to_string() });
            }
            sizes.push(size);
        }
        let format = match format {
            Some(format) => format,
            None => detect_format(path, &files, &sizes)?,
        };

        let mut dataset = Dataset {
            labels: Vec::new(),
            pixels: Vec::new(),
            num_classes: format.num_classes(),
            format,
            files: Vec::new(),
        };
        let record = format.record_bytes() as u64;
        for (file, &size) in files.iter().zip(&sizes) {
            check_whole_records(file, size, format)?;
            let wanted = match limit {
                Some(limit) => (limit.saturating_sub(dataset.len()) as u64).saturating_mul(record).min(size),
                None => size,
            };
            if wanted == 0 {
                break;
            }
            let bytes = crate::io::read_prefix(file, wanted, u64::MAX).map_err(|e| DataError::Input { source: e })?;
            // The file may have changed since the size check; validate what was read.
            if bytes.len() as u64 != wanted {
                check_whole_records(file, bytes.len() as u64, format)?;
            }
            dataset.append_records(file, &bytes)?;
            dataset.files.push(file.clone());
        }
        if dataset.is_empty() {
            return Err(DataError::Empty { path: path.display().to_string() });
        }
        Ok(dataset)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Keeps the first `n` images (all of them if there are fewer).
    pub fn truncate(&mut self, n: usize) {
        self.labels.truncate(n);
        self.pixels.truncate(self.labels.len() * IMAGE_BYTES);
    }

    /// A copy holding images `range` (clipped to the dataset), in order: one shard of a sweep.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Dataset {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        Dataset {
            labels: self.labels[start..end].to_vec(),
            pixels: self.pixels[start * IMAGE_BYTES..end * IMAGE_BYTES].to_vec(),
            num_classes: self.num_classes,
            format: self.format,
            files: self.files.clone(),
        }
    }

    /// The 3072 pixel bytes of image `index` (CHW), or `None` past the end.
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        let start = index.checked_mul(IMAGE_BYTES)?;
        self.pixels.get(start..start.checked_add(IMAGE_BYTES)?)
    }

    /// The label of image `index`, or `None` past the end.
    pub fn label(&self, index: usize) -> Option<u16> {
        self.labels.get(index).copied()
    }

    /// Writes images `start..start + count` into `out` (cleared first) as NCHW f32, each
    /// value `(pixel / 255 - mean[c]) / std[c]`. The range is clipped to the dataset;
    /// returns the number of images written.
    pub fn normalized_batch(&self, start: usize, count: usize, norm: &Normalization, out: &mut Vec<f32>) -> usize {
        out.clear();
        let start = start.min(self.len());
        let end = start.saturating_add(count).min(self.len());
        let table = norm.lookup_table();
        let Some(pixels) = self.pixels.get(start * IMAGE_BYTES..end * IMAGE_BYTES) else {
            return 0;
        };
        out.reserve(pixels.len());
        for image in pixels.chunks_exact(IMAGE_BYTES) {
            for (plane, channel_table) in image.chunks_exact(IMAGE_SHAPE.plane()).zip(&table) {
                out.extend(plane.iter().map(|&p| channel_table[usize::from(p)]));
            }
        }
        end - start
    }

    /// Parses whole records of `bytes` (already checked to be a multiple of the record size).
    fn append_records(&mut self, file: &Path, bytes: &[u8]) -> Result<(), DataError> {
        let format = self.format;
        let records = bytes.len() / format.record_bytes();
        self.labels.reserve(records);
        self.pixels.reserve(records * IMAGE_BYTES);
        for (record, chunk) in bytes.chunks_exact(format.record_bytes()).enumerate() {
            let (labels, pixels) = chunk.split_at(format.label_bytes());
            let out_of_range = |kind, label, limit| DataError::LabelOutOfRange {
                path: file.display().to_string(),
                record,
                kind,
                label,
                limit,
                format,
            };
            let label = match *labels {
                [label] => {
                    if u16::from(label) >= 10 {
                        return Err(out_of_range("", label, 10));
                    }
                    label
                }
                [coarse, fine] => {
                    if u16::from(coarse) >= CIFAR100_COARSE_CLASSES {
                        return Err(out_of_range("coarse ", coarse, CIFAR100_COARSE_CLASSES));
                    }
                    if u16::from(fine) >= 100 {
                        return Err(out_of_range("fine ", fine, 100));
                    }
                    fine
                }
                _ => unreachable!("label_bytes is 1 or 2"),
            };
            self.labels.push(u16::from(label));
            self.pixels.extend_from_slice(pixels);
        }
        Ok(())
    }
}

/// The `*.bin` files of `dir`, sorted by name, refusing a mix of test and training batches.
fn batch_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io_error = |source| DataError::Io { path: dir.display().to_string(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "bin") && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        return Err(DataError::NoBatchFiles { path: dir.display().to_string() });
    }
    let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let test = files.iter().map(name).find(|n| n.starts_with("test"));
    let train = files.iter().map(name).find(|n| n.starts_with("data_batch") || n.starts_with("train"));
    if let (Some(test), Some(train)) = (test, train) {
        return Err(DataError::MixedSplits { path: dir.display().to_string(), test, train });
    }
    Ok(files)
}

/// The one format whose record size divides every file's size.
fn detect_format(path: &Path, files: &[PathBuf], sizes: &[u64]) -> Result<CifarFormat, DataError> {
    let mut candidates: Vec<CifarFormat> = CifarFormat::ALL.to_vec();
    for (file, &size) in files.iter().zip(sizes) {
        let fits: Vec<CifarFormat> =
            CifarFormat::ALL.into_iter().filter(|f| size.is_multiple_of(f.record_bytes() as u64)).collect();
        let file_name = file.display().to_string();
        match (fits.as_slice(), candidates.as_slice()) {
            ([], _) => return Err(DataError::UnknownFormat { path: file_name, size }),
            (_, [only]) if !fits.contains(only) => {
                // Earlier files fixed the format; this one does not fit it.
                return Err(DataError::PartialRecord {
                    path: file_name,
                    size,
                    format: *only,
                    record_bytes: only.record_bytes(),
                });
            }
            _ => candidates.retain(|c| fits.contains(c)),
        }
    }
    match candidates.as_slice() {
        [only] => Ok(*only),
        _ => Err(DataError::AmbiguousFormat { path: path.display().to_string(), size: sizes.iter().sum() }),
    }
}

fn check_whole_records(file: &Path, size: u64, format: CifarFormat) -> Result<(), DataError> {
    if size == 0 {
        return Err(DataError::Empty { path: file.display().to_string() });
    }
    if !size.is_multiple_of(format.record_bytes() as u64) {
        return Err(DataError::PartialRecord {
            path: file.display().to_string(),
            size,
            format,
            record_bytes: format.record_bytes(),
        });
    }
    Ok(())
}
