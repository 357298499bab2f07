//! Reading a safetensors checkpoint: header validation, PyTorch `state_dict` name
//! canonicalization (`module.` prefix, `num_batches_tracked`), dtype conversion of F32 / F16 /
//! BF16 tensors to f32, shape checks, and bookkeeping of which tensors were used.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use safetensors::{Dtype, SafeTensors};

use super::LoadError;

/// Prefix that `torch.nn.DataParallel` adds to every `state_dict` key.
/// The `format` metadata of a converted SNN file ([`crate::convert::snn_file`]): the
/// checkpoint reader recognizes one handed to it as a model.
pub const SNN_FILE_FORMAT: &str = "spikeconv-snn";

const DATA_PARALLEL_PREFIX: &str = "module.";
/// Suffix of BatchNorm's step counter (int64), which inference never needs.
const BATCHES_TRACKED_SUFFIX: &str = ".num_batches_tracked";

/// Storage dtype of a checkpoint's float tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TensorDtype {
    F32,
    F16,
    BF16,
    /// Different tensors use different float dtypes.
    Mixed,
}

impl TensorDtype {
    fn of(dtype: Dtype) -> Option<Self> {
        match dtype {
            Dtype::F32 => Some(TensorDtype::F32),
            Dtype::F16 => Some(TensorDtype::F16),
            Dtype::BF16 => Some(TensorDtype::BF16),
            _ => None,
        }
    }
}

/// Where one tensor sits in the file.
#[derive(Debug)]
struct Entry {
    /// The name as stored in the file (with any `module.` prefix), for messages.
    stored_name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    /// Byte range inside [`Checkpoint::bytes`].
    bytes: Range<usize>,
}

/// A parsed safetensors file whose tensors are looked up by canonical name (without the
/// `module.` prefix). Every lookup marks the tensor used, so that [`Checkpoint::unused`]
/// can report tensors the architecture did not account for.
#[derive(Debug)]
pub struct Checkpoint {
    path: String,
    bytes: Vec<u8>,
    entries: HashMap<String, Entry>,
    metadata: BTreeMap<String, String>,
    prefix: &'static str,
    used: BTreeSet<String>,
}

impl Checkpoint {
    /// Parses `bytes`, the content of the file named `path` (used only in messages).
    pub fn from_bytes(path: impl Into<String>, bytes: Vec<u8>) -> Result<Self, LoadError> {
        let path = path.into();
        let (header_len, metadata) =
            SafeTensors::read_metadata(&bytes).map_err(|source| match diagnose_header(&bytes) {
                Some((tensor, message)) => LoadError::Corrupt { path: path.clone(), tensor, message },
                None => LoadError::Format { path: path.clone(), source },
            })?;
        // `read_metadata` has checked that the header fits the buffer and that the data
        // offsets tile the rest of the file exactly; this is where that data starts.
        let data_start = 8 + header_len;
        let file_metadata: BTreeMap<String, String> =
            metadata.metadata().clone().unwrap_or_default().into_iter().collect();

        let tensors = metadata.tensors();
        let prefixed = !tensors.is_empty() && tensors.keys().all(|name| name.starts_with(DATA_PARALLEL_PREFIX));
        let prefix = if prefixed { DATA_PARALLEL_PREFIX } else { "" };

        let mut entries = HashMap::with_capacity(tensors.len());
        for (stored_name, info) in tensors {
            if stored_name.ends_with(BATCHES_TRACKED_SUFFIX) {
                continue;
            }
            let name = stored_name.strip_prefix(prefix).unwrap_or(&stored_name).to_string();
            let (start, end) = info.data_offsets;
            let range = match (data_start.checked_add(start), data_start.checked_add(end)) {
                (Some(s), Some(e)) if s <= e && e <= bytes.len() => s..e,
                _ => {
                    return Err(LoadError::Corrupt {
                        path,
                        tensor: stored_name,
                        message: "data offsets lie outside the file".into(),
                    })
                }
            };
            let entry = Entry { stored_name, dtype: info.dtype, shape: info.shape.clone(), bytes: range };
            entries.insert(name, entry);
        }
        if entries.is_empty() {
            return Err(LoadError::Architecture { path, message: "the file holds no tensors".into() });
        }
        Ok(Self { path, bytes, entries, metadata: file_metadata, prefix, used: BTreeSet::new() })
    }

    /// The file name as used in messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `"module."` when every stored name carries `DataParallel`'s prefix, else `""`.
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// The file's `__metadata__` (empty if it has none).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// True if the file has a tensor of this canonical name (does not mark it used).
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Canonical names of all tensors (without `num_batches_tracked`), sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.entries.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The stored shape of tensor `name`, or a missing-tensor error.
    pub fn shape(&self, name: &str) -> Result<&[usize], LoadError> {
        self.entry(name).map(|e| e.shape.as_slice())
    }

    /// Reads tensor `name` as f32 after checking its shape is `expected` and its dtype is
    /// F32, F16 or BF16; marks it used.
    pub fn tensor(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>, LoadError> {
        let entry = self.entry(name)?;
        if entry.shape != expected {
            return Err(LoadError::WrongShape {
                path: self.path.clone(),
                tensor: entry.stored_name.clone(),
                found: entry.shape.clone(),
                expected: expected.to_vec(),
            });
        }
        let raw = self.bytes.get(entry.bytes.clone()).ok_or_else(|| LoadError::Corrupt {
            path: self.path.clone(),
            tensor: entry.stored_name.clone(),
            message: "data offsets lie outside the file".into(),
        })?;
        let values: Vec<f32> = match entry.dtype {
            Dtype::F32 => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => raw.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => raw.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => {
                return Err(LoadError::WrongDtype {
                    path: self.path.clone(),
                    tensor: entry.stored_name.clone(),
                    found: format!("{other:?}"),
                })
            }
        };
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(LoadError::BadValues {
                path: self.path.clone(),
                tensor: entry.stored_name.clone(),
                message: format!("element {index} is {}", values[index]),
            });
        }
        self.used.insert(name.to_string());
        Ok(values)
    }

    /// The stored name (with prefix) of canonical `name`, for messages.
    pub fn stored_name(&self, name: &str) -> String {
        match self.entries.get(name) {
            Some(entry) => entry.stored_name.clone(),
            None => format!("{}{name}", self.prefix),
        }
    }

    /// Stored names of tensors no lookup has used, sorted.
    pub fn unused(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .iter()
            .filter(|(name, _)| !self.used.contains(*name))
            .map(|(_, e)| e.stored_name.clone())
            .collect();
        names.sort_unstable();
        names
    }

    /// The float dtype of the tensors used so far (`Mixed` if they differ); `F32` if none.
    pub fn used_dtype(&self) -> TensorDtype {
        let mut dtypes = self.used.iter().filter_map(|n| self.entries.get(n)).filter_map(|e| TensorDtype::of(e.dtype));
        let first = dtypes.next().unwrap_or(TensorDtype::F32);
        if dtypes.all(|d| d == first) {
            first
        } else {
            TensorDtype::Mixed
        }
    }

    fn entry(&self, name: &str) -> Result<&Entry, LoadError> {
        self.entries
            .get(name)
            .ok_or_else(|| LoadError::MissingTensor { path: self.path.clone(), tensor: self.stored_name(name) })
    }
}

/// For a safetensors file the parser refused, the first tensor whose header entry is at
/// fault and what is wrong with it (the parser's own message names none): an unknown
/// dtype, a shape whose size overflows, or data offsets that do not span exactly the
/// shape's bytes, run backwards, or leave the file. `None` when the header is not even
/// readable JSON or no single entry is to blame.
pub fn diagnose_header(bytes: &[u8]) -> Option<(String, String)> {
    let length = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes.get(8..8usize.checked_add(length)?)?).ok()?;
    let data = bytes.len() - 8 - length;
    let mut entries: Vec<(&String, &serde_json::Value)> =
        header.iter().filter(|(name, _)| *name != "__metadata__").collect();
    entries.sort_by_key(|(_, info)| info["data_offsets"][0].as_u64().unwrap_or(u64::MAX));
    let mut end_of_previous = 0u64;
    for (name, info) in entries {
        let fail = |message: String| Some((name.clone(), message));
        let dtype = info["dtype"].as_str().unwrap_or("");
        let Some(width) = dtype_bytes(dtype) else { return fail(format!("unknown dtype {dtype:?}")) };
        let shape: Option<Vec<u64>> =
            info["shape"].as_array().and_then(|dims| dims.iter().map(|d| d.as_u64()).collect());
        let Some(shape) = shape else { return fail("shape is not a list of sizes".into()) };
        let Some(size) = shape.iter().try_fold(width, |acc, &d| acc.checked_mul(d)) else {
            return fail(format!("shape {shape:?} is too large"));
        };
        let offsets: Option<Vec<u64>> =
            info["data_offsets"].as_array().and_then(|o| o.iter().map(|v| v.as_u64()).collect());
        let Some([start, end]) = offsets.as_deref().and_then(|o| <[u64; 2]>::try_from(o).ok()) else {
            return fail("data_offsets is not a pair of offsets".into());
        };
        if end < start || end - start != size {
            return fail(format!(
                "data_offsets [{start}, {end}] span {} bytes, but shape {shape:?} of {dtype} needs {size}",
                end.saturating_sub(start)
            ));
        }
        if start != end_of_previous {
            return fail(format!(
                "data_offsets start at {start}, not where the previous tensor ends ({end_of_previous})"
            ));
        }
        if end > data as u64 {
            return fail(format!("data_offsets end at {end}, past the {data} data bytes of the file (truncated?)"));
        }
        end_of_previous = end;
    }
    None
}

/// Bytes per element of a safetensors dtype name.
fn dtype_bytes(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" | "C64" => 8,
        _ => return None,
    })
}
