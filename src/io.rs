//! Reading the user's input files safely: only regular files are opened (a FIFO with no
//! writer would block `open()` forever, a device such as `/dev/zero` never ends), and no
//! more than a bound is read, so a wrong path gives a one-line error, never a hang or an
//! exhausted memory.

use std::io::Read;
use std::path::Path;

/// Largest checkpoint or converted-SNN file read: far above any CIFAR network (a VGG-19
/// in f32 is 80 MB, ResNet-34 85 MB).
pub const MAX_MODEL_BYTES: u64 = 2 << 30;
/// Largest text input read whole (prediction tables, JSON lines, shard records).
pub const MAX_TEXT_BYTES: u64 = 256 << 20;

/// Why an input file could not be read; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: cannot read: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not a regular file (a {kind}); give the path of a file")]
    NotAFile { path: String, kind: &'static str },
    #[error("{path}: {size} bytes, more than the {limit} bytes this input may have")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: not UTF-8 text")]
    NotText { path: String },
}

/// Checks that `path` is a regular file (without opening it) and returns its size.
pub fn regular_file_size(path: &Path) -> Result<u64, InputError> {
    let name = || path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| InputError::Io { path: name(), source })?;
    let kind = meta.file_type();
    if meta.is_file() {
        return Ok(meta.len());
    }
    let kind = if kind.is_dir() {
        "directory"
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if kind.is_fifo() {
                "FIFO"
            } else if kind.is_char_device() || kind.is_block_device() {
                "device"
            } else if kind.is_socket() {
                "socket"
            } else {
                "special file"
            }
        }
        #[cfg(not(unix))]
        {
            "special file"
        }
    };
    Err(InputError::NotAFile { path: name(), kind })
}

/// The first `max` bytes at most of the regular file `path`, or the whole file if it is
/// shorter; `limit` is the size beyond which the file is refused outright.
pub fn read_prefix(path: &Path, max: u64, limit: u64) -> Result<Vec<u8>, InputError> {
    let size = regular_file_size(path)?;
    let name = || path.display().to_string();
    if size > limit && max > limit {
        return Err(InputError::TooLarge { path: name(), size, limit });
    }
    let file = std::fs::File::open(path).map_err(|source| InputError::Io { path: name(), source })?;
    let wanted = size.min(max);
    let mut bytes = Vec::with_capacity(usize::try_from(wanted).unwrap_or(0));
    file.take(wanted).read_to_end(&mut bytes).map_err(|source| InputError::Io { path: name(), source })?;
    Ok(bytes)
}

/// The whole regular file `path`, refused above `limit` bytes.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    read_prefix(path, limit.saturating_add(1), limit).and_then(|bytes| {
        if bytes.len() as u64 > limit {
            Err(InputError::TooLarge { path: path.display().to_string(), size: bytes.len() as u64, limit })
        } else {
            Ok(bytes)
        }
    })
}

/// The whole regular file `path` as UTF-8 text, at most [`MAX_TEXT_BYTES`].
pub fn read_text(path: &Path) -> Result<String, InputError> {
    String::from_utf8(read_file(path, MAX_TEXT_BYTES)?)
        .map_err(|_| InputError::NotText { path: path.display().to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_file(dir.path(), 10).unwrap_err().to_string();
        assert!(err.contains("not a regular file (a directory)"), "{err}");
        let err = read_file(Path::new("/dev/zero"), 10).unwrap_err().to_string();
        assert!(err.contains("/dev/zero: not a regular file (a device)"), "{err}");
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        let err = read_file(&fifo, 10).unwrap_err().to_string();
        assert!(err.contains("not a regular file (a FIFO)"), "{err}");
        let err = read_file(&dir.path().join("missing"), 10).unwrap_err().to_string();
        assert!(err.contains("missing: cannot read"), "{err}");
    }

    #[test]
    fn reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_prefix(&path, 4, 100).unwrap(), b"0123");
        assert_eq!(read_file(&path, 10).unwrap(), b"0123456789");
        let err = read_file(&path, 9).unwrap_err().to_string();
        assert!(err.contains("more than the 9 bytes"), "{err}");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(read_text(&path).unwrap_err().to_string().contains("not UTF-8"));
    }
}
