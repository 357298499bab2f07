//! The converted-SNN file: a safetensors file holding a [`SpikingNetwork`] (folded weights,
//! thresholds, graph structure and simulation settings) so simulation needs no checkpoint.
//!
//! # Format `spikeconv-snn`, version 1
//! Tensors, all little-endian F32, named after graph nodes:
//! - convolution `N`: `N.weight` `[out, in, k, k]` (OIHW), `N.bias` `[out]` when it has one;
//! - linear `N`: `N.weight` `[out, in]`, `N.bias` `[out]`;
//! - leftover batch norm `N`: `N.weight` (gamma), `N.bias` (beta), `N.running_mean`,
//!   `N.running_var`, each `[channels]`;
//! - IF layer (ReLU node) `N`: `N.threshold`, `[1]` for a layer threshold, `[channels]` for
//!   per-channel thresholds (which one is recorded in the graph JSON); optionally
//!   `N.v_init` `[1]`, the layer's own initial membrane fraction in [0, 1] (absent: the
//!   metadata's `v_init`); optionally `N.bias_current` `[channels]`, the layer's constant
//!   input current per channel (absent: 0).
//!
//! `__metadata__` (all strings): `format` = `spikeconv-snn`, `format_version` = `1`,
//! `graph` (JSON: `{"nodes": [{"name", "op": {"kind", ...hyper-parameters}, "inputs",
//! "shape"}], "output"}`), `v_init`, `threshold_method`, `tuned_for_timesteps` (JSON: a
//! number or `null`), `normalization` (JSON: `{"mean": [...], "std": [...]}`, one value per
//! input channel), `source_model` (the checkpoint it was converted from) and `max_pooling`
//! (`gated`, `avg` or `none`: what became of the source network's max pools, see
//! [`super::pooling`]; absent in files without pools) and `neuron` (`if` or `signed`, see
//! [`super::neuron`]; absent in files written before signed neurons: `if`). Pooling nodes (`max_pool2d`,
//! `avg_pool2d`: `kernel`, `stride`, `padding`) have no tensors; a `max_pool2d` node is
//! always the gated max.
//!
//! Reading validates everything (files are user input): format and version, JSON,
//! every tensor's presence, dtype and shape, no unexpected tensor, graph shapes, and the
//! thresholds and `v_init` by the same rules as [`convert`], bias currents one finite value
//! per channel. Errors name the file.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::model::graph::{BatchNorm, Conv2d, Graph, Linear, Node, NodeId, Op, Pool2d, Shape};

use super::pooling::{self, MaxPoolStrategy};
use super::snn::{convert, validate_bias_current, validate_v_init, SpikingNetwork};
use super::threshold::Thresholds;
use super::ConvertError;

/// Value of the `format` metadata key.
pub const FORMAT: &str = crate::model::checkpoint::SNN_FILE_FORMAT;
/// Value of the `format_version` metadata key this build writes and reads.
pub const FORMAT_VERSION: &str = "1";

/// The per-channel input normalization `(x - mean) / std` the network was trained with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputNormalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl InputNormalization {
    /// Normalization of three-channel (RGB) images.
    pub fn rgb(mean: [f32; 3], std: [f32; 3]) -> Self {
        Self { mean: mean.to_vec(), std: std.to_vec() }
    }
}

/// Contents of a converted-SNN file.
#[derive(Clone, Debug, PartialEq)]
pub struct SnnFile {
    pub snn: SpikingNetwork,
    /// Normalization to apply to images before simulation.
    pub normalization: InputNormalization,
    /// Path of the checkpoint the network was converted from.
    pub source_model: String,
}

/// Whether thresholds are per layer or per channel, as recorded in the graph JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ThresholdKind {
    Layer,
    Channel,
}

/// An op's kind and hyper-parameters; weights live in tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum OpRecord {
    Input,
    Conv2d { out_channels: usize, in_channels: usize, kernel: usize, stride: usize, padding: usize, bias: bool },
    BatchNorm { eps: f32 },
    Relu { thresholds: ThresholdKind },
    Add,
    ShortcutA { stride: usize, pad_before: usize, pad_after: usize },
    MaxPool2d { kernel: usize, stride: usize, padding: usize },
    AvgPool2d { kernel: usize, stride: usize, padding: usize },
    GlobalAvgPool,
    Linear { in_features: usize, out_features: usize },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeRecord {
    name: String,
    op: OpRecord,
    inputs: Vec<NodeId>,
    shape: Shape,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphRecord {
    nodes: Vec<NodeRecord>,
    output: NodeId,
}

/// Writes `file` to `path` in the format above.
pub fn write_snn(path: &Path, file: &SnnFile) -> Result<(), ConvertError> {
    let fail = |message: String| ConvertError::SnnFile { path: path.display().to_string(), message };
    let bytes = to_bytes(file).map_err(fail)?;
    std::fs::write(path, bytes).map_err(|e| fail(format!("cannot write: {e}")))
}

/// Reads and validates a converted-SNN file.
pub fn read_snn(path: &Path) -> Result<SnnFile, ConvertError> {
    let fail = |message: String| ConvertError::SnnFile { path: path.display().to_string(), message };
    let bytes = crate::io::read_file(path, crate::io::MAX_MODEL_BYTES).map_err(|e| ConvertError::SnnFile {
        path: path.display().to_string(),
        message: strip_path(&e.to_string(), path),
    })?;
    from_bytes(&bytes).map_err(fail)
}

/// The same file with its JSON header's keys sorted (the safetensors crate writes
/// `__metadata__` in hash-map order, which differs from run to run), padded with spaces to
/// 8 bytes as the format wants: one network, one file, byte for byte.
fn canonical_header(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let length = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| "short file")?) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + length]).map_err(|e| format!("cannot reorder the header: {e}"))?;
    let mut text = serde_json::to_string(&header).map_err(|e| format!("cannot reorder the header: {e}"))?;
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - length);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + length..]);
    Ok(out)
}

/// `message` without the leading `path: ` (the error adds it again).
fn strip_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

/// Serializes `file`; fails when two tensors would get the same name (duplicate node names).
pub fn to_bytes(file: &SnnFile) -> Result<Vec<u8>, String> {
    let snn = &file.snn;
    let graph = &snn.graph;
    let mut tensors: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
    let mut nodes = Vec::with_capacity(graph.nodes().len());
    for (id, node) in graph.nodes().iter().enumerate() {
        let name = &node.name;
        let op = match &node.op {
            Op::Input => OpRecord::Input,
            Op::Conv2d(c) => {
                tensors.push((
                    format!("{name}.weight"),
                    vec![c.out_channels, c.in_channels, c.kernel, c.kernel],
                    &c.weight,
                ));
                if let Some(bias) = &c.bias {
                    tensors.push((format!("{name}.bias"), vec![c.out_channels], bias));
                }
                OpRecord::Conv2d {
                    out_channels: c.out_channels,
                    in_channels: c.in_channels,
                    kernel: c.kernel,
                    stride: c.stride,
                    padding: c.padding,
                    bias: c.bias.is_some(),
                }
            }
            Op::BatchNorm(bn) => {
                for (suffix, values) in batch_norm_tensors(bn) {
                    tensors.push((format!("{name}.{suffix}"), vec![values.len()], values));
                }
                OpRecord::BatchNorm { eps: bn.eps }
            }
            Op::Relu => {
                let layer = snn.layer_of(id).map(|i| &snn.layers[i]).ok_or_else(|| {
                    format!("ReLU node `{name}` has no IF layer; convert the graph before writing it")
                })?;
                let values = layer.thresholds.values();
                tensors.push((format!("{name}.threshold"), vec![values.len()], values));
                if let Some(v_init) = &layer.v_init {
                    tensors.push((format!("{name}.v_init"), vec![1], std::slice::from_ref(v_init)));
                }
                if let Some(bias) = &layer.bias_current {
                    tensors.push((format!("{name}.bias_current"), vec![bias.len()], bias));
                }
                let thresholds = match layer.thresholds {
                    Thresholds::Layer(_) => ThresholdKind::Layer,
                    Thresholds::Channel(_) => ThresholdKind::Channel,
                };
                OpRecord::Relu { thresholds }
            }
            Op::Add => OpRecord::Add,
            Op::ShortcutA { stride, pad_before, pad_after } => {
                OpRecord::ShortcutA { stride: *stride, pad_before: *pad_before, pad_after: *pad_after }
            }
            &Op::MaxPool2d(Pool2d { kernel, stride, padding }) => OpRecord::MaxPool2d { kernel, stride, padding },
            &Op::AvgPool2d(Pool2d { kernel, stride, padding }) => OpRecord::AvgPool2d { kernel, stride, padding },
            Op::GlobalAvgPool => OpRecord::GlobalAvgPool,
            Op::Linear(l) => {
                tensors.push((format!("{name}.weight"), vec![l.out_features, l.in_features], &l.weight));
                tensors.push((format!("{name}.bias"), vec![l.out_features], &l.bias));
                OpRecord::Linear { in_features: l.in_features, out_features: l.out_features }
            }
        };
        nodes.push(NodeRecord { name: name.clone(), op, inputs: node.inputs.clone(), shape: node.shape });
    }
    let mut seen = BTreeSet::new();
    if let Some((duplicate, _, _)) = tensors.iter().find(|(name, _, _)| !seen.insert(name.as_str())) {
        return Err(format!("two nodes would both write tensor `{duplicate}`; node names must be unique"));
    }
    let record = GraphRecord { nodes, output: graph.output() };
    let metadata: HashMap<String, String> = [
        ("format", FORMAT.to_string()),
        ("format_version", FORMAT_VERSION.to_string()),
        ("graph", json(&record)?),
        ("v_init", snn.v_init.to_string()),
        ("threshold_method", snn.threshold_method.clone()),
        ("tuned_for_timesteps", json(&snn.tuned_for_timesteps)?),
        ("normalization", json(&file.normalization)?),
        ("source_model", file.source_model.clone()),
        ("max_pooling", snn.max_pooling.map_or("none", MaxPoolStrategy::name).to_string()),
        ("neuron", snn.neuron.name().to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value))
    .collect();
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, shape, values)| (name, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let views = data
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| format!("cannot serialize: {e}"))?;
    canonical_header(bytes)
}

/// JSON text of a metadata value.
fn json<T: Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("cannot encode metadata: {e}"))
}

/// A name from the file that reaches terminals, CSV and JSON: non-empty, at most 256
/// characters, no control characters.
fn printable_name(key: &str, value: &str) -> Result<String, String> {
    if value.trim().is_empty() || value.chars().count() > 256 || value.chars().any(char::is_control) {
        return Err(format!(
            "metadata `{key}` = {value:?} is not a printable name (non-empty, at most 256 characters, no control characters)"
        ));
    }
    Ok(value.to_string())
}

fn batch_norm_tensors(bn: &BatchNorm) -> [(&'static str, &[f32]); 4] {
    [("weight", &bn.gamma), ("bias", &bn.beta), ("running_mean", &bn.mean), ("running_var", &bn.var)]
}

/// Parses and validates a converted-SNN file's bytes; errors are one line, without the path.
pub fn from_bytes(bytes: &[u8]) -> Result<SnnFile, String> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| match crate::model::checkpoint::diagnose_header(bytes) {
            Some((tensor, message)) => format!("tensor `{tensor}` is corrupt: {message}"),
            None => format!("not a safetensors file: {e}"),
        })?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let key = |name: &str| -> Result<&str, String> {
        metadata
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("metadata key `{name}` is missing; is this a converted SNN file (format {FORMAT})?"))
    };
    let format = key("format")?;
    if format != FORMAT {
        return Err(format!(
            "format is `{format}`, expected `{FORMAT}` (is this a checkpoint rather than a converted SNN?)"
        ));
    }
    let version = key("format_version")?;
    if version != FORMAT_VERSION {
        return Err(format!("format_version `{version}` is not supported: this build reads version {FORMAT_VERSION}"));
    }
    let record: GraphRecord =
        serde_json::from_str(key("graph")?).map_err(|e| format!("metadata `graph` is not valid: {e}"))?;
    let v_init_text = key("v_init")?;
    let v_init: f32 =
        v_init_text.trim().parse().map_err(|_| format!("metadata `v_init` = `{v_init_text}` is not a number"))?;
    let threshold_method = printable_name("threshold_method", key("threshold_method")?)?;
    let tuned_for_timesteps: Option<usize> = serde_json::from_str(key("tuned_for_timesteps")?)
        .map_err(|e| format!("metadata `tuned_for_timesteps` is not a count or null: {e}"))?;
    let normalization: InputNormalization = serde_json::from_str(key("normalization")?)
        .map_err(|e| format!("metadata `normalization` is not valid: {e}"))?;
    let source_model = printable_name("source_model", key("source_model")?)?;

    let tensors = SafeTensors::deserialize(bytes).map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let mut used = BTreeSet::new();
    let mut read = |name: String, shape: &[usize]| -> Result<Vec<f32>, String> {
        let view = tensors.tensor(&name).map_err(|_| format!("missing tensor `{name}` (expected shape {shape:?})"))?;
        if view.dtype() != Dtype::F32 {
            return Err(format!("tensor `{name}` has dtype {:?}, expected F32", view.dtype()));
        }
        if view.shape() != shape {
            return Err(format!("tensor `{name}` has shape {:?}, expected {shape:?}", view.shape()));
        }
        let values: Vec<f32> =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(format!("tensor `{name}` element {index} is {}; every value must be finite", values[index]));
        }
        used.insert(name);
        Ok(values)
    };

    let (graph, thresholds) = rebuild_graph(&record, &mut read)?;
    // A layer's own initial membrane fraction (tuned with its threshold) is optional.
    let mut layer_v_init = Vec::new();
    for (node, _) in &thresholds {
        let name = format!("{}.v_init", graph.node(*node).name);
        if tensors.tensor(&name).is_ok() {
            let value = read(name.clone(), &[1])?[0];
            validate_v_init(value).map_err(|e| format!("tensor `{name}`: {e}"))?;
            layer_v_init.push((*node, value));
        }
    }
    // So is its bias current, one value per channel.
    let mut layer_bias = Vec::new();
    for (node, _) in &thresholds {
        let node_name = &graph.node(*node).name;
        let name = format!("{node_name}.bias_current");
        if tensors.tensor(&name).is_ok() {
            let channels = graph.node(*node).shape.channels;
            let values = read(name.clone(), &[channels])?;
            validate_bias_current(node_name, &values, channels).map_err(|e| format!("tensor `{name}`: {e}"))?;
            layer_bias.push((*node, values));
        }
    }
    if let Some(extra) = tensors.names().into_iter().find(|name| !used.contains(*name)) {
        return Err(format!("unexpected tensor `{extra}`: no graph node uses it"));
    }
    let channels = graph.input_shape().channels;
    if normalization.mean.len() != channels || normalization.std.len() != channels {
        return Err(format!(
            "normalization has {} means and {} stds, the input has {channels} channels",
            normalization.mean.len(),
            normalization.std.len()
        ));
    }
    if !normalization.mean.iter().all(|m| m.is_finite()) || !normalization.std.iter().all(|s| s.is_finite() && *s > 0.0)
    {
        return Err("normalization means must be finite and stds positive and finite".into());
    }
    let mut snn = convert(&graph, thresholds, v_init).map_err(|e| e.to_string())?;
    for (node, value) in layer_v_init {
        let index = snn.layer_of(node).expect("every threshold names an IF layer");
        snn.layers[index].v_init = Some(value);
    }
    for (node, values) in layer_bias {
        let index = snn.layer_of(node).expect("every threshold names an IF layer");
        snn.layers[index].bias_current = Some(values);
    }
    snn.threshold_method = threshold_method;
    snn.tuned_for_timesteps = tuned_for_timesteps;
    snn.max_pooling = read_max_pooling(metadata.get("max_pooling").map(String::as_str), &snn.graph)?;
    if let Some(neuron) = metadata.get("neuron") {
        snn.neuron = neuron.parse().map_err(|e| format!("metadata `neuron`: {e}"))?;
    }
    Ok(SnnFile { snn, normalization, source_model })
}

/// The `max_pooling` metadata checked against the graph: `gated` needs max-pool nodes,
/// `avg` and `none` allow none; absent means what the graph shows (files without pools).
fn read_max_pooling(value: Option<&str>, graph: &Graph) -> Result<Option<MaxPoolStrategy>, String> {
    let max_pools = pooling::max_pools(graph);
    let stated = match value.map(str::trim) {
        None => return Ok((max_pools > 0).then_some(MaxPoolStrategy::Gated)),
        Some("none") => None,
        Some(name) => {
            Some(name.parse::<MaxPoolStrategy>().map_err(|e| format!("metadata `max_pooling`: {e} or none"))?)
        }
    };
    match (stated, max_pools) {
        (Some(MaxPoolStrategy::Gated), 0) => {
            Err("metadata `max_pooling` = gated, but the graph has no max_pool2d node".into())
        }
        (None | Some(MaxPoolStrategy::Avg), n) if n > 0 => Err(format!(
            "metadata `max_pooling` = {}, but the graph has {n} max_pool2d node(s) (which run as gated max pools)",
            value.unwrap_or_default().trim()
        )),
        _ => Ok(stated),
    }
}

/// Largest size or hyper-parameter accepted from a file: keeps arithmetic on hand-edited
/// values far from overflow.
const MAX_SIZE: usize = 1 << 20;

fn check_sizes(record: &GraphRecord) -> Result<(), String> {
    for node in &record.nodes {
        let mut sizes = vec![node.shape.channels, node.shape.height, node.shape.width];
        match node.op {
            OpRecord::Conv2d { out_channels, in_channels, kernel, stride, padding, .. } => {
                sizes.extend([out_channels, in_channels, kernel, stride, padding])
            }
            OpRecord::MaxPool2d { kernel, stride, padding } | OpRecord::AvgPool2d { kernel, stride, padding } => {
                sizes.extend([kernel, stride, padding])
            }
            OpRecord::ShortcutA { stride, pad_before, pad_after } => sizes.extend([stride, pad_before, pad_after]),
            OpRecord::Linear { in_features, out_features } => sizes.extend([in_features, out_features]),
            _ => {}
        }
        if let Some(size) = sizes.into_iter().find(|&s| s > MAX_SIZE) {
            return Err(format!("graph node `{}` has size {size}, above the limit {MAX_SIZE}", node.name));
        }
    }
    Ok(())
}

type ReadTensor<'r> = dyn FnMut(String, &[usize]) -> Result<Vec<f32>, String> + 'r;

/// Rebuilds the graph node by node (so shapes are re-inferred and checked) and collects the
/// IF layers' thresholds.
fn rebuild_graph(
    record: &GraphRecord,
    read: &mut ReadTensor<'_>,
) -> Result<(Graph, Vec<(NodeId, Thresholds)>), String> {
    let Some(first) = record.nodes.first() else {
        return Err("graph has no nodes".into());
    };
    check_sizes(record)?;
    if first.op != OpRecord::Input || !first.inputs.is_empty() {
        return Err("graph node 0 must be the input, with no inputs".into());
    }
    let mut graph = Graph::new(first.shape);
    let mut thresholds = Vec::new();
    for (id, node) in record.nodes.iter().enumerate().skip(1) {
        let name = &node.name;
        printable_name(&format!("graph node {id} name"), name)?;
        let op = match &node.op {
            OpRecord::Input => return Err(format!("graph node {id} (`{name}`) is a second input")),
            &OpRecord::Conv2d { out_channels, in_channels, kernel, stride, padding, bias } => Op::Conv2d(Conv2d {
                out_channels,
                in_channels,
                kernel,
                stride,
                padding,
                weight: read(format!("{name}.weight"), &[out_channels, in_channels, kernel, kernel])?,
                bias: if bias { Some(read(format!("{name}.bias"), &[out_channels])?) } else { None },
            }),
            &OpRecord::BatchNorm { eps } => {
                let channels = node.inputs.first().and_then(|&i| record.nodes.get(i)).map_or(0, |n| n.shape.channels);
                let mut part = |suffix: &str| read(format!("{name}.{suffix}"), &[channels]);
                let bn = BatchNorm {
                    gamma: part("weight")?,
                    beta: part("bias")?,
                    mean: part("running_mean")?,
                    var: part("running_var")?,
                    eps,
                };
                if let Some(channel) = bn.var.iter().position(|v| !(v + bn.eps > 0.0 && (v + bn.eps).is_finite())) {
                    return Err(format!(
                        "tensor `{name}.running_var` element {channel} is {} with eps {}: variance + eps must be > 0",
                        bn.var[channel], bn.eps
                    ));
                }
                Op::BatchNorm(bn)
            }
            OpRecord::Relu { thresholds: kind } => {
                let values = match kind {
                    ThresholdKind::Layer => Thresholds::Layer(read(format!("{name}.threshold"), &[1])?[0]),
                    ThresholdKind::Channel => {
                        Thresholds::Channel(read(format!("{name}.threshold"), &[node.shape.channels])?)
                    }
                };
                thresholds.push((id, values));
                Op::Relu
            }
            OpRecord::Add => Op::Add,
            &OpRecord::ShortcutA { stride, pad_before, pad_after } => Op::ShortcutA { stride, pad_before, pad_after },
            &OpRecord::MaxPool2d { kernel, stride, padding } => Op::MaxPool2d(Pool2d { kernel, stride, padding }),
            &OpRecord::AvgPool2d { kernel, stride, padding } => Op::AvgPool2d(Pool2d { kernel, stride, padding }),
            OpRecord::GlobalAvgPool => Op::GlobalAvgPool,
            &OpRecord::Linear { in_features, out_features } => Op::Linear(Linear {
                in_features,
                out_features,
                weight: read(format!("{name}.weight"), &[out_features, in_features])?,
                bias: read(format!("{name}.bias"), &[out_features])?,
            }),
        };
        let pushed = graph.push(name.clone(), op, &node.inputs).map_err(|e| e.to_string())?;
        let inferred = graph.node(pushed).shape;
        if inferred != node.shape {
            return Err(format!("graph node `{name}` records shape {}, its inputs give {inferred}", node.shape));
        }
    }
    if record.output >= record.nodes.len() {
        return Err(format!("graph output {} is not a node (the graph has {})", record.output, record.nodes.len()));
    }
    // `Graph::new` names the input `input`; keep the recorded name.
    let mut nodes: Vec<Node> = graph.nodes().to_vec();
    nodes[0].name = first.name.clone();
    Ok((Graph::from_parts(nodes, record.output), thresholds))
}
