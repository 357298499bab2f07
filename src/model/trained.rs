//! Activations trained for conversion: the per-layer (or per-channel) clip level λ that a
//! quantization-aware network (QCFS, Bu et al., ICLR 2022: `h(x) = λ · clip(⌊x·L/λ + ½⌋, 0, L) / L`)
//! learned for each ReLU, stored beside the layer as `<relu node>.lambda` (`relu.lambda`,
//! `layer1.0.relu1.lambda`, ...; shape `[1]` or `[channels]`), with metadata `activation`
//! and `qcfs_levels`. The `trained` threshold method converts with θ = λ.
//!
//! A checkpoint without λ tensors loads exactly as before; one with them must give every
//! IF layer a valid λ, and nothing else.

use std::collections::BTreeMap;

use super::checkpoint::Checkpoint;
use super::graph::{Graph, Op};
use super::LoadError;

/// Tensor-name suffix of a trained λ.
pub const LAMBDA_SUFFIX: &str = ".lambda";
/// Metadata key naming the trained activation (`qcfs`).
pub const ACTIVATION_KEY: &str = "activation";
/// Metadata key with the activation's number of levels L.
pub const LEVELS_KEY: &str = "qcfs_levels";

/// The trained clip levels of a quantization-aware network.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainedActivation {
    /// The activation's name from the metadata (`qcfs`), `trained` when the file has λ but no name.
    pub activation: String,
    /// The number of quantization levels L the network was trained with, if the file says.
    pub levels: Option<usize>,
    /// λ per ReLU node name: one value (per layer) or one per channel, all positive and finite.
    pub lambdas: BTreeMap<String, Vec<f32>>,
}

impl TrainedActivation {
    /// `qcfs:L` (or the activation's bare name), for reports.
    pub fn describe(&self) -> String {
        match self.levels {
            Some(levels) => format!("{}:{levels}", self.activation),
            None => self.activation.clone(),
        }
    }
}

/// Reads the λ of every ReLU node of `graph` from `checkpoint` (marking them used), or
/// `None` when the file has no λ tensor at all. Errors name the tensor: a λ that is not
/// positive and finite, of the wrong shape, missing for some IF layer while others have
/// one, or sitting on a node that is not an IF layer.
pub fn read(checkpoint: &mut Checkpoint, graph: &Graph) -> Result<Option<TrainedActivation>, LoadError> {
    let path = checkpoint.path().to_string();
    let stray: Vec<String> =
        checkpoint.names().into_iter().filter(|n| n.ends_with(LAMBDA_SUFFIX)).map(String::from).collect();
    let metadata = checkpoint.metadata().clone();
    let metadata_error = |key: &str, message: String| LoadError::Metadata {
        path: path.clone(),
        key: key.to_string(),
        value: metadata.get(key).cloned().unwrap_or_default(),
        message,
    };
    let levels = match metadata.get(LEVELS_KEY) {
        None => None,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(levels) if levels >= 1 => Some(levels),
            _ => return Err(metadata_error(LEVELS_KEY, "not a whole number of levels >= 1".into())),
        },
    };
    let activation = metadata.get(ACTIVATION_KEY).map(|a| a.trim().to_string());
    if stray.is_empty() {
        return match activation.as_deref() {
            None | Some("relu") => Ok(None),
            Some(_) => Err(metadata_error(
                ACTIVATION_KEY,
                "names a trained activation but the file has no *.lambda tensors".into(),
            )),
        };
    }
    if let Some(name) = activation
        .as_deref()
        .filter(|a| !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || a.is_empty())
    {
        return Err(metadata_error(ACTIVATION_KEY, format!("{name:?} is not an activation name")));
    }

    let mut lambdas = BTreeMap::new();
    let mut missing = Vec::new();
    for node in graph.nodes().iter().filter(|n| matches!(n.op, Op::Relu)) {
        let name = format!("{}{LAMBDA_SUFFIX}", node.name);
        if !checkpoint.contains(&name) {
            missing.push(checkpoint.stored_name(&name));
            continue;
        }
        let channels = node.shape.channels;
        let shape = checkpoint.shape(&name)?.to_vec();
        let expected: &[usize] = if shape == [channels] { &[channels] } else { &[1] };
        let values = checkpoint.tensor(&name, expected)?;
        if let Some((index, value)) = values.iter().enumerate().find(|(_, v)| **v <= 0.0) {
            return Err(LoadError::BadValues {
                path: path.clone(),
                tensor: checkpoint.stored_name(&name),
                message: format!("element {index} is {value}; a trained threshold lambda must be positive"),
            });
        }
        lambdas.insert(node.name.clone(), values);
    }
    if let Some(first) = stray.iter().find(|n| !lambdas.contains_key(n.trim_end_matches(LAMBDA_SUFFIX))) {
        return Err(LoadError::BadValues {
            path,
            tensor: checkpoint.stored_name(first),
            message:
                "no IF neuron follows this layer (a lambda belongs to a ReLU: relu, layerK.i.relu1, layerK.i.relu2)"
                    .into(),
        });
    }
    if let Some(first) = missing.first() {
        return Err(LoadError::MissingTensor {
            path,
            tensor: format!(
                "{first} ({} of {} IF layers have no lambda while others have one)",
                missing.len(),
                missing.len() + lambdas.len()
            ),
        });
    }
    Ok(Some(TrainedActivation { activation: activation.unwrap_or_else(|| "trained".into()), levels, lambdas }))
}
