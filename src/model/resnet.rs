//! Maps the PyTorch `state_dict` of a CIFAR ResNet (He et al., 2016) onto a [`Graph`],
//! reading the architecture — stages, blocks per stage, widths, shortcut kind, classes —
//! from the tensors themselves, never from the file name.
//!
//! Recognized layout (after the `module.` prefix is removed):
//! - stem: `conv1.weight` `[w, 3, 3, 3]` (3x3, stride 1, pad 1), `bn1.*`, ReLU; or
//!   torchvision's ImageNet stem, `conv1.weight` `[w, 3, 7, 7]` (7x7, stride 2, pad 3),
//!   `bn1.*`, ReLU, then a 3x3 pool with stride 2 and padding 1 (a max pool, or an average
//!   pool where the metadata says `pool = avg`);
//! - stages `layer1`, `layer2`, ... (contiguous from 1), each with blocks `0..n` (contiguous);
//!   block `layerK.i`: `conv1` (3x3, stride s, pad 1) - `bn1` - ReLU - `conv2` (3x3, stride 1,
//!   pad 1) - `bn2`, then in the [`BlockForm::Standard`] form the shortcut is added and a
//!   ReLU follows the sum; in the [`BlockForm::Restructured`] form a ReLU follows `bn2` and
//!   the sum is the block's output (no ReLU after the addition). Both forms have the same
//!   tensors: the form is not visible in a checkpoint's tensors, only in its metadata;
//! - [`BlockForm::PreActivation`] (He et al., 2016, "Identity mappings in deep residual
//!   networks") has its own layout: the stem is `conv1` alone; block `layerK.i` is `bn1`
//!   (over the block's input channels) - ReLU - `conv1` - `bn2` - ReLU - `conv2`, added to
//!   the shortcut; after the last block `bn` - ReLU; an option-B projection (a 1x1 conv,
//!   no BatchNorm) reads the block's activated input;
//! - shortcut option B: `layerK.i.shortcut.{0,1}` or torchvision's `layerK.i.downsample.{0,1}`,
//!   a 1x1 conv with stride s and a BatchNorm; option A (no shortcut tensors anywhere):
//!   where the block's stride is not 1 or its channels change, `x[:, :, ::s, ::s]` zero-padded
//!   with `diff / 2` channels in front and `diff - diff / 2` behind (`diff` = added channels);
//!   otherwise the identity;
//! - global average pool, then `linear.{weight,bias}` or `fc.{weight,bias}`.
//!
//! **Stride rule.** Strides are not stored in a checkpoint. The first block of every stage
//! after the first has stride 2; every other block has stride 1. This is the rule of He et
//! al.'s CIFAR ResNets and of every known implementation (akamaster, torchvision-style CIFAR
//! ports); it also matches the channel rule (stride 2 exactly where the width changes) on
//! all standard files, and unlike the channel rule stays right for stages of equal width.

use super::checkpoint::{Checkpoint, TensorDtype};
use super::graph::{BatchNorm, Conv2d, Graph, Linear, NodeId, Op, Pool2d, Shape};
use super::trained::TrainedActivation;
use super::LoadError;
use super::PoolKind;

/// BatchNorm epsilon of PyTorch's `nn.BatchNorm2d` default, used by all CIFAR ResNets.
pub const BATCH_NORM_EPS: f32 = 1e-5;
/// Per-image input shape of a CIFAR network.
pub const INPUT_SHAPE: Shape = Shape::new(3, 32, 32);

/// How a block adds its input when the shape changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ShortcutKind {
    /// Parameter-free: subsample and zero-pad channels.
    A,
    /// 1x1 convolution with stride, then BatchNorm.
    B,
}

/// The block form of a checkpoint (`__metadata__["block"]`, overridden by
/// [`LoadOptions::block`](super::LoadOptions::block)). Both forms have the same tensors and
/// node names (`layerK.i.relu2` exists in both); only where the second ReLU sits differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockForm {
    /// He et al.: `y = ReLU(BN2(conv2(ReLU(BN1(conv1(x))))) + shortcut(x))`. Converted to a
    /// spiking network, every block's sum is re-spiked by the IF layer `relu2`.
    Standard,
    /// Residual block restructuring (Meng et al., 2022, TTRBR):
    /// `y = shortcut(x) + ReLU(BN2(conv2(ReLU(BN1(conv1(x))))))`. The ReLU moves into the
    /// residual branch and nothing follows the addition, so in the spiking network the
    /// identity path is never re-spiked and its conversion error does not accumulate over
    /// depth. Block inputs stay non-negative (the stem ends in a ReLU, every branch adds a
    /// ReLU output).
    Restructured,
    /// Pre-activation (He et al., 2016b): `y = shortcut(x) + conv2(ReLU(BN2(conv1(ReLU(BN1(x))))))`,
    /// with BN-ReLU after the last block. Nothing is re-spiked on the identity path either,
    /// but every IF layer reads a BatchNorm of the running sum (not a convolution's
    /// output), and branches add unspiked currents. Its tensors differ from the other two
    /// forms' (stem without BatchNorm, a final `bn`, `bn1` over the input channels).
    #[serde(rename = "preact")]
    PreActivation,
}

impl BlockForm {
    /// Every block form, in the order messages list them.
    pub const ALL: [BlockForm; 3] = [BlockForm::Standard, BlockForm::Restructured, BlockForm::PreActivation];

    /// The name used in `__metadata__["block"]` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BlockForm::Standard => "standard",
            BlockForm::Restructured => "restructured",
            BlockForm::PreActivation => "preact",
        }
    }

    /// The valid names, `"standard, restructured, preact"`, for messages and help texts.
    pub fn names() -> String {
        Self::ALL.map(BlockForm::name).join(", ")
    }
}

impl std::fmt::Display for BlockForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A block-form name that is not one of [`BlockForm::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown block form {name:?}, expected one of: {}", BlockForm::names())]
pub struct UnknownBlockForm {
    /// The name as given.
    pub name: String,
}

impl std::str::FromStr for BlockForm {
    type Err = UnknownBlockForm;

    /// Parses a name of [`BlockForm::name`], ignoring ASCII case and surrounding spaces.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|form| form.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| UnknownBlockForm { name: name.to_string() })
    }
}

/// The first layers of a ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Stem {
    /// He et al.'s CIFAR stem: a 3x3 conv, stride 1.
    Cifar,
    /// Torchvision's ImageNet stem: a 7x7 conv with stride 2, then a 3x3 pool with stride 2.
    ImageNet(PoolKind),
}

/// Architecture facts read from the checkpoint's tensors.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResNetInfo {
    /// The stem (read from `conv1.weight`'s kernel size).
    pub stem: Stem,
    /// Number of weighted layers: `2 + 2 * (total blocks)` (20, 56, 110, ...).
    pub depth: usize,
    /// Output channels of the stem convolution.
    pub stem_width: usize,
    /// Blocks in each stage (`layer1`, `layer2`, ...).
    pub blocks_per_stage: Vec<usize>,
    /// Output channels of each stage.
    pub stage_widths: Vec<usize>,
    /// Stride of each stage's first block (see the module's stride rule).
    pub stage_strides: Vec<usize>,
    /// Shortcut option.
    pub shortcut: ShortcutKind,
    /// Block form.
    pub block: BlockForm,
    /// Outputs of the final linear layer.
    pub num_classes: usize,
    /// Name of the final layer in the file (`linear` or `fc`).
    pub classifier: String,
    /// Storage dtype of the weights.
    pub dtype: TensorDtype,
}

/// Builds the graph of the ResNet stored in `checkpoint`, its blocks in the form `block`.
/// Errors name the file and the tensor at fault; tensors the architecture does not account for are an error too.
pub fn build(
    checkpoint: &mut Checkpoint,
    block: BlockForm,
    pool: PoolKind,
) -> Result<(Graph, ResNetInfo, Option<TrainedActivation>), LoadError> {
    let path = checkpoint.path().to_string();
    let arch = |message: String| LoadError::Architecture { path: path.clone(), message };
    let graph_error = |source| LoadError::Graph { path: path.clone(), source };

    let stage_blocks = discover_stages(checkpoint).map_err(&arch)?;
    let shortcut =
        if checkpoint.names().iter().any(|n| is_projection_tensor(n)) { ShortcutKind::B } else { ShortcutKind::A };

    let mut graph = Graph::new(INPUT_SHAPE);

    // Stem.
    let stem_shape = checkpoint.shape("conv1.weight")?.to_vec();
    let (stem_width, stem) = match stem_shape.as_slice() {
        [w, 3, 3, 3] if *w > 0 => (*w, Stem::Cifar),
        [w, 3, 7, 7] if *w > 0 && block != BlockForm::PreActivation => (*w, Stem::ImageNet(pool)),
        [_, _, k, _] if *k != 3 && *k != 7 => {
            return Err(arch(format!(
                "stem conv1.weight has shape {stem_shape:?}: a {k}x{k} stem is neither a CIFAR (3x3) nor an ImageNet (7x7) ResNet stem"
            )))
        }
        _ => return Err(wrong_shape(checkpoint, "conv1.weight", &stem_shape, &[leading(&stem_shape).max(1), 3, 3, 3])),
    };
    let mut x = graph.input();
    let stem_conv = match stem {
        Stem::Cifar => ConvShape { out_channels: stem_width, in_channels: 3, kernel: 3, stride: 1 },
        Stem::ImageNet(_) => ConvShape { out_channels: stem_width, in_channels: 3, kernel: 7, stride: 2 },
    };
    x = push_conv(&mut graph, checkpoint, "conv1", stem_conv, x)?;
    if block != BlockForm::PreActivation {
        x = push_bn(&mut graph, checkpoint, "bn1", stem_width, x)?;
        x = graph.push("relu", Op::Relu, &[x]).map_err(graph_error)?;
    }
    if let Stem::ImageNet(kind) = stem {
        x = graph.push("maxpool", kind.op(Pool2d { kernel: 3, stride: 2, padding: 1 }), &[x]).map_err(graph_error)?;
    }
    let mut channels = stem_width;

    let mut stage_widths = Vec::with_capacity(stage_blocks.len());
    let mut stage_strides = Vec::with_capacity(stage_blocks.len());
    for (stage_index, &blocks) in stage_blocks.iter().enumerate() {
        let stage = format!("layer{}", stage_index + 1);
        for block_index in 0..blocks {
            let name = format!("{stage}.{block_index}");
            let stride = if stage_index > 0 && block_index == 0 { 2 } else { 1 };
            if block_index == 0 {
                stage_strides.push(stride);
            }
            let conv1 = format!("{name}.conv1.weight");
            let conv1_shape = checkpoint.shape(&conv1)?.to_vec();
            let planes = leading(&conv1_shape);
            if planes == 0 {
                return Err(wrong_shape(checkpoint, &conv1, &conv1_shape, &[1, channels, 3, 3]));
            }
            let spec = BlockSpec { name: &name, in_channels: channels, planes, stride, shortcut };
            x = match block {
                BlockForm::Standard => push_block(&mut graph, checkpoint, &spec, x, false)?,
                BlockForm::Restructured => push_block(&mut graph, checkpoint, &spec, x, true)?,
                BlockForm::PreActivation => push_preact_block(&mut graph, checkpoint, &spec, x)?,
            };
            channels = planes;
        }
        stage_widths.push(channels);
    }

    // Classifier.
    let classifier = match (checkpoint.contains("linear.weight"), checkpoint.contains("fc.weight")) {
        (true, true) => {
            return Err(arch("both linear.weight and fc.weight are present; expected one final layer".into()))
        }
        (false, true) => "fc",
        _ => "linear",
    };
    if block == BlockForm::PreActivation {
        x = push_bn(&mut graph, checkpoint, "bn", channels, x)?;
        x = graph.push("relu", Op::Relu, &[x]).map_err(graph_error)?;
    }
    x = graph.push("avgpool", Op::GlobalAvgPool, &[x]).map_err(graph_error)?;
    let weight_name = format!("{classifier}.weight");
    if !checkpoint.contains(&weight_name) {
        return Err(LoadError::MissingTensor {
            path: path.clone(),
            tensor: format!("{} (or {}fc.weight)", checkpoint.stored_name(&weight_name), checkpoint.prefix()),
        });
    }
    let weight_shape = checkpoint.shape(&weight_name)?.to_vec();
    let num_classes = leading(&weight_shape).max(1);
    let weight = checkpoint.tensor(&weight_name, &[num_classes, channels])?;
    let bias = checkpoint.tensor(&format!("{classifier}.bias"), &[num_classes])?;
    let linear = Linear { in_features: channels, out_features: num_classes, weight, bias };
    graph.push(classifier, Op::Linear(linear), &[x]).map_err(graph_error)?;
    let trained = super::trained::read(checkpoint, &graph)?;

    let unused = checkpoint.unused();
    if let Some(first) = unused.first() {
        return Err(LoadError::UnexpectedTensors { path, count: unused.len(), first: first.clone() });
    }

    let total_blocks: usize = stage_blocks.iter().sum();
    let info = ResNetInfo {
        stem,
        depth: 2 + 2 * total_blocks,
        stem_width,
        blocks_per_stage: stage_blocks,
        stage_widths,
        stage_strides,
        shortcut,
        block,
        num_classes,
        classifier: classifier.to_string(),
        dtype: checkpoint.used_dtype(),
    };
    Ok((graph, info, trained))
}

/// Where a residual block sits and how wide it is: what each block form's builder needs
/// besides the graph and the checkpoint.
struct BlockSpec<'a> {
    /// Tensor-name prefix, e.g. `layer2.0`.
    name: &'a str,
    in_channels: usize,
    planes: usize,
    stride: usize,
    shortcut: ShortcutKind,
}

impl BlockSpec<'_> {
    /// The block's node or tensor-name prefix `part`, e.g. `layer2.0.conv1`.
    fn part(&self, part: &str) -> String {
        format!("{}.{part}", self.name)
    }

    /// The block's first 3x3 conv: from its input width to `planes`, with its stride.
    fn conv1(&self) -> ConvShape {
        ConvShape { out_channels: self.planes, in_channels: self.in_channels, kernel: 3, stride: self.stride }
    }

    /// The block's second 3x3 conv: `planes` to `planes`, stride 1.
    fn conv2(&self) -> ConvShape {
        ConvShape { out_channels: self.planes, in_channels: self.planes, kernel: 3, stride: 1 }
    }

    /// The 1x1 conv of an option-B projection shortcut, with the block's stride.
    fn projection(&self) -> ConvShape {
        ConvShape { out_channels: self.planes, in_channels: self.in_channels, kernel: 1, stride: self.stride }
    }
}

/// Pushes one basic block reading `x`; returns the block's output node. Standard form:
/// `relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))`. Restructured form
/// (`restructured`): the ReLU moves into the branch and nothing follows the sum, so the
/// identity path passes through unchanged: `relu2(bn2(conv2(…))) + shortcut(x)`.
fn push_block(
    graph: &mut Graph,
    checkpoint: &mut Checkpoint,
    spec: &BlockSpec,
    x: NodeId,
    restructured: bool,
) -> Result<NodeId, LoadError> {
    let path = checkpoint.path().to_string();
    let graph_error = |source| LoadError::Graph { path: path.clone(), source };
    let planes = spec.planes;

    let mut y = push_conv(graph, checkpoint, &spec.part("conv1"), spec.conv1(), x)?;
    y = push_bn(graph, checkpoint, &spec.part("bn1"), planes, y)?;
    y = graph.push(spec.part("relu1"), Op::Relu, &[y]).map_err(graph_error)?;
    y = push_conv(graph, checkpoint, &spec.part("conv2"), spec.conv2(), y)?;
    y = push_bn(graph, checkpoint, &spec.part("bn2"), planes, y)?;
    if restructured {
        // The branch ends in its own ReLU (an IF layer after conversion).
        y = graph.push(spec.part("relu2"), Op::Relu, &[y]).map_err(graph_error)?;
    }

    let identity = push_shortcut(graph, checkpoint, spec, x, x, true)?;
    let sum = graph.push(spec.part("add"), Op::Add, &[y, identity]).map_err(graph_error)?;
    if restructured {
        Ok(sum)
    } else {
        graph.push(spec.part("relu2"), Op::Relu, &[sum]).map_err(graph_error)
    }
}

/// Pushes one pre-activation block reading `x`; returns its sum:
/// `shortcut + conv2(relu2(bn2(conv1(relu1(bn1(x))))))`.
fn push_preact_block(
    graph: &mut Graph,
    checkpoint: &mut Checkpoint,
    spec: &BlockSpec,
    x: NodeId,
) -> Result<NodeId, LoadError> {
    let path = checkpoint.path().to_string();
    let graph_error = |source| LoadError::Graph { path: path.clone(), source };
    let (in_channels, planes) = (spec.in_channels, spec.planes);

    let mut h = push_bn(graph, checkpoint, &spec.part("bn1"), in_channels, x)?;
    h = graph.push(spec.part("relu1"), Op::Relu, &[h]).map_err(graph_error)?;
    let activated = h;
    h = push_conv(graph, checkpoint, &spec.part("conv1"), spec.conv1(), h)?;
    h = push_bn(graph, checkpoint, &spec.part("bn2"), planes, h)?;
    h = graph.push(spec.part("relu2"), Op::Relu, &[h]).map_err(graph_error)?;
    h = push_conv(graph, checkpoint, &spec.part("conv2"), spec.conv2(), h)?;
    let identity = push_shortcut(graph, checkpoint, spec, x, activated, false)?;
    graph.push(spec.part("add"), Op::Add, &[h, identity]).map_err(graph_error)
}

/// A block's identity path: an option-B projection of `projected` (a 1x1 conv with the
/// block's stride, then a BatchNorm when `with_bn`), an option-A subsample-and-pad of `x`
/// where the shape changes, else `x` itself.
fn push_shortcut(
    graph: &mut Graph,
    checkpoint: &mut Checkpoint,
    spec: &BlockSpec,
    x: NodeId,
    projected: NodeId,
    with_bn: bool,
) -> Result<NodeId, LoadError> {
    let &BlockSpec { name, in_channels, planes, stride, shortcut } = spec;
    let path = checkpoint.path().to_string();
    let graph_error = |source| LoadError::Graph { path: path.clone(), source };
    let needs_shortcut = stride != 1 || planes != in_channels;
    let projection = ["shortcut", "downsample"]
        .into_iter()
        .filter(|form| checkpoint.contains(&format!("{name}.{form}.0.weight")))
        .collect::<Vec<_>>();
    Ok(match (shortcut, projection.as_slice()) {
        (_, [_, _, ..]) => {
            return Err(LoadError::Architecture {
                path,
                message: format!("block {name} has both shortcut.* and downsample.* tensors"),
            })
        }
        (ShortcutKind::B, [form]) => {
            let sc = push_conv(graph, checkpoint, &format!("{name}.{form}.0"), spec.projection(), projected)?;
            if with_bn {
                push_bn(graph, checkpoint, &format!("{name}.{form}.1"), planes, sc)?
            } else {
                sc
            }
        }
        (ShortcutKind::B, []) if needs_shortcut => {
            // Option-B file, but this shape-changing block lacks its projection.
            return Err(LoadError::MissingTensor {
                path,
                tensor: checkpoint.stored_name(&format!("{name}.shortcut.0.weight")),
            });
        }
        (ShortcutKind::A, _) if needs_shortcut => {
            let Some(diff) = planes.checked_sub(in_channels) else {
                return Err(LoadError::Architecture {
                    path,
                    message: format!(
                        "block {name} narrows {in_channels} to {planes} channels, which a parameter-free (option A) shortcut cannot do"
                    ),
                });
            };
            let pad_before = diff / 2;
            let op = Op::ShortcutA { stride, pad_before, pad_after: diff - pad_before };
            graph.push(format!("{name}.shortcut"), op, &[x]).map_err(graph_error)?
        }
        _ => x,
    })
}

/// The shape of a ResNet convolution: square `kernel × kernel`, no bias, padded by
/// `kernel / 2` (1 for the 3x3 convs, 0 for the 1x1 projections).
#[derive(Clone, Copy, Debug)]
struct ConvShape {
    out_channels: usize,
    in_channels: usize,
    kernel: usize,
    stride: usize,
}

/// Reads `{name}.weight` (`[out, in, k, k]`, no bias) and pushes the convolution of `shape`.
fn push_conv(
    graph: &mut Graph,
    checkpoint: &mut Checkpoint,
    name: &str,
    shape: ConvShape,
    x: NodeId,
) -> Result<NodeId, LoadError> {
    let ConvShape { out_channels, in_channels, kernel, stride } = shape;
    let weight = checkpoint.tensor(&format!("{name}.weight"), &[out_channels, in_channels, kernel, kernel])?;
    let conv = Conv2d { out_channels, in_channels, kernel, stride, padding: kernel / 2, weight, bias: None };
    graph
        .push(name, Op::Conv2d(conv), &[x])
        .map_err(|source| LoadError::Graph { path: checkpoint.path().to_string(), source })
}

/// Reads `{name}.{weight,bias,running_mean,running_var}` (`[channels]`) and pushes the BatchNorm.
pub(super) fn push_bn(
    graph: &mut Graph,
    checkpoint: &mut Checkpoint,
    name: &str,
    channels: usize,
    x: NodeId,
) -> Result<NodeId, LoadError> {
    let shape = [channels];
    let gamma = checkpoint.tensor(&format!("{name}.weight"), &shape)?;
    let beta = checkpoint.tensor(&format!("{name}.bias"), &shape)?;
    let mean = checkpoint.tensor(&format!("{name}.running_mean"), &shape)?;
    let var_name = format!("{name}.running_var");
    let var = checkpoint.tensor(&var_name, &shape)?;
    if let Some((index, v)) = var.iter().enumerate().find(|(_, v)| **v < 0.0) {
        return Err(LoadError::BadValues {
            path: checkpoint.path().to_string(),
            tensor: checkpoint.stored_name(&var_name),
            message: format!("element {index} is {v}, a variance must be >= 0"),
        });
    }
    let bn = BatchNorm { gamma, beta, mean, var, eps: BATCH_NORM_EPS };
    graph
        .push(name, Op::BatchNorm(bn), &[x])
        .map_err(|source| LoadError::Graph { path: checkpoint.path().to_string(), source })
}

/// Number of blocks of each stage `layer1..=layerS`, checking both index sets are contiguous.
fn discover_stages(checkpoint: &Checkpoint) -> Result<Vec<usize>, String> {
    // stage number -> set of block indices seen.
    let mut stages: std::collections::BTreeMap<usize, std::collections::BTreeSet<usize>> = Default::default();
    for name in checkpoint.names() {
        let Some(rest) = name.strip_prefix("layer") else { continue };
        let mut parts = rest.splitn(3, '.');
        let (Some(stage), Some(block)) = (parts.next(), parts.next()) else {
            return Err(format!("tensor {name} is not of the form layerK.i.<layer>.<param>"));
        };
        let (Ok(stage), Ok(block)) = (stage.parse::<usize>(), block.parse::<usize>()) else {
            return Err(format!("tensor {name} is not of the form layerK.i.<layer>.<param>"));
        };
        stages.entry(stage).or_default().insert(block);
    }
    if stages.is_empty() {
        return Err("no residual stages (layer1.*, layer2.*, ...) found".into());
    }
    let mut counts = Vec::with_capacity(stages.len());
    for (expected, (&stage, blocks)) in (1..).zip(&stages) {
        if stage != expected {
            return Err(format!("stage layer{expected} is missing (found layer{stage})"));
        }
        for (expected_block, &block) in blocks.iter().enumerate() {
            if block != expected_block {
                return Err(format!("block layer{stage}.{expected_block} is missing (found layer{stage}.{block})"));
            }
        }
        counts.push(blocks.len());
    }
    Ok(counts)
}

/// True for the parameters of an option-B projection shortcut.
fn is_projection_tensor(name: &str) -> bool {
    name.starts_with("layer") && (name.contains(".shortcut.") || name.contains(".downsample."))
}

/// First dimension of a shape, 0 if it has none.
pub(super) fn leading(shape: &[usize]) -> usize {
    shape.first().copied().unwrap_or(0)
}

pub(super) fn wrong_shape(checkpoint: &Checkpoint, name: &str, found: &[usize], expected: &[usize]) -> LoadError {
    LoadError::WrongShape {
        path: checkpoint.path().to_string(),
        tensor: checkpoint.stored_name(name),
        found: found.to_vec(),
        expected: expected.to_vec(),
    }
}
