//! Model loading: safetensors checkpoints ([`checkpoint`]), PyTorch tensor-name mapping to a
//! ResNet ([`resnet`]: He's CIFAR ResNets, ResNet-18/34) or a VGG ([`vgg`]), chosen by the
//! tensor names (`features.*` is a VGG), input normalization ([`normalize`]) and the
//! network [`graph`].
//!
//! [`load`] is the entry point: file → [`Network`] (graph, normalization, architecture facts).

pub mod checkpoint;
pub mod graph;
pub mod normalize;
pub mod resnet;
pub mod trained;
pub mod vgg;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use checkpoint::{Checkpoint, TensorDtype};
pub use normalize::{Normalization, NormalizeError, NormalizePreset};
pub use resnet::{BlockForm, ResNetInfo, ShortcutKind, Stem, UnknownBlockForm};
pub use trained::TrainedActivation;
pub use vgg::VggInfo;

use graph::{Graph, GraphError, Op, Pool2d};

/// Metadata keys this loader reads from a checkpoint's `__metadata__`.
pub mod metadata_keys {
    /// Per-channel mean, `"a,b,c"`.
    pub const NORMALIZE_MEAN: &str = "normalize_mean";
    /// Per-channel standard deviation, `"a,b,c"`.
    pub const NORMALIZE_STD: &str = "normalize_std";
    /// Number of classes, checked against the final layer.
    pub const NUM_CLASSES: &str = "num_classes";
    /// Shortcut option, `"A"` or `"B"`, checked against the tensors.
    pub const SHORTCUT: &str = "shortcut";
    /// Block form, `"standard"`, `"restructured"` or `"preact"` ([`BlockForm`](super::BlockForm));
    /// absent means standard.
    pub const BLOCK: &str = "block";
    /// Architecture name, e.g. `"vgg16"` or `"resnet18"`, checked against the tensors.
    pub const ARCH: &str = "arch";
    /// Kind of the parameter-free pools (VGG's, the ImageNet stem's): `"max"` (default) or
    /// `"avg"`.
    pub const POOL: &str = "pool";
}

/// What the parameter-free pooling layers of a network compute. They have no tensors, so
/// a checkpoint says it in its metadata (`pool`); the common code uses max pools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    #[default]
    Max,
    Avg,
}

impl PoolKind {
    /// The graph operation of a pool of this kind over `window`.
    pub fn op(self, window: Pool2d) -> Op {
        match self {
            PoolKind::Max => Op::MaxPool2d(window),
            PoolKind::Avg => Op::AvgPool2d(window),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PoolKind::Max => "max",
            PoolKind::Avg => "avg",
        }
    }
}

/// The network family a checkpoint holds and what its tensors say about it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Architecture {
    /// He et al.'s ResNets: the CIFAR ones (16/32/64 channels, ResNet-20 to -110) and
    /// ResNet-18/34 (64 to 512 channels, CIFAR or ImageNet stem).
    ResNet(ResNetInfo),
    /// VGG-11/13/16/19 for CIFAR.
    Vgg(VggInfo),
}

impl Architecture {
    /// The name the metadata `arch` and `--arch` use: `resnet20`, `resnet18`, `vgg16`.
    pub fn name(&self) -> String {
        match self {
            Architecture::ResNet(info) => format!("resnet{}", info.depth),
            Architecture::Vgg(info) => format!("vgg{}", info.depth),
        }
    }

    /// Weighted layers by the family's count (ResNet-20: 20, VGG-16: 16).
    pub fn depth(&self) -> usize {
        match self {
            Architecture::ResNet(info) => info.depth,
            Architecture::Vgg(info) => info.depth,
        }
    }

    pub fn num_classes(&self) -> usize {
        match self {
            Architecture::ResNet(info) => info.num_classes,
            Architecture::Vgg(info) => info.num_classes,
        }
    }

    /// The block form of a ResNet; `None` for a network without residual blocks.
    pub fn block(&self) -> Option<BlockForm> {
        self.resnet().map(|info| info.block)
    }

    /// The ResNet facts, when it is one.
    pub fn resnet(&self) -> Option<&ResNetInfo> {
        match self {
            Architecture::ResNet(info) => Some(info),
            Architecture::Vgg(_) => None,
        }
    }

    /// The VGG facts, when it is one.
    pub fn vgg(&self) -> Option<&VggInfo> {
        match self {
            Architecture::Vgg(info) => Some(info),
            Architecture::ResNet(_) => None,
        }
    }

    /// One line for reports: `ResNet-20 (restructured blocks)`, `VGG-16 with BatchNorm, max
    /// pools (64-64-M-...)`.
    pub fn describe(&self) -> String {
        match self {
            Architecture::ResNet(info) => {
                let stem = match info.stem {
                    Stem::Cifar => String::new(),
                    Stem::ImageNet(pool) => format!(", ImageNet stem with a {} pool", pool.name()),
                };
                format!("ResNet-{} ({} blocks{stem})", info.depth, info.block)
            }
            Architecture::Vgg(info) => format!(
                "VGG-{}{}, {} pools ({})",
                info.depth,
                if info.batch_norm { " with BatchNorm" } else { "" },
                info.pool.name(),
                info.config_text()
            ),
        }
    }
}

/// A checkpoint could not be turned into a network. Every message is one line that starts
/// with the file name.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read checkpoint: {source}")]
    Io { path: String, source: std::io::Error },
    /// The file is not a regular file, is too large, or could not be read.
    #[error("{source}")]
    Input { source: crate::io::InputError },
    /// The file is not a valid safetensors file (truncated, corrupt header, bad offsets).
    #[error("{path}: not a valid safetensors file (truncated or corrupt?): {source}")]
    Format { path: String, source: safetensors::SafeTensorError },
    /// A tensor's data lies outside the file.
    #[error("{path}: tensor {tensor} is corrupt: {message}")]
    Corrupt { path: String, tensor: String, message: String },
    /// A tensor the architecture needs is not in the file.
    #[error("{path}: tensor {tensor} is missing")]
    MissingTensor { path: String, tensor: String },
    /// A tensor has a shape that does not fit the architecture.
    #[error("{path}: tensor {tensor} has shape {found:?}, expected {expected:?}")]
    WrongShape { path: String, tensor: String, found: Vec<usize>, expected: Vec<usize> },
    /// A weight is not stored as a float type this loader converts.
    #[error("{path}: tensor {tensor} has dtype {found}, expected F32, F16 or BF16")]
    WrongDtype { path: String, tensor: String, found: String },
    /// A tensor holds values no trained network has (NaN, infinity, negative variance).
    #[error("{path}: tensor {tensor} has invalid values: {message}")]
    BadValues { path: String, tensor: String, message: String },
    /// The tensors do not form a network this loader recognizes (a CIFAR ResNet, ResNet-18/34, VGG).
    #[error("{path}: unrecognized architecture: {message}")]
    Architecture { path: String, message: String },
    /// Tensors remain that the architecture has no place for (e.g. a bottleneck `conv3`).
    #[error("{path}: unrecognized architecture: {count} tensor(s) have no place in the network the others form, first {first}")]
    UnexpectedTensors { path: String, count: usize, first: String },
    /// A `__metadata__` value is malformed or contradicts the tensors.
    #[error("{path}: metadata {key} = {value:?}: {message}")]
    Metadata { path: String, key: String, value: String, message: String },
    /// The metadata names a block form this version does not know.
    #[error(
        "{path}: metadata block = {block:?} is not a known block form, expected one of: {}; \
         override with --block standard|restructured|preact",
        BlockForm::names()
    )]
    UnknownBlock { path: String, block: String },
    /// Neither the file nor the options give the input normalization.
    #[error(
        "{path}: no input normalization: the file's metadata has no {missing}; \
         pass --mean a,b,c --std a,b,c or --normalize cifar10|imagenet"
    )]
    NoNormalization { path: String, missing: String },
    /// A normalization given in the options is invalid.
    #[error("{path}: invalid normalization option: {source}")]
    Normalization { path: String, source: NormalizeError },
    /// The graph rejected a layer (a shape inconsistency the checks above did not catch).
    #[error("{path}: {source}")]
    Graph { path: String, source: GraphError },
}

/// User overrides applied while loading. Explicit `mean` / `std` win over `preset`, which
/// wins over the file's metadata; each of mean and std is resolved separately. `block`
/// wins over the file's `block` metadata (which is then not read at all).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadOptions {
    /// `--mean a,b,c`: per-channel mean.
    pub mean: Option<[f32; normalize::CHANNELS]>,
    /// `--std a,b,c`: per-channel standard deviation.
    pub std: Option<[f32; normalize::CHANNELS]>,
    /// `--normalize cifar10|imagenet`.
    pub preset: Option<NormalizePreset>,
    /// `--block standard|restructured|preact`: the block form, whatever the metadata says.
    pub block: Option<BlockForm>,
    /// `--arch vgg16|resnet18|...`: the architecture the tensors must form (checked, as
    /// the metadata's `arch` is).
    pub arch: Option<String>,
}

/// Where the network's normalization came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NormalizationSource {
    /// Both mean and std from the file's `__metadata__`.
    Metadata,
    /// Both from a preset.
    Preset(NormalizePreset),
    /// At least one value from explicit options (the other possibly from preset or metadata).
    Options,
}

/// A loaded network: the graph, the normalization its input needs and its architecture.
#[derive(Clone, Debug)]
pub struct Network {
    /// The network in topological order; node names follow the tensor prefixes.
    pub graph: Graph,
    /// Input normalization the network was trained with.
    pub normalization: Normalization,
    /// Where [`Network::normalization`] came from.
    pub normalization_source: NormalizationSource,
    /// The family and the facts read from the tensors.
    pub info: Architecture,
    /// The checkpoint file.
    pub path: PathBuf,
    /// The file's `__metadata__` as stored (source, license, ...); empty if none.
    pub metadata: BTreeMap<String, String>,
    /// The clip levels λ a quantization-aware network learned per IF layer (`*.lambda`
    /// tensors), for the `trained` threshold method; `None` for an ordinary ReLU network.
    pub trained: Option<TrainedActivation>,
}

/// Loads a checkpoint (safetensors, F32/F16/BF16) of a CIFAR ResNet, ResNet-18/34 or VGG
/// into a [`Network`].
pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Network, LoadError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = crate::io::read_file(path, crate::io::MAX_MODEL_BYTES).map_err(|source| LoadError::Input { source })?;
    let mut network = load_bytes(name, bytes, options)?;
    network.path = path.to_path_buf();
    Ok(network)
}

/// Like [`load`], for a checkpoint already in memory; `name` is used in messages and as
/// [`Network::path`].
pub fn load_bytes(name: impl Into<String>, bytes: Vec<u8>, options: &LoadOptions) -> Result<Network, LoadError> {
    let mut checkpoint = Checkpoint::from_bytes(name, bytes)?;
    let path = checkpoint.path().to_string();
    let metadata = checkpoint.metadata().clone();
    if metadata.get("format").map(String::as_str) == Some(checkpoint::SNN_FILE_FORMAT) {
        return Err(LoadError::Architecture {
            path,
            message: "this is a converted SNN file (spikeconv convert -o), not a checkpoint: pass it as --snn".into(),
        });
    }
    let metadata_error = |key: &str, message: String| LoadError::Metadata {
        path: path.clone(),
        key: key.to_string(),
        value: metadata.get(key).cloned().unwrap_or_default(),
        message,
    };

    let block = match (options.block, metadata.get(metadata_keys::BLOCK)) {
        (Some(block), _) => block,
        (None, None) => BlockForm::Standard,
        (None, Some(name)) => name
            .parse::<BlockForm>()
            .map_err(|_| LoadError::UnknownBlock { path: path.clone(), block: name.clone() })?,
    };
    let (normalization, normalization_source) = resolve_normalization(&path, &metadata, options)?;

    let pool = match metadata.get(metadata_keys::POOL).map(|v| v.trim()) {
        None | Some("max") => PoolKind::Max,
        Some("avg") => PoolKind::Avg,
        Some(_) => return Err(metadata_error(metadata_keys::POOL, "expected \"max\" or \"avg\"".into())),
    };
    let (graph, info, trained) = if vgg::is_vgg(&checkpoint) {
        let (graph, info, trained) = vgg::build(&mut checkpoint, pool)?;
        (graph, Architecture::Vgg(info), trained)
    } else {
        let (graph, info, trained) = resnet::build(&mut checkpoint, block, pool)?;
        (graph, Architecture::ResNet(info), trained)
    };

    if let Some(value) = metadata.get(metadata_keys::NUM_CLASSES) {
        match value.trim().parse::<usize>() {
            Ok(n) if n == info.num_classes() => {}
            Ok(n) => {
                let last = graph.node(graph.output()).name.clone();
                return Err(metadata_error(
                    metadata_keys::NUM_CLASSES,
                    format!("the final layer {last}.weight has {} outputs, not {n}", info.num_classes()),
                ));
            }
            Err(_) => return Err(metadata_error(metadata_keys::NUM_CLASSES, "not a whole number".into())),
        }
    }
    if let Some(value) = metadata.get(metadata_keys::ARCH) {
        check_arch(&path, &info, value, &format!("metadata {} = {value:?}", metadata_keys::ARCH))?;
    }
    if let Some(value) = &options.arch {
        check_arch(&path, &info, value, &format!("--arch {value}"))?;
    }
    if let (Some(value), Architecture::ResNet(resnet)) = (metadata.get(metadata_keys::SHORTCUT), &info) {
        let info = resnet;
        let stated = match value.trim() {
            "A" | "a" => ShortcutKind::A,
            "B" | "b" => ShortcutKind::B,
            _ => return Err(metadata_error(metadata_keys::SHORTCUT, "expected \"A\" or \"B\"".into())),
        };
        if stated != info.shortcut {
            let found = match info.shortcut {
                ShortcutKind::A => "no projection shortcut tensors (option A)",
                ShortcutKind::B => "projection shortcut tensors (option B)",
            };
            return Err(metadata_error(
                metadata_keys::SHORTCUT,
                format!("contradicts the tensors, which have {found}"),
            ));
        }
    }

    Ok(Network { graph, normalization, normalization_source, info, path: PathBuf::from(path), metadata, trained })
}

/// Checks that the tensors form the architecture `wanted` names (`vgg16`, `resnet18`, ...;
/// case, `-` and `_` ignored, a `_bn` suffix allowed for a VGG with BatchNorm).
fn check_arch(path: &str, info: &Architecture, wanted: &str, what: &str) -> Result<(), LoadError> {
    let normalized: String = wanted.trim().to_ascii_lowercase().chars().filter(|c| *c != '-' && *c != '_').collect();
    let found = info.name();
    let matches = match info {
        Architecture::Vgg(vgg) if vgg.batch_norm => normalized == found || normalized == format!("{found}bn"),
        _ => normalized == found,
    };
    if matches {
        Ok(())
    } else {
        Err(LoadError::Architecture {
            path: path.to_string(),
            message: format!("{what}, but the tensors form a {}", info.describe()),
        })
    }
}

/// Picks mean and std: options, then preset, then metadata; an error if one is left unknown.
fn resolve_normalization(
    path: &str,
    metadata: &BTreeMap<String, String>,
    options: &LoadOptions,
) -> Result<(Normalization, NormalizationSource), LoadError> {
    let from_metadata = |key: &str, std: bool| -> Result<Option<[f32; 3]>, LoadError> {
        let Some(value) = metadata.get(key) else { return Ok(None) };
        let parsed = if std { normalize::parse_std(value) } else { normalize::parse_mean(value) };
        parsed.map(Some).map_err(|e| LoadError::Metadata {
            path: path.to_string(),
            key: key.to_string(),
            value: value.clone(),
            message: e.to_string(),
        })
    };
    let preset = options.preset.map(NormalizePreset::normalization);

    // (value, came from options, came from preset)
    let mean = match (options.mean, preset) {
        (Some(m), _) => Some((m, true, false)),
        (None, Some(p)) => Some((p.mean, false, true)),
        (None, None) => from_metadata(metadata_keys::NORMALIZE_MEAN, false)?.map(|m| (m, false, false)),
    };
    let std = match (options.std, preset) {
        (Some(s), _) => Some((s, true, false)),
        (None, Some(p)) => Some((p.std, false, true)),
        (None, None) => from_metadata(metadata_keys::NORMALIZE_STD, true)?.map(|s| (s, false, false)),
    };
    let missing = match (&mean, &std) {
        (None, None) => Some(format!("{} / {}", metadata_keys::NORMALIZE_MEAN, metadata_keys::NORMALIZE_STD)),
        (None, Some(_)) => Some(metadata_keys::NORMALIZE_MEAN.to_string()),
        (Some(_), None) => Some(metadata_keys::NORMALIZE_STD.to_string()),
        _ => None,
    };
    let (Some((mean, mean_option, mean_preset)), Some((std, std_option, std_preset))) = (mean, std) else {
        return Err(LoadError::NoNormalization { path: path.to_string(), missing: missing.unwrap_or_default() });
    };
    let normalization =
        Normalization::new(mean, std).map_err(|source| LoadError::Normalization { path: path.to_string(), source })?;
    let source = match (options.preset, mean_option || std_option, mean_preset && std_preset) {
        (_, true, _) => NormalizationSource::Options,
        (Some(p), false, true) => NormalizationSource::Preset(p),
        _ => NormalizationSource::Metadata,
    };
    Ok((normalization, source))
}
