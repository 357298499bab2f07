//! Maps the PyTorch `state_dict` of a CIFAR VGG (Simonyan & Zisserman, 2015, as the common
//! CIFAR code writes it) onto a [`Graph`], reading the configuration from the tensors.
//!
//! Recognized layout (after the `module.` prefix is removed):
//! - `features` is an `nn.Sequential` of `Conv2d(3x3, padding 1)` with a bias,
//!   optionally `BatchNorm2d`, `ReLU`, and parameter-free 2x2 pools with stride 2 between
//!   them. Only the convolutions and BatchNorms have tensors (`features.N.weight` 4-D for a
//!   conv, 1-D with `running_mean` / `running_var` for a BatchNorm), so a pool is seen as
//!   a gap in the indices: with BatchNorm a conv at `N` has its BatchNorm at `N+1`, its
//!   ReLU at `N+2`, and the next conv at `N+3`, or at `N+4` after a pool. Pools after the
//!   last conv leave no gap; their number follows from the classifier's input width
//!   (`C·H·W` of the flattened map). Whether the pools are max or average pools is not in
//!   the tensors: the metadata `pool` says (`max` when absent, as in the common code).
//! - the classifier: one `classifier.{weight,bias}` (kuangliu/pytorch-cifar), or an
//!   `nn.Sequential` with linear layers `classifier.N` and a ReLU between two of them
//!   (dropout is the identity at inference), as chengyangfu/pytorch-vgg-cifar10
//!   (`classifier.1`, `.4`, `.6`) and torchvision (`.0`, `.3`, `.6`) write it.
//! - configurations: 8, 10, 13 or 16 convolutions, VGG-11, -13, -16 or -19.

use std::collections::BTreeMap;

use super::checkpoint::Checkpoint;
use super::graph::{Conv2d, Graph, Linear, Op, Pool2d};
use super::resnet::{leading, push_bn, wrong_shape, INPUT_SHAPE};
use super::trained::TrainedActivation;
use super::{LoadError, PoolKind};

/// Architecture facts of a VGG read from its tensors.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VggInfo {
    /// 11, 13, 16 or 19: the convolutions plus three (the configurations' names count three
    /// linear layers even where the CIFAR code has one).
    pub depth: usize,
    /// Each layer of `features` as VGG configurations write it: a conv's output channels,
    /// or `None` for a pool (`M`).
    pub config: Vec<Option<usize>>,
    pub batch_norm: bool,
    pub pool: PoolKind,
    /// Output features of each linear layer of the classifier.
    pub classifier: Vec<usize>,
    pub num_classes: usize,
}

impl VggInfo {
    /// `64-64-M-128-...` as VGG papers write a configuration.
    pub fn config_text(&self) -> String {
        let parts: Vec<String> = self.config.iter().map(|c| c.map_or("M".to_string(), |w| w.to_string())).collect();
        parts.join("-")
    }
}

/// Whether the checkpoint's tensors look like a VGG (a `features.*` tensor).
pub fn is_vgg(checkpoint: &Checkpoint) -> bool {
    checkpoint.names().iter().any(|name| name.starts_with("features."))
}

/// One parameterized entry of `features`.
enum Feature {
    Conv { out_channels: usize, in_channels: usize, kernel: usize },
    BatchNorm,
}

/// Builds the graph of the VGG stored in `checkpoint`, its pools of kind `pool`. Errors name
/// the file and the tensor that broke an expectation.
pub fn build(
    checkpoint: &mut Checkpoint,
    pool: PoolKind,
) -> Result<(Graph, VggInfo, Option<TrainedActivation>), LoadError> {
    let path = checkpoint.path().to_string();
    let arch = |message: String| LoadError::Architecture { path: path.clone(), message };
    let graph_error = |source| LoadError::Graph { path: path.clone(), source };

    let features = discover_features(checkpoint).map_err(&arch)?;
    let batch_norm = features.values().any(|f| matches!(f, Feature::BatchNorm));
    let convs = features.values().filter(|f| matches!(f, Feature::Conv { .. })).count();
    let depth = match convs {
        8 => 11,
        10 => 13,
        13 => 16,
        16 => 19,
        n => {
            return Err(arch(format!(
                "{n} convolutions in features.*: a VGG has 8, 10, 13 or 16 (VGG-11, -13, -16, -19)"
            )))
        }
    };

    let mut graph = Graph::new(INPUT_SHAPE);
    let mut x = graph.input();
    let mut config = Vec::new();
    let window = Pool2d { kernel: 2, stride: 2, padding: 0 };
    // The index the next entry sits at if no pool comes between.
    let mut expected = 0;
    for (&index, feature) in &features {
        let name = format!("features.{index}");
        match *feature {
            Feature::Conv { out_channels, in_channels, kernel } => {
                let first = config.is_empty();
                let gap =
                    index.checked_sub(expected).filter(|&gap| gap == 0 || (gap == 1 && !first)).ok_or_else(|| {
                        arch(format!(
                            "{name}.weight: a convolution at index {index}, expected one at {expected}{}",
                            if first { String::new() } else { format!(" (or {} after a pool)", expected + 1) }
                        ))
                    })?;
                if gap == 1 {
                    x = graph.push(format!("features.{}", index - 1), pool.op(window), &[x]).map_err(graph_error)?;
                    config.push(None);
                }
                let channels = graph.node(x).shape.channels;
                if in_channels != channels || kernel != 3 {
                    return Err(wrong_shape(
                        checkpoint,
                        &format!("{name}.weight"),
                        &[out_channels, in_channels, kernel, kernel],
                        &[out_channels, channels, 3, 3],
                    ));
                }
                let weight = checkpoint.tensor(&format!("{name}.weight"), &[out_channels, channels, 3, 3])?;
                let bias = checkpoint.tensor(&format!("{name}.bias"), &[out_channels])?;
                let conv = Conv2d {
                    out_channels,
                    in_channels: channels,
                    kernel: 3,
                    stride: 1,
                    padding: 1,
                    weight,
                    bias: Some(bias),
                };
                x = graph.push(name, Op::Conv2d(conv), &[x]).map_err(graph_error)?;
                config.push(Some(out_channels));
                let relu = if batch_norm {
                    let bn = index + 1;
                    if !matches!(features.get(&bn), Some(Feature::BatchNorm)) {
                        return Err(LoadError::MissingTensor {
                            path: path.clone(),
                            tensor: checkpoint.stored_name(&format!("features.{bn}.running_mean")),
                        });
                    }
                    x = push_bn(&mut graph, checkpoint, &format!("features.{bn}"), out_channels, x)?;
                    bn + 1
                } else {
                    index + 1
                };
                x = graph.push(format!("features.{relu}"), Op::Relu, &[x]).map_err(graph_error)?;
                expected = relu + 1;
            }
            // Read with the convolution before it, whose ReLU sits right after it.
            Feature::BatchNorm if index + 2 == expected => {}
            Feature::BatchNorm => {
                return Err(arch(format!("{name} is a BatchNorm that follows no convolution")));
            }
        }
    }

    // The classifier, and the pools after the last conv that its input width implies.
    let linears = discover_classifier(checkpoint).map_err(&arch)?;
    let first = linears.first().expect("discover_classifier finds at least one");
    let first_shape = checkpoint.shape(&format!("{first}.weight"))?.to_vec();
    let [_, in_features] = first_shape[..] else {
        let expected = [leading(&first_shape).max(1), graph.node(x).shape.len()];
        return Err(wrong_shape(checkpoint, &format!("{first}.weight"), &first_shape, &expected));
    };
    let mut trailing = 0;
    while graph.node(x).shape.len() > in_features && graph.node(x).shape.height >= 2 {
        let name = format!("features.{}", expected + trailing);
        x = graph.push(name, pool.op(window), &[x]).map_err(graph_error)?;
        config.push(None);
        trailing += 1;
    }
    let mut widths = Vec::with_capacity(linears.len());
    for (i, linear) in linears.iter().enumerate() {
        if i > 0 {
            x = graph.push(format!("{linear}.relu"), Op::Relu, &[x]).map_err(graph_error)?;
        }
        let in_features = graph.node(x).shape.len();
        let weight_name = format!("{linear}.weight");
        let shape = checkpoint.shape(&weight_name)?.to_vec();
        let out_features = leading(&shape).max(1);
        let weight = checkpoint.tensor(&weight_name, &[out_features, in_features])?;
        let bias = checkpoint.tensor(&format!("{linear}.bias"), &[out_features])?;
        let layer = Linear { in_features, out_features, weight, bias };
        x = graph.push(linear.clone(), Op::Linear(layer), &[x]).map_err(graph_error)?;
        widths.push(out_features);
    }
    let trained = super::trained::read(checkpoint, &graph)?;
    let unused = checkpoint.unused();
    if let Some(first) = unused.first() {
        return Err(LoadError::UnexpectedTensors { path, count: unused.len(), first: first.clone() });
    }
    let num_classes = *widths.last().expect("at least one linear layer");
    let info = VggInfo { depth, config, batch_norm, pool, classifier: widths, num_classes };
    Ok((graph, info, trained))
}

/// Every parameterized entry of `features` by index.
fn discover_features(checkpoint: &Checkpoint) -> Result<BTreeMap<usize, Feature>, String> {
    let mut features = BTreeMap::new();
    for name in checkpoint.names() {
        let Some(rest) = name.strip_prefix("features.") else { continue };
        let Some((index, param)) = rest.split_once('.') else {
            return Err(format!("tensor {name} is not of the form features.N.<param>"));
        };
        let Ok(index) = index.parse::<usize>() else {
            return Err(format!("tensor {name} is not of the form features.N.<param>"));
        };
        if param != "weight" {
            continue;
        }
        let shape = checkpoint.shape(name).map_err(|e| e.to_string())?;
        let feature = match *shape {
            [out_channels, in_channels, kernel, _] => Feature::Conv { out_channels, in_channels, kernel },
            [_] => Feature::BatchNorm,
            _ => {
                return Err(format!(
                    "tensor {name} has shape {shape:?}: neither a conv (4-D) nor a BatchNorm (1-D) weight"
                ))
            }
        };
        features.insert(index, feature);
    }
    if features.is_empty() {
        return Err("no features.N.weight tensors".into());
    }
    Ok(features)
}

/// The classifier's linear layers in order: `classifier` alone, or `classifier.N` by N.
fn discover_classifier(checkpoint: &Checkpoint) -> Result<Vec<String>, String> {
    if checkpoint.contains("classifier.weight") {
        return Ok(vec!["classifier".into()]);
    }
    let mut indices: Vec<usize> = checkpoint
        .names()
        .iter()
        .filter_map(|name| name.strip_prefix("classifier.")?.strip_suffix(".weight")?.parse().ok())
        .collect();
    indices.sort_unstable();
    if indices.is_empty() {
        return Err("no classifier: expected classifier.weight or classifier.N.weight".into());
    }
    Ok(indices.into_iter().map(|i| format!("classifier.{i}")).collect())
}
