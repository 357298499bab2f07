//! Dataset readers: the official CIFAR-10 / CIFAR-100 binary formats ([`cifar`]), giving
//! labels and 8-bit images that [`cifar::Dataset::normalized_batch`] turns into NCHW input.

pub mod cifar;

pub use cifar::{CifarFormat, Dataset, IMAGE_BYTES, IMAGE_SHAPE};

/// A dataset file or directory could not be read. Every message is one line that starts
/// with the file or directory name.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file or directory could not be read.
    #[error("{path}: cannot read dataset: {source}")]
    Io { path: String, source: std::io::Error },
    /// The path is not a regular file, or reading it failed.
    #[error("{source}")]
    Input { source: crate::io::InputError },
    /// The file holds no records.
    #[error("{path}: dataset is empty (0 records)")]
    Empty { path: String },
    /// The file size is not a multiple of the record size of the selected format.
    #[error("{path}: size {size} bytes is not a whole number of {format} records ({record_bytes} bytes each)")]
    PartialRecord { path: String, size: u64, format: CifarFormat, record_bytes: usize },
    /// Auto-detection found no format whose record size divides the file size.
    #[error(
        "{path}: size {size} bytes is not a whole number of CIFAR-10 (3073-byte) or CIFAR-100 (3074-byte) records; \
         is this a CIFAR binary batch?"
    )]
    UnknownFormat { path: String, size: u64 },
    /// Auto-detection cannot tell CIFAR-10 from CIFAR-100.
    #[error(
        "{path}: size {size} bytes is a whole number of both CIFAR-10 and CIFAR-100 records; \
         pass the format explicitly (cifar10 or cifar100)"
    )]
    AmbiguousFormat { path: String, size: u64 },
    /// A record's label is outside the format's class range.
    #[error("{path}: record {record} has {kind}label {label}, expected 0..{limit} ({format})")]
    LabelOutOfRange { path: String, record: usize, kind: &'static str, label: u8, limit: u16, format: CifarFormat },
    /// A directory holds no `*.bin` batch files.
    #[error("{path}: directory holds no CIFAR batch files (*.bin)")]
    NoBatchFiles { path: String },
    /// A directory mixes test and training batches, which would silently evaluate on both.
    #[error(
        "{path}: directory mixes test ({test}) and training ({train}) batches; \
         pass one batch file, or a directory holding only the batches to read"
    )]
    MixedSplits { path: String, test: String, train: String },
}
