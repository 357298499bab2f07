//! Checkpoint loader tests: tiny ResNets written as safetensors by the tests themselves
//! (every naming variant, F16/BF16, metadata and its overrides, both block forms checked
//! against a forward pass written out by hand, each kind of bad input), then the real
//! checkpoints of the reference data.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::Rng;
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use spikeconv::data::{CifarFormat, Dataset};
use spikeconv::model::graph::{BatchNorm, Conv2d, Graph, Linear, Op, Shape};
use spikeconv::model::{
    self, BlockForm, LoadError, LoadOptions, Normalization, NormalizationSource, NormalizePreset, ShortcutKind,
    TensorDtype,
};
use spikeconv::reference::{self, ops};

const IMAGENET_MEAN: &str = "0.485,0.456,0.406";
const IMAGENET_STD: &str = "0.229,0.224,0.225";

/// One tensor as it will be written: name, dtype, shape, little-endian bytes.
#[derive(Clone, Debug)]
struct Raw {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl Raw {
    fn float(name: &str, dtype: Dtype, shape: &[usize], values: &[f32]) -> Self {
        let bytes = match dtype {
            Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Dtype::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
            Dtype::BF16 => values.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
            other => panic!("test helper does not encode {other:?}"),
        };
        Self { name: name.into(), dtype, shape: shape.to_vec(), bytes }
    }

    fn int64(name: &str, shape: &[usize], values: &[i64]) -> Self {
        Self {
            name: name.into(),
            dtype: Dtype::I64,
            shape: shape.to_vec(),
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// Architecture of a tiny CIFAR ResNet to write.
#[derive(Clone, Debug)]
struct Spec {
    stem: usize,
    widths: Vec<usize>,
    blocks: Vec<usize>,
    classes: usize,
    /// `Some("shortcut")` / `Some("downsample")` for option B, `None` for option A.
    projection: Option<&'static str>,
    classifier: &'static str,
    /// Pre-activation layout: stem conv only, `bn1` over the block input, projection
    /// without BatchNorm, a final `bn`.
    preact: bool,
}

impl Spec {
    /// Depth 8: one block per stage, widths 4/8/16, 10 classes, option A.
    fn tiny() -> Self {
        Self {
            stem: 4,
            widths: vec![4, 8, 16],
            blocks: vec![1, 1, 1],
            classes: 10,
            projection: None,
            classifier: "linear",
            preact: false,
        }
    }

    /// The `state_dict` as (name, shape, values), random but deterministic in `seed`.
    fn tensors(&self, seed: u64) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut rng = Rng::new(seed);
        let mut out = Vec::new();
        let conv = |out: &mut Vec<_>, rng: &mut Rng, name: String, o: usize, i: usize, k: usize| {
            let bound = 1.7 / ((i * k * k) as f32).sqrt();
            out.push((format!("{name}.weight"), vec![o, i, k, k], rng.vec(o * i * k * k, -bound, bound)));
        };
        let bn = |out: &mut Vec<_>, rng: &mut Rng, name: String, c: usize| {
            out.push((format!("{name}.weight"), vec![c], rng.vec(c, 0.5, 1.5)));
            out.push((format!("{name}.bias"), vec![c], rng.vec(c, -0.2, 0.2)));
            out.push((format!("{name}.running_mean"), vec![c], rng.vec(c, -0.2, 0.2)));
            out.push((format!("{name}.running_var"), vec![c], rng.vec(c, 0.5, 1.5)));
        };
        conv(&mut out, &mut rng, "conv1".into(), self.stem, 3, 3);
        if !self.preact {
            bn(&mut out, &mut rng, "bn1".into(), self.stem);
        }
        let mut channels = self.stem;
        for (s, (&width, &blocks)) in self.widths.iter().zip(&self.blocks).enumerate() {
            for b in 0..blocks {
                let name = format!("layer{}.{b}", s + 1);
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                if self.preact {
                    bn(&mut out, &mut rng, format!("{name}.bn1"), channels);
                }
                conv(&mut out, &mut rng, format!("{name}.conv1"), width, channels, 3);
                bn(&mut out, &mut rng, format!("{name}.{}", if self.preact { "bn2" } else { "bn1" }), width);
                conv(&mut out, &mut rng, format!("{name}.conv2"), width, width, 3);
                if !self.preact {
                    bn(&mut out, &mut rng, format!("{name}.bn2"), width);
                }
                if let Some(form) = self.projection {
                    if stride != 1 || width != channels {
                        conv(&mut out, &mut rng, format!("{name}.{form}.0"), width, channels, 1);
                        if !self.preact {
                            bn(&mut out, &mut rng, format!("{name}.{form}.1"), width);
                        }
                    }
                }
                channels = width;
            }
        }
        if self.preact {
            bn(&mut out, &mut rng, "bn".into(), channels);
        }
        let bound = 1.0 / (channels as f32).sqrt();
        out.push((
            format!("{}.weight", self.classifier),
            vec![self.classes, channels],
            rng.vec(self.classes * channels, -bound, bound),
        ));
        out.push((format!("{}.bias", self.classifier), vec![self.classes], rng.vec(self.classes, -0.1, 0.1)));
        out
    }

    /// The tensors encoded as `dtype`.
    fn raw(&self, seed: u64, dtype: Dtype) -> Vec<Raw> {
        self.tensors(seed).iter().map(|(n, s, v)| Raw::float(n, dtype, s, v)).collect()
    }
}

/// Serializes tensors and metadata to safetensors bytes.
fn serialize(tensors: &[Raw], metadata: &[(&str, &str)]) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|t| (t.name.clone(), TensorView::new(t.dtype, t.shape.clone(), &t.bytes).expect("consistent test tensor")))
        .collect();
    let metadata: Option<HashMap<String, String>> =
        (!metadata.is_empty()).then(|| metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    safetensors::serialize(views, metadata).expect("serialize")
}

/// The metadata of the real files (ImageNet normalization, 10 classes, option A).
fn standard_metadata() -> Vec<(&'static str, &'static str)> {
    vec![("normalize_mean", IMAGENET_MEAN), ("normalize_std", IMAGENET_STD), ("num_classes", "10"), ("shortcut", "A")]
}

/// A temporary folder the test writes its checkpoints into.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("temp dir"))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, bytes).expect("write checkpoint");
        path
    }

    /// Writes `tensors` with the standard metadata and loads the file with default options.
    fn load(&self, name: &str, tensors: &[Raw]) -> Result<model::Network, LoadError> {
        model::load(self.write(name, &serialize(tensors, &standard_metadata())), &LoadOptions::default())
    }
}

/// The error message of a load that must fail, checked to name the file and be one line.
fn load_error(result: Result<model::Network, LoadError>, file: &str) -> String {
    let message = match result {
        Ok(_) => panic!("loading {file} should have failed"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains(file), "message does not name the file {file}: {message}");
    assert!(!message.contains('\n'), "message is not one line: {message}");
    message
}

fn random_input(graph: &Graph, batch: usize, seed: u64) -> Vec<f32> {
    Rng::new(seed).vec(batch * graph.input_shape().len(), -2.0, 2.0)
}

fn logits(graph: &Graph, seed: u64) -> Vec<f32> {
    reference::forward(graph, &random_input(graph, 2, seed), 2)
}

fn names(graph: &Graph) -> Vec<&str> {
    graph.nodes().iter().map(|n| n.name.as_str()).collect()
}

fn node<'g>(graph: &'g Graph, name: &str) -> &'g spikeconv::model::graph::Node {
    graph.nodes().iter().find(|n| n.name == name).unwrap_or_else(|| panic!("no node {name}"))
}

fn block_names(block: &str, shortcut: &[&str]) -> Vec<String> {
    let mut names: Vec<String> =
        ["conv1", "bn1", "relu1", "conv2", "bn2"].iter().map(|l| format!("{block}.{l}")).collect();
    names.extend(shortcut.iter().map(|s| format!("{block}.{s}")));
    names.push(format!("{block}.add"));
    names.push(format!("{block}.relu2"));
    names
}

// ---------------------------------------------------------------- structure and naming

#[test]
fn option_a_depth8_builds_the_expected_graph() {
    let scratch = Scratch::new();
    let spec = Spec::tiny();
    let network = scratch.load("resnet8.safetensors", &spec.raw(1, Dtype::F32)).unwrap();
    let info = network.info.resnet().unwrap();
    assert_eq!(info.depth, 8);
    assert_eq!(info.stem_width, 4);
    assert_eq!(info.blocks_per_stage, vec![1, 1, 1]);
    assert_eq!(info.stage_widths, vec![4, 8, 16]);
    assert_eq!(info.stage_strides, vec![1, 2, 2]);
    assert_eq!(info.shortcut, ShortcutKind::A);
    assert_eq!(info.num_classes, 10);
    assert_eq!(info.classifier, "linear");
    assert_eq!(info.dtype, TensorDtype::F32);
    assert_eq!(network.graph.num_classes(), 10);

    let mut expected = vec!["input".to_string(), "conv1".into(), "bn1".into(), "relu".into()];
    expected.extend(block_names("layer1.0", &[]));
    expected.extend(block_names("layer2.0", &["shortcut"]));
    expected.extend(block_names("layer3.0", &["shortcut"]));
    expected.extend(["avgpool".to_string(), "linear".into()]);
    assert_eq!(names(&network.graph), expected);

    let g = &network.graph;
    assert_eq!(node(g, "layer2.0.shortcut").op, Op::ShortcutA { stride: 2, pad_before: 2, pad_after: 2 });
    assert_eq!(node(g, "layer3.0.shortcut").op, Op::ShortcutA { stride: 2, pad_before: 4, pad_after: 4 });
    let Op::Conv2d(conv) = &node(g, "layer2.0.conv1").op else { panic!("not a conv") };
    assert_eq!((conv.stride, conv.padding, conv.kernel, conv.in_channels, conv.out_channels), (2, 1, 3, 4, 8));
    let Op::Conv2d(conv2) = &node(g, "layer2.0.conv2").op else { panic!("not a conv") };
    assert_eq!(conv2.stride, 1);
    // The identity block adds its input; the downsampling block adds the shortcut.
    let add1 = node(g, "layer1.0.add");
    assert_eq!(g.node(add1.inputs[1]).name, "relu");
    let add2 = node(g, "layer2.0.add");
    assert_eq!(g.node(add2.inputs[0]).name, "layer2.0.bn2");
    assert_eq!(g.node(add2.inputs[1]).name, "layer2.0.shortcut");

    // Values pass through unchanged (OIHW order, BN fields, eps).
    let tensors = spec.tensors(1);
    let find = |n: &str| tensors.iter().find(|t| t.0 == n).map(|t| t.2.clone()).unwrap();
    assert_eq!(conv.weight, find("layer2.0.conv1.weight"));
    let Op::BatchNorm(bn) = &node(g, "layer3.0.bn2").op else { panic!("not a BN") };
    assert_eq!(bn.gamma, find("layer3.0.bn2.weight"));
    assert_eq!(bn.beta, find("layer3.0.bn2.bias"));
    assert_eq!(bn.mean, find("layer3.0.bn2.running_mean"));
    assert_eq!(bn.var, find("layer3.0.bn2.running_var"));
    assert_eq!(bn.eps, 1e-5);
    let Op::Linear(linear) = &node(g, "linear").op else { panic!("not linear") };
    assert_eq!((linear.in_features, linear.out_features), (16, 10));
    assert_eq!(linear.weight, find("linear.weight"));

    // Normalization from metadata; the graph runs.
    assert_eq!(network.normalization_source, NormalizationSource::Metadata);
    assert_eq!(network.normalization, NormalizePreset::Imagenet.normalization());
    assert_eq!(network.metadata.get("shortcut").map(String::as_str), Some("A"));
    let out = logits(g, 7);
    assert_eq!(out.len(), 20);
    assert!(out.iter().all(|v| v.is_finite()));
}

#[test]
fn option_a_pads_uneven_channel_growth_and_counts_blocks_per_stage() {
    let scratch = Scratch::new();
    let spec = Spec { stem: 5, widths: vec![5, 8, 13], blocks: vec![2, 1, 3], classes: 7, ..Spec::tiny() };
    let mut meta = standard_metadata();
    meta.retain(|(k, _)| *k != "num_classes");
    let path = scratch.write("uneven.safetensors", &serialize(&spec.raw(2, Dtype::F32), &meta));
    let network = model::load(&path, &LoadOptions::default()).unwrap();
    assert_eq!(network.info.depth(), 2 + 2 * 6);
    assert_eq!(network.info.resnet().unwrap().blocks_per_stage, vec![2, 1, 3]);
    assert_eq!(network.info.resnet().unwrap().stage_widths, vec![5, 8, 13]);
    assert_eq!(network.info.num_classes(), 7);
    let g = &network.graph;
    // diff 3: 1 before, 2 after; diff 5: 2 before, 3 after.
    assert_eq!(node(g, "layer2.0.shortcut").op, Op::ShortcutA { stride: 2, pad_before: 1, pad_after: 2 });
    assert_eq!(node(g, "layer3.0.shortcut").op, Op::ShortcutA { stride: 2, pad_before: 2, pad_after: 3 });
    assert!(g.nodes().iter().all(|n| n.name != "layer1.1.shortcut" && n.name != "layer3.2.shortcut"));
    assert_eq!(node(g, "layer3.2.relu2").shape, spikeconv::model::graph::Shape::new(13, 8, 8));
    assert_eq!(logits(g, 3).len(), 14);
}

#[test]
fn module_prefix_fc_and_num_batches_tracked_load_the_same_network() {
    let scratch = Scratch::new();
    let plain = scratch.load("plain.safetensors", &Spec::tiny().raw(3, Dtype::F32)).unwrap();

    let fc_spec = Spec { classifier: "fc", ..Spec::tiny() };
    let mut tensors = fc_spec.raw(3, Dtype::F32);
    let bn_names: Vec<String> =
        tensors.iter().filter_map(|t| t.name.strip_suffix(".running_var").map(str::to_string)).collect();
    for bn in bn_names {
        tensors.push(Raw::int64(&format!("{bn}.num_batches_tracked"), &[], &[12345]));
    }
    for t in &mut tensors {
        t.name = format!("module.{}", t.name);
    }
    let variant = scratch.load("dataparallel.safetensors", &tensors).unwrap();
    assert_eq!(variant.info.resnet().unwrap().classifier, "fc");
    assert_eq!(*names(&variant.graph).last().unwrap(), "fc");
    assert_eq!(variant.info.depth(), 8);
    assert_eq!(logits(&plain.graph, 11), logits(&variant.graph, 11));

    // Without the prefix, num_batches_tracked alone is ignored too.
    let mut tensors = Spec::tiny().raw(3, Dtype::F32);
    tensors.push(Raw::int64("bn1.num_batches_tracked", &[], &[1]));
    tensors.push(Raw::int64("layer3.0.bn2.num_batches_tracked", &[], &[1]));
    let tracked = scratch.load("tracked.safetensors", &tensors).unwrap();
    assert_eq!(logits(&plain.graph, 11), logits(&tracked.graph, 11));
}

#[test]
fn option_b_shortcut_and_downsample_names_build_projections() {
    let scratch = Scratch::new();
    let meta = [("normalize_mean", IMAGENET_MEAN), ("normalize_std", IMAGENET_STD), ("shortcut", "B")];
    let mut outputs = Vec::new();
    for form in ["shortcut", "downsample"] {
        let spec = Spec { projection: Some(form), ..Spec::tiny() };
        let file = format!("{form}.safetensors");
        let network =
            model::load(scratch.write(&file, &serialize(&spec.raw(4, Dtype::F32), &meta)), &LoadOptions::default())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(network.info.resnet().unwrap().shortcut, ShortcutKind::B);
        let g = &network.graph;
        let mut expected = vec!["input".to_string(), "conv1".into(), "bn1".into(), "relu".into()];
        expected.extend(block_names("layer1.0", &[]));
        expected.extend(block_names("layer2.0", &[&format!("{form}.0"), &format!("{form}.1")]));
        expected.extend(block_names("layer3.0", &[&format!("{form}.0"), &format!("{form}.1")]));
        expected.extend(["avgpool".to_string(), "linear".into()]);
        assert_eq!(names(g), expected);
        let Op::Conv2d(projection) = &node(g, &format!("layer3.0.{form}.0")).op else { panic!("not a conv") };
        assert_eq!((projection.kernel, projection.stride, projection.padding), (1, 2, 0));
        assert_eq!((projection.in_channels, projection.out_channels), (8, 16));
        let add = node(g, "layer3.0.add");
        assert_eq!(g.node(add.inputs[1]).name, format!("layer3.0.{form}.1"));
        let add1 = node(g, "layer1.0.add");
        assert_eq!(g.node(add1.inputs[1]).name, "relu");
        outputs.push(logits(g, 5));
    }
    assert_eq!(outputs[0], outputs[1], "same weights under both names give the same logits");

    // Option B metadata on an option-A file contradicts the tensors.
    let path = scratch.write("says_b.safetensors", &serialize(&Spec::tiny().raw(4, Dtype::F32), &meta));
    let message = load_error(model::load(&path, &LoadOptions::default()), "says_b.safetensors");
    assert!(message.contains("shortcut"), "{message}");
}

#[test]
fn option_b_block_without_its_projection_is_reported() {
    let scratch = Scratch::new();
    let spec = Spec { projection: Some("shortcut"), ..Spec::tiny() };
    let tensors: Vec<Raw> =
        spec.raw(4, Dtype::F32).into_iter().filter(|t| !t.name.starts_with("layer3.0.shortcut")).collect();
    let message = load_error(scratch.load("partial_b.safetensors", &tensors), "partial_b.safetensors");
    assert!(message.contains("layer3.0.shortcut.0.weight"), "{message}");
}

// ---------------------------------------------------------------- dtypes

/// Rounds every value through `dtype` so that an F32 file holds exactly what the F16/BF16
/// file decodes to: the logits must then be bit-identical.
fn rounded(spec: &Spec, seed: u64, dtype: Dtype) -> Vec<Raw> {
    spec.tensors(seed)
        .iter()
        .map(|(n, s, v)| {
            let r: Vec<f32> = match dtype {
                Dtype::F16 => v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect(),
                _ => v.iter().map(|&x| half::bf16::from_f32(x).to_f32()).collect(),
            };
            Raw::float(n, Dtype::F32, s, &r)
        })
        .collect()
}

#[test]
fn f16_and_bf16_checkpoints_decode_to_the_same_network() {
    let scratch = Scratch::new();
    for (dtype, kind, tolerance) in [(Dtype::F16, TensorDtype::F16, 2e-2), (Dtype::BF16, TensorDtype::BF16, 6e-2)] {
        let spec = Spec { stem: 3, widths: vec![5, 8, 12], ..Spec::tiny() };
        let half_net = scratch.load(&format!("{dtype:?}.safetensors"), &spec.raw(6, dtype)).unwrap();
        assert_eq!(half_net.info.resnet().unwrap().dtype, kind);
        let exact = scratch.load(&format!("{dtype:?}_as_f32.safetensors"), &rounded(&spec, 6, dtype)).unwrap();
        assert_eq!(logits(&half_net.graph, 9), logits(&exact.graph, 9), "{dtype:?} decoding");

        // Against the unrounded F32 weights: equal within the dtype's rounding.
        let full = scratch.load(&format!("{dtype:?}_full.safetensors"), &spec.raw(6, Dtype::F32)).unwrap();
        let (a, b) = (logits(&half_net.graph, 9), logits(&full.graph, 9));
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
        let worst = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst <= tolerance * scale, "{dtype:?}: worst logit difference {worst} (scale {scale})");
    }

    // Mixed storage is allowed and reported.
    let mut tensors = Spec::tiny().raw(6, Dtype::F32);
    let half_conv = Spec::tiny().raw(6, Dtype::F16).into_iter().find(|t| t.name == "layer2.0.conv1.weight").unwrap();
    tensors.retain(|t| t.name != "layer2.0.conv1.weight");
    tensors.push(half_conv);
    assert_eq!(scratch.load("mixed.safetensors", &tensors).unwrap().info.resnet().unwrap().dtype, TensorDtype::Mixed);
}

// ---------------------------------------------------------------- normalization

#[test]
fn normalization_comes_from_metadata_or_options_never_a_default() {
    let scratch = Scratch::new();
    let tensors = Spec::tiny().raw(8, Dtype::F32);
    let bare = scratch.write("bare.safetensors", &serialize(&tensors, &[]));

    let message = load_error(model::load(&bare, &LoadOptions::default()), "bare.safetensors");
    assert!(
        message.contains("--mean a,b,c --std a,b,c") && message.contains("--normalize cifar10|imagenet"),
        "{message}"
    );

    let explicit = LoadOptions { mean: Some([0.5, 0.4, 0.3]), std: Some([0.2, 0.25, 0.3]), ..LoadOptions::default() };
    let network = model::load(&bare, &explicit).unwrap();
    assert_eq!(network.normalization, Normalization::new([0.5, 0.4, 0.3], [0.2, 0.25, 0.3]).unwrap());
    assert_eq!(network.normalization_source, NormalizationSource::Options);
    assert!(network.metadata.is_empty());

    let preset = LoadOptions { preset: Some(NormalizePreset::Cifar10), ..LoadOptions::default() };
    let network = model::load(&bare, &preset).unwrap();
    assert_eq!(network.normalization, NormalizePreset::Cifar10.normalization());
    assert_eq!(network.normalization, Normalization::new([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]).unwrap());
    assert_eq!(network.normalization_source, NormalizationSource::Preset(NormalizePreset::Cifar10));

    // Only a mean: the std is still missing.
    let mean_only = LoadOptions { mean: Some([0.5; 3]), ..LoadOptions::default() };
    let message = load_error(model::load(&bare, &mean_only), "bare.safetensors");
    assert!(message.contains("normalize_std"), "{message}");

    // Invalid explicit values are refused.
    let zero_std = LoadOptions { mean: Some([0.5; 3]), std: Some([0.2, 0.0, 0.2]), ..LoadOptions::default() };
    assert!(matches!(model::load(&bare, &zero_std), Err(LoadError::Normalization { .. })));
}

#[test]
fn options_override_metadata() {
    let scratch = Scratch::new();
    let tagged =
        scratch.write("tagged.safetensors", &serialize(&Spec::tiny().raw(8, Dtype::F32), &standard_metadata()));
    let imagenet = NormalizePreset::Imagenet.normalization();

    let preset = LoadOptions { preset: Some(NormalizePreset::Cifar10), ..LoadOptions::default() };
    assert_eq!(model::load(&tagged, &preset).unwrap().normalization, NormalizePreset::Cifar10.normalization());

    let mean_only = LoadOptions { mean: Some([0.1, 0.2, 0.3]), ..LoadOptions::default() };
    let network = model::load(&tagged, &mean_only).unwrap();
    assert_eq!(network.normalization.mean, [0.1, 0.2, 0.3]);
    assert_eq!(network.normalization.std, imagenet.std, "std still from metadata");
    assert_eq!(network.normalization_source, NormalizationSource::Options);

    // Explicit std beats the preset's.
    let both = LoadOptions { std: Some([1.0; 3]), preset: Some(NormalizePreset::Cifar10), ..LoadOptions::default() };
    let network = model::load(&tagged, &both).unwrap();
    assert_eq!(network.normalization.std, [1.0; 3]);
    assert_eq!(network.normalization.mean, NormalizePreset::Cifar10.normalization().mean);
}

#[test]
fn malformed_or_contradicting_metadata_is_reported() {
    let scratch = Scratch::new();
    let tensors = Spec::tiny().raw(8, Dtype::F32);
    let cases: [(&str, &str, &str); 6] = [
        ("normalize_mean", "0.485,0.456", "normalize_mean"),
        ("normalize_std", "0.229,0,0.225", "normalize_std"),
        ("normalize_mean", "0.485,red,0.406", "red"),
        ("num_classes", "100", "num_classes"),
        ("num_classes", "ten", "num_classes"),
        ("shortcut", "C", "shortcut"),
    ];
    for (index, (key, value, expect)) in cases.into_iter().enumerate() {
        let mut meta = standard_metadata();
        meta.retain(|(k, _)| *k != key);
        meta.push((key, value));
        let file = format!("meta{index}.safetensors");
        let path = scratch.write(&file, &serialize(&tensors, &meta));
        let message = load_error(model::load(&path, &LoadOptions::default()), &file);
        assert!(message.contains(expect), "{key}={value}: {message}");
    }
}

// ---------------------------------------------------------------- block forms

/// A spec's tensors by name, turned into layers by hand (not through the loader).
struct Weights(Vec<(String, Vec<usize>, Vec<f32>)>);

impl Weights {
    fn get(&self, name: &str) -> (&[usize], &[f32]) {
        let (_, shape, values) = self.0.iter().find(|t| t.0 == name).unwrap_or_else(|| panic!("no tensor {name}"));
        (shape, values)
    }

    /// `{name}.weight` as a convolution with PyTorch's CIFAR padding (`kernel / 2`).
    fn conv(&self, name: &str, stride: usize) -> Conv2d {
        let (shape, weight) = self.get(&format!("{name}.weight"));
        let [out_channels, in_channels, kernel, _] = shape[..] else { panic!("{name} is not OIHW") };
        Conv2d { out_channels, in_channels, kernel, stride, padding: kernel / 2, weight: weight.to_vec(), bias: None }
    }

    fn bn(&self, name: &str) -> BatchNorm {
        let get = |param: &str| self.get(&format!("{name}.{param}")).1.to_vec();
        BatchNorm {
            gamma: get("weight"),
            beta: get("bias"),
            mean: get("running_mean"),
            var: get("running_var"),
            eps: 1e-5,
        }
    }
}

/// The forward pass of `spec`'s network, each block's arithmetic written out with
/// `reference::ops`:
/// - standard:     `x = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`;
/// - restructured: `x = relu(bn2(conv2(relu(bn1(conv1(x)))))) + shortcut(x)`;
/// - preact (`spec.preact`): no stem BatchNorm/ReLU,
///   `x = conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut(x)`, the projection reading
///   `relu(bn1(x))`, and `relu(bn(x))` before the pool.
fn hand_forward(spec: &Spec, seed: u64, form: BlockForm, input: &[f32], batch: usize) -> Vec<f32> {
    if form == BlockForm::PreActivation {
        return hand_forward_preact(spec, seed, input, batch);
    }
    let weights = Weights(spec.tensors(seed));
    let conv = |x: &[f32], shape: Shape, name: &str, stride: usize| {
        ops::conv2d(&weights.conv(name, stride), x, shape, batch, None, false)
    };
    let bn = |x: &[f32], shape: Shape, name: &str| ops::batch_norm(&weights.bn(name), x, shape, batch);

    let (stem, mut shape) = conv(input, Shape::new(3, 32, 32), "conv1", 1);
    let mut x = ops::relu(&bn(&stem, shape, "bn1"));
    for (stage, &blocks) in spec.blocks.iter().enumerate() {
        for block in 0..blocks {
            let name = format!("layer{}.{block}", stage + 1);
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let (h, h_shape) = conv(&x, shape, &format!("{name}.conv1"), stride);
            let h = ops::relu(&bn(&h, h_shape, &format!("{name}.bn1")));
            let (h, out_shape) = conv(&h, h_shape, &format!("{name}.conv2"), 1);
            let branch = bn(&h, out_shape, &format!("{name}.bn2"));
            let identity = if stride == 1 && out_shape.channels == shape.channels {
                x.clone()
            } else if let Some(form) = spec.projection {
                let (p, p_shape) = conv(&x, shape, &format!("{name}.{form}.0"), stride);
                bn(&p, p_shape, &format!("{name}.{form}.1"))
            } else {
                let diff = out_shape.channels - shape.channels;
                ops::shortcut_a(&x, shape, batch, stride, diff / 2, diff - diff / 2).0
            };
            x = match form {
                BlockForm::Standard => ops::relu(&ops::add(&branch, &identity)),
                BlockForm::Restructured => ops::add(&ops::relu(&branch), &identity),
                BlockForm::PreActivation => unreachable!("hand_forward_preact"),
            };
            shape = out_shape;
        }
    }
    classify(spec, &weights, &x, shape, batch)
}

fn hand_forward_preact(spec: &Spec, seed: u64, input: &[f32], batch: usize) -> Vec<f32> {
    let weights = Weights(spec.tensors(seed));
    let conv = |x: &[f32], shape: Shape, name: &str, stride: usize| {
        ops::conv2d(&weights.conv(name, stride), x, shape, batch, None, false)
    };
    let bn = |x: &[f32], shape: Shape, name: &str| ops::batch_norm(&weights.bn(name), x, shape, batch);

    let (mut x, mut shape) = conv(input, Shape::new(3, 32, 32), "conv1", 1);
    for (stage, &blocks) in spec.blocks.iter().enumerate() {
        for block in 0..blocks {
            let name = format!("layer{}.{block}", stage + 1);
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let activated = ops::relu(&bn(&x, shape, &format!("{name}.bn1")));
            let (h, h_shape) = conv(&activated, shape, &format!("{name}.conv1"), stride);
            let h = ops::relu(&bn(&h, h_shape, &format!("{name}.bn2")));
            let (branch, out_shape) = conv(&h, h_shape, &format!("{name}.conv2"), 1);
            let identity = if stride == 1 && out_shape.channels == shape.channels {
                x.clone()
            } else if let Some(form) = spec.projection {
                conv(&activated, shape, &format!("{name}.{form}.0"), stride).0
            } else {
                let diff = out_shape.channels - shape.channels;
                ops::shortcut_a(&x, shape, batch, stride, diff / 2, diff - diff / 2).0
            };
            x = ops::add(&branch, &identity);
            shape = out_shape;
        }
    }
    let x = ops::relu(&bn(&x, shape, "bn"));
    classify(spec, &weights, &x, shape, batch)
}

/// Global average pool and the final linear layer.
fn classify(spec: &Spec, weights: &Weights, x: &[f32], shape: Shape, batch: usize) -> Vec<f32> {
    let pooled = ops::global_avg_pool(x, shape, batch);
    let (_, weight) = weights.get(&format!("{}.weight", spec.classifier));
    let (_, bias) = weights.get(&format!("{}.bias", spec.classifier));
    let linear = Linear {
        in_features: shape.channels,
        out_features: spec.classes,
        weight: weight.to_vec(),
        bias: bias.to_vec(),
    };
    ops::linear(&linear, &pooled, batch)
}

fn with_block(mut meta: Vec<(&'static str, &'static str)>, block: &'static str) -> Vec<(&'static str, &'static str)> {
    meta.retain(|(k, _)| *k != "block");
    meta.push(("block", block));
    meta
}

fn restructured_block_names(block: &str, shortcut: &[&str]) -> Vec<String> {
    let mut names: Vec<String> =
        ["conv1", "bn1", "relu1", "conv2", "bn2", "relu2"].iter().map(|l| format!("{block}.{l}")).collect();
    names.extend(shortcut.iter().map(|s| format!("{block}.{s}")));
    names.push(format!("{block}.add"));
    names
}

#[test]
fn restructured_blocks_end_in_the_sum_with_no_relu_after_it() {
    let scratch = Scratch::new();
    let meta = with_block(standard_metadata(), "restructured");
    let path = scratch.write("restructured.safetensors", &serialize(&Spec::tiny().raw(3, Dtype::F32), &meta));
    let network = model::load(&path, &LoadOptions::default()).unwrap();
    assert_eq!(network.info.resnet().unwrap().block, BlockForm::Restructured);
    assert_eq!(network.info.depth(), 8);
    let g = &network.graph;

    let mut expected = vec!["input".to_string(), "conv1".into(), "bn1".into(), "relu".into()];
    expected.extend(restructured_block_names("layer1.0", &[]));
    expected.extend(restructured_block_names("layer2.0", &["shortcut"]));
    expected.extend(restructured_block_names("layer3.0", &["shortcut"]));
    expected.extend(["avgpool".to_string(), "linear".into()]);
    assert_eq!(names(g), expected);

    // relu2 closes the residual branch; the sum feeds the next block (its conv1 and its
    // identity or shortcut) and, after the last block, the pool: never a ReLU.
    let add1 = node(g, "layer1.0.add");
    assert_eq!(
        (g.node(add1.inputs[0]).name.as_str(), g.node(add1.inputs[1]).name.as_str()),
        ("layer1.0.relu2", "relu")
    );
    let add2 = node(g, "layer2.0.add");
    assert_eq!(g.node(add2.inputs[0]).name, "layer2.0.relu2");
    assert_eq!(g.node(add2.inputs[1]).name, "layer2.0.shortcut");
    assert_eq!(g.node(node(g, "layer2.0.relu2").inputs[0]).name, "layer2.0.bn2");
    let consumers = |name: &str| -> Vec<&str> {
        let id = g.nodes().iter().position(|n| n.name == name).unwrap();
        g.consumers(id).into_iter().map(|c| g.node(c).name.as_str()).collect()
    };
    assert_eq!(consumers("layer1.0.add"), vec!["layer2.0.conv1", "layer2.0.shortcut"]);
    assert_eq!(consumers("layer3.0.add"), vec!["avgpool"]);
    for (id, n) in g.nodes().iter().enumerate() {
        if matches!(n.op, Op::Add) {
            assert!(g.consumers(id).iter().all(|&c| !matches!(g.node(c).op, Op::Relu)), "ReLU after {}", n.name);
        }
    }
    // Same number of IF layers (ReLUs) as the standard form: 1 + 2 per block.
    assert_eq!(g.nodes().iter().filter(|n| matches!(n.op, Op::Relu)).count(), 1 + 2 * 3);

    // Block outputs stay non-negative: the identity carries ReLU outputs only.
    let values = reference::forward::forward_all(g, &random_input(g, 2, 11), 2);
    for (n, value) in g.nodes().iter().zip(&values) {
        if n.name.ends_with(".add") {
            assert!(value.iter().all(|&v| v >= 0.0), "{} has a negative value", n.name);
        }
    }
}

#[test]
fn standard_and_restructured_forms_match_a_hand_computed_forward_pass() {
    let scratch = Scratch::new();
    let batch = 2;
    for (label, spec) in [
        ("option_a", Spec { blocks: vec![2, 1, 2], ..Spec::tiny() }),
        ("option_b", Spec { projection: Some("shortcut"), ..Spec::tiny() }),
    ] {
        let tensors = spec.raw(21, Dtype::F32);
        let mut logits_by_form = Vec::new();
        for form in [BlockForm::Standard, BlockForm::Restructured] {
            let file = format!("{label}_{form}.safetensors");
            let mut meta = with_block(standard_metadata(), form.name());
            meta.retain(|(k, _)| *k != "shortcut"); // read from the tensors: A or B
            let path = scratch.write(&file, &serialize(&tensors, &meta));
            let network = model::load(&path, &LoadOptions::default()).unwrap();
            assert_eq!(network.info.resnet().unwrap().block, form, "{file}");
            let input = random_input(&network.graph, batch, 5);
            let loaded = reference::forward(&network.graph, &input, batch);
            let by_hand = hand_forward(&spec, 21, form, &input, batch);
            // The same ops in the same order: equal to the bit.
            assert_eq!(loaded, by_hand, "{file}");
            logits_by_form.push(loaded);
        }
        // The forms are different networks on the same tensors (the test can tell them apart).
        let [standard, restructured] = &logits_by_form[..] else { unreachable!() };
        let largest_gap = standard.iter().zip(restructured).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(largest_gap > 1e-3, "{label}: standard and restructured logits agree ({largest_gap})");
    }
}

#[test]
fn preactivation_form_matches_a_hand_computed_forward_pass() {
    let scratch = Scratch::new();
    let batch = 2;
    for (label, spec) in [
        ("option_a", Spec { blocks: vec![2, 1, 2], preact: true, ..Spec::tiny() }),
        ("option_b", Spec { projection: Some("shortcut"), preact: true, ..Spec::tiny() }),
        ("downsample", Spec { projection: Some("downsample"), preact: true, ..Spec::tiny() }),
    ] {
        let file = format!("{label}_preact.safetensors");
        let mut meta = with_block(standard_metadata(), "preact");
        meta.retain(|(k, _)| *k != "shortcut");
        let path = scratch.write(&file, &serialize(&spec.raw(23, Dtype::F32), &meta));
        let network = model::load(&path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(network.info.resnet().unwrap().block, BlockForm::PreActivation, "{file}");
        let g = &network.graph;
        // One IF layer (ReLU) before each conv of a block, one before the pool; none after a sum.
        let blocks: usize = spec.blocks.iter().sum();
        assert_eq!(g.nodes().iter().filter(|n| matches!(n.op, Op::Relu)).count(), 2 * blocks + 1, "{file}");
        assert_eq!(g.node(node(g, "relu").inputs[0]).name, "bn", "{file}");
        assert_eq!(g.node(node(g, "layer1.0.bn1").inputs[0]).name, "conv1", "{file}");
        let input = random_input(g, batch, 5);
        // The same ops in the same order: equal to the bit.
        assert_eq!(
            reference::forward(g, &input, batch),
            hand_forward(&spec, 23, BlockForm::PreActivation, &input, batch),
            "{file}"
        );
    }
}

#[test]
fn preactivation_and_standard_layouts_do_not_load_as_each_other() {
    let scratch = Scratch::new();
    let preact = Spec { preact: true, ..Spec::tiny() }.raw(3, Dtype::F32);
    let standard = Spec::tiny().raw(3, Dtype::F32);
    let preact_file =
        scratch.write("preact.safetensors", &serialize(&preact, &with_block(standard_metadata(), "preact")));
    let standard_file = scratch.write("standard.safetensors", &serialize(&standard, &standard_metadata()));
    let load = |path: &PathBuf, block: BlockForm| {
        model::load(path, &LoadOptions { block: Some(block), ..LoadOptions::default() })
    };

    // A pre-activation file read as standard lacks the stem BatchNorm.
    let message = load_error(load(&preact_file, BlockForm::Standard), "preact.safetensors");
    assert!(message.contains("bn1.weight"), "{message}");
    // A standard file read as pre-activation: layer2.0.bn1 has the block's output width,
    // not its input width.
    let result = load(&standard_file, BlockForm::PreActivation);
    assert!(
        matches!(result, Err(LoadError::WrongShape { ref tensor, .. }) if tensor == "layer2.0.bn1.weight"),
        "{result:?}"
    );
}

#[test]
fn block_form_comes_from_metadata_unless_the_option_overrides_it() {
    let scratch = Scratch::new();
    let tensors = Spec::tiny().raw(8, Dtype::F32);
    let write = |file: &str, block: Option<&'static str>| {
        let meta = match block {
            Some(block) => with_block(standard_metadata(), block),
            None => standard_metadata(),
        };
        scratch.write(file, &serialize(&tensors, &meta))
    };
    let untagged = write("untagged.safetensors", None);
    let standard = write("standard.safetensors", Some("standard"));
    let restructured = write("restructured.safetensors", Some("restructured"));
    let spaced = write("spaced.safetensors", Some(" Restructured "));
    let unknown = write("unknown.safetensors", Some("bottleneck"));

    let load = |path: &PathBuf, block: Option<BlockForm>| {
        model::load(path, &LoadOptions { block, ..LoadOptions::default() }).unwrap_or_else(|e| panic!("{e}"))
    };
    // From the metadata; absent means standard; names are read like the CLI's (case, spaces).
    assert_eq!(load(&untagged, None).info.resnet().unwrap().block, BlockForm::Standard);
    assert_eq!(load(&standard, None).info.resnet().unwrap().block, BlockForm::Standard);
    assert_eq!(load(&restructured, None).info.resnet().unwrap().block, BlockForm::Restructured);
    assert_eq!(load(&spaced, None).info.resnet().unwrap().block, BlockForm::Restructured);

    // The option wins, and the graph is the one of the form it names.
    let forced_standard = load(&restructured, Some(BlockForm::Standard));
    assert_eq!(forced_standard.info.resnet().unwrap().block, BlockForm::Standard);
    assert_eq!(forced_standard.graph, load(&untagged, None).graph);
    let forced_restructured = load(&untagged, Some(BlockForm::Restructured));
    assert_eq!(forced_restructured.info.resnet().unwrap().block, BlockForm::Restructured);
    assert_eq!(forced_restructured.graph, load(&restructured, None).graph);
    assert_eq!(load(&standard, Some(BlockForm::Restructured)).graph, forced_restructured.graph);
    // An explicit form also rescues a file whose metadata names an unknown one.
    assert_eq!(load(&unknown, Some(BlockForm::Standard)).info.resnet().unwrap().block, BlockForm::Standard);
    // The metadata is kept as stored.
    assert_eq!(forced_standard.metadata.get("block").map(String::as_str), Some("restructured"));
}

#[test]
fn unknown_block_form_names_the_file_and_the_valid_forms() {
    let scratch = Scratch::new();
    let tensors = Spec::tiny().raw(8, Dtype::F32);
    for (index, block) in ["pre-activation", "", "standard,restructured"].into_iter().enumerate() {
        let file = format!("block{index}.safetensors");
        let path = scratch.write(&file, &serialize(&tensors, &with_block(standard_metadata(), block)));
        let result = model::load(&path, &LoadOptions::default());
        assert!(matches!(result, Err(LoadError::UnknownBlock { block: ref b, .. }) if b == block), "{block:?}");
        let message = load_error(result, &file);
        assert!(message.contains(&format!("{block:?}")), "{message}");
        assert!(message.contains("expected one of: standard, restructured, preact"), "{message}");
        assert!(message.contains("--block"), "{message}");
    }
}

#[test]
fn block_form_names_parse_and_print() {
    for form in BlockForm::ALL {
        assert_eq!(form.name().parse::<BlockForm>(), Ok(form));
        assert_eq!(form.to_string(), form.name());
        assert_eq!(form.name().to_uppercase().parse::<BlockForm>(), Ok(form));
        assert_eq!(serde_json::to_string(&form).unwrap(), format!("\"{}\"", form.name()));
    }
    assert_eq!(BlockForm::names(), "standard, restructured, preact");
    let err = "bottleneck".parse::<BlockForm>().unwrap_err();
    assert_eq!(err.name, "bottleneck");
    assert_eq!(err.to_string(), "unknown block form \"bottleneck\", expected one of: standard, restructured, preact");
}

// ---------------------------------------------------------------- bad files

#[test]
fn unreadable_truncated_and_corrupt_files_are_reported() {
    let scratch = Scratch::new();
    let good = serialize(&Spec::tiny().raw(10, Dtype::F32), &standard_metadata());

    let missing = scratch.0.path().join("absent.safetensors");
    let result = model::load(&missing, &LoadOptions::default());
    assert!(matches!(result, Err(LoadError::Input { .. })), "{result:?}");
    load_error(result, "absent.safetensors");

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.safetensors", vec![]),
        ("short.safetensors", good[..5].to_vec()),
        ("truncated.safetensors", good[..good.len() - 10].to_vec()),
        ("header_cut.safetensors", good[..100].to_vec()),
        ("trailing.safetensors", [good.as_slice(), &[0u8; 4]].concat()),
        ("huge_header.safetensors", [&u64::MAX.to_le_bytes()[..], &good[8..]].concat()),
        ("not_json.safetensors", {
            let mut bytes = good.clone();
            bytes[8..20].copy_from_slice(b"this is junk");
            bytes
        }),
        ("not_utf8.safetensors", {
            let mut bytes = good.clone();
            bytes[9] = 0xff;
            bytes
        }),
    ];
    for (file, bytes) in cases {
        let result = model::load(scratch.write(file, &bytes), &LoadOptions::default());
        // The parser's refusal, or, where one header entry is to blame, that tensor named.
        assert!(matches!(result, Err(LoadError::Format { .. } | LoadError::Corrupt { .. })), "{file}: {result:?}");
        let message = load_error(result, file);
        assert!(message.contains("not a valid safetensors file") || message.contains(" is corrupt: "), "{message}");
    }

    let no_tensors = serialize(&[], &standard_metadata());
    let message = load_error(
        model::load(scratch.write("none.safetensors", &no_tensors), &LoadOptions::default()),
        "none.safetensors",
    );
    assert!(message.contains("no tensors"), "{message}");
}

#[test]
fn random_corruption_never_panics() {
    let scratch = Scratch::new();
    let good = serialize(&Spec::tiny().raw(12, Dtype::F32), &standard_metadata());
    let header_end = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let path = scratch.0.path().join("fuzz.safetensors");
    let mut rng = Rng::new(99);
    for round in 0..300 {
        let mut bytes = good.clone();
        match round % 3 {
            0 => bytes.truncate(rng.below(good.len())),
            // Flip bytes in the header, where they change names, shapes, dtypes, offsets.
            1 => {
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(header_end);
                    bytes[at] = rng.next_u64() as u8;
                }
            }
            _ => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(bytes.len());
                    bytes[at] = rng.next_u64() as u8;
                }
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = model::load(&path, &LoadOptions::default()) {
            let message = e.to_string();
            assert!(message.contains("fuzz.safetensors") && !message.contains('\n'), "round {round}: {message}");
        }
    }
}

#[test]
fn missing_tensor_names_the_file_and_tensor() {
    let scratch = Scratch::new();
    let mut tensors = Spec::tiny().raw(13, Dtype::F32);
    tensors.retain(|t| t.name != "layer2.0.bn1.running_var");
    let result = scratch.load("resnet.safetensors", &tensors);
    assert!(matches!(result, Err(LoadError::MissingTensor { .. })));
    let message = load_error(result, "resnet.safetensors");
    assert!(message.ends_with("resnet.safetensors: tensor layer2.0.bn1.running_var is missing"), "{message}");

    // With the DataParallel prefix the message uses the stored name.
    for t in &mut tensors {
        t.name = format!("module.{}", t.name);
    }
    let message = load_error(scratch.load("prefixed.safetensors", &tensors), "prefixed.safetensors");
    assert!(message.contains("module.layer2.0.bn1.running_var"), "{message}");

    // No final layer at all.
    let mut tensors = Spec::tiny().raw(13, Dtype::F32);
    tensors.retain(|t| !t.name.starts_with("linear."));
    let message = load_error(scratch.load("headless.safetensors", &tensors), "headless.safetensors");
    assert!(message.contains("linear.weight") && message.contains("fc.weight"), "{message}");

    let mut tensors = Spec::tiny().raw(13, Dtype::F32);
    tensors.retain(|t| t.name != "linear.bias");
    let message = load_error(scratch.load("nobias.safetensors", &tensors), "nobias.safetensors");
    assert!(message.contains("linear.bias"), "{message}");
}

#[test]
fn wrong_shape_names_found_and_expected() {
    let scratch = Scratch::new();
    let mut tensors = Spec::tiny().raw(14, Dtype::F32);
    let conv = tensors.iter_mut().find(|t| t.name == "layer1.0.conv1.weight").unwrap();
    conv.shape = vec![4, 4, 9];
    let message = load_error(scratch.load("resnet.safetensors", &tensors), "resnet.safetensors");
    assert!(
        message
            .ends_with("resnet.safetensors: tensor layer1.0.conv1.weight has shape [4, 4, 9], expected [4, 4, 3, 3]"),
        "{message}"
    );

    // Inconsistent widths: conv2 reads 6 channels where conv1 produced 8.
    let mut tensors = Spec::tiny().raw(14, Dtype::F32);
    let conv2 = tensors.iter_mut().find(|t| t.name == "layer2.0.conv2.weight").unwrap();
    *conv2 = Raw::float("layer2.0.conv2.weight", Dtype::F32, &[8, 6, 3, 3], &[0.1; 8 * 6 * 9]);
    let message = load_error(scratch.load("widths.safetensors", &tensors), "widths.safetensors");
    assert!(message.contains("layer2.0.conv2.weight has shape [8, 6, 3, 3], expected [8, 8, 3, 3]"), "{message}");

    // A BN of the wrong width.
    let mut tensors = Spec::tiny().raw(14, Dtype::F32);
    let bn = tensors.iter_mut().find(|t| t.name == "layer3.0.bn1.bias").unwrap();
    *bn = Raw::float("layer3.0.bn1.bias", Dtype::F32, &[15], &[0.0; 15]);
    let message = load_error(scratch.load("bn.safetensors", &tensors), "bn.safetensors");
    assert!(message.contains("layer3.0.bn1.bias has shape [15], expected [16]"), "{message}");

    // The linear layer must read the last stage's width.
    let mut tensors = Spec::tiny().raw(14, Dtype::F32);
    let fc = tensors.iter_mut().find(|t| t.name == "linear.weight").unwrap();
    *fc = Raw::float("linear.weight", Dtype::F32, &[10, 8], &[0.0; 80]);
    let message = load_error(scratch.load("linear.safetensors", &tensors), "linear.safetensors");
    assert!(message.contains("linear.weight has shape [10, 8], expected [10, 16]"), "{message}");
}

#[test]
fn wrong_dtype_and_bad_values_are_reported() {
    let scratch = Scratch::new();
    let mut tensors = Spec::tiny().raw(15, Dtype::F32);
    let conv = tensors.iter_mut().find(|t| t.name == "layer1.0.conv2.weight").unwrap();
    *conv = Raw::int64("layer1.0.conv2.weight", &[4, 4, 3, 3], &[1; 144]);
    let result = scratch.load("int.safetensors", &tensors);
    assert!(matches!(result, Err(LoadError::WrongDtype { .. })));
    let message = load_error(result, "int.safetensors");
    assert!(message.contains("tensor layer1.0.conv2.weight has dtype I64, expected F32, F16 or BF16"), "{message}");

    let mut tensors = Spec::tiny().raw(15, Dtype::F32);
    let gamma = tensors.iter_mut().find(|t| t.name == "bn1.weight").unwrap();
    *gamma = Raw::float("bn1.weight", Dtype::F32, &[4], &[1.0, f32::NAN, 1.0, 1.0]);
    let message = load_error(scratch.load("nan.safetensors", &tensors), "nan.safetensors");
    assert!(message.contains("bn1.weight") && message.contains("NaN"), "{message}");

    let mut tensors = Spec::tiny().raw(15, Dtype::F32);
    let var = tensors.iter_mut().find(|t| t.name == "layer1.0.bn2.running_var").unwrap();
    *var = Raw::float("layer1.0.bn2.running_var", Dtype::F32, &[4], &[1.0, 1.0, -0.5, 1.0]);
    let message = load_error(scratch.load("negvar.safetensors", &tensors), "negvar.safetensors");
    assert!(message.contains("layer1.0.bn2.running_var") && message.contains("-0.5"), "{message}");
}

#[test]
fn unrecognized_architectures_are_reported() {
    let scratch = Scratch::new();
    let without = |prefix: &str| -> Vec<Raw> {
        Spec::tiny().raw(16, Dtype::F32).into_iter().filter(|t| !t.name.starts_with(prefix)).collect()
    };

    let message = load_error(scratch.load("gap.safetensors", &without("layer2.")), "gap.safetensors");
    assert!(message.contains("unrecognized architecture") && message.contains("layer2"), "{message}");

    let spec = Spec { blocks: vec![3, 1, 1], ..Spec::tiny() };
    let tensors: Vec<Raw> = spec.raw(16, Dtype::F32).into_iter().filter(|t| !t.name.starts_with("layer1.1.")).collect();
    let message = load_error(scratch.load("hole.safetensors", &tensors), "hole.safetensors");
    assert!(message.contains("layer1.1 is missing"), "{message}");

    let message = load_error(scratch.load("nostages.safetensors", &without("layer")), "nostages.safetensors");
    assert!(message.contains("no residual stages"), "{message}");

    let mut tensors = Spec::tiny().raw(16, Dtype::F32);
    tensors.push(Raw::float("layer1.0.conv3.weight", Dtype::F32, &[16, 4, 1, 1], &[0.0; 64]));
    let result = scratch.load("bottleneck.safetensors", &tensors);
    assert!(matches!(result, Err(LoadError::UnexpectedTensors { .. })));
    let message = load_error(result, "bottleneck.safetensors");
    assert!(message.contains("layer1.0.conv3.weight"), "{message}");

    let mut tensors = Spec::tiny().raw(16, Dtype::F32);
    tensors.retain(|t| t.name != "conv1.weight");
    tensors.push(Raw::float("conv1.weight", Dtype::F32, &[4, 3, 5, 5], &[0.0; 4 * 3 * 25]));
    let message = load_error(scratch.load("stem5.safetensors", &tensors), "stem5.safetensors");
    assert!(message.contains("5x5") && message.contains("conv1.weight"), "{message}");

    let mut tensors = Spec::tiny().raw(16, Dtype::F32);
    tensors.push(Raw::float("fc.weight", Dtype::F32, &[10, 16], &[0.0; 160]));
    tensors.push(Raw::float("fc.bias", Dtype::F32, &[10], &[0.0; 10]));
    let message = load_error(scratch.load("two_heads.safetensors", &tensors), "two_heads.safetensors");
    assert!(message.contains("linear.weight and fc.weight"), "{message}");

    let spec = Spec { widths: vec![8, 4, 16], stem: 8, ..Spec::tiny() };
    let message = load_error(scratch.load("narrowing.safetensors", &spec.raw(16, Dtype::F32)), "narrowing.safetensors");
    assert!(message.contains("layer2.0") && message.contains("option A"), "{message}");

    let mut tensors = Spec::tiny().raw(16, Dtype::F32);
    tensors.push(Raw::float("layerX.0.conv1.weight", Dtype::F32, &[1], &[0.0]));
    let message = load_error(scratch.load("layerx.safetensors", &tensors), "layerx.safetensors");
    assert!(message.contains("layerX.0.conv1.weight"), "{message}");
}

// ---------------------------------------------------------------- real checkpoints

fn real_checkpoint(dir: &Path, file: &str) -> model::Network {
    model::load(dir.join("weights").join(file), &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn real_checkpoints_load_with_their_metadata() {
    let Some(dir) = common::data_dir() else { return };
    let imagenet = NormalizePreset::Imagenet.normalization();
    for (file, depth, blocks, normalization) in [
        ("resnet20_cifar10_akamaster.safetensors", 20, 3, imagenet),
        ("resnet56_cifar10_akamaster.safetensors", 56, 9, imagenet),
        (
            "resnet110_cifar10_fhempcnn.safetensors",
            110,
            18,
            Normalization::new([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]).unwrap(),
        ),
    ] {
        let network = real_checkpoint(&dir, file);
        let info = network.info.resnet().unwrap();
        assert_eq!(info.depth, depth, "{file}");
        assert_eq!(info.blocks_per_stage, vec![blocks; 3], "{file}");
        assert_eq!(info.stage_widths, vec![16, 32, 64], "{file}");
        assert_eq!(info.stage_strides, vec![1, 2, 2], "{file}");
        assert_eq!(info.shortcut, ShortcutKind::A, "{file}");
        assert_eq!(
            (info.num_classes, info.classifier.as_str(), info.dtype),
            (10, "linear", TensorDtype::F32),
            "{file}"
        );
        assert_eq!(network.normalization, normalization, "{file}");
        assert_eq!(network.normalization_source, NormalizationSource::Metadata, "{file}");
        // input + stem (3) + 7 per block + the shortcut of layer2.0 and layer3.0 + pool + linear.
        assert_eq!(network.graph.nodes().len(), 1 + 3 + 7 * 3 * blocks + 2 + 2, "{file}");
        let convs = network.graph.nodes().iter().filter(|n| matches!(n.op, Op::Conv2d(_))).count();
        assert_eq!(convs, 1 + 2 * 3 * blocks, "{file}");
    }
}

#[test]
fn real_resnet20_loads_restructured_on_request() {
    let Some(dir) = common::data_dir() else { return };
    let path = dir.join("weights/resnet20_cifar10_akamaster.safetensors");
    let options = LoadOptions { block: Some(BlockForm::Restructured), ..LoadOptions::default() };
    let restructured = model::load(&path, &options).unwrap_or_else(|e| panic!("{e}"));
    let standard = real_checkpoint(&dir, "resnet20_cifar10_akamaster.safetensors");
    assert_eq!(restructured.info.resnet().unwrap().block, BlockForm::Restructured);
    assert_eq!(standard.info.resnet().unwrap().block, BlockForm::Standard, "the file has no block metadata");
    // The same nodes, the block's second ReLU moved before the sum.
    let count = |g: &Graph, kind: &str| g.nodes().iter().filter(|n| n.op.kind() == kind).count();
    for kind in ["conv2d", "batch_norm", "relu", "add", "shortcut_a"] {
        assert_eq!(count(&restructured.graph, kind), count(&standard.graph, kind), "{kind}");
    }
    assert_eq!(restructured.graph.output(), restructured.graph.nodes().len() - 1);
    // The last block's sum feeds the pool directly.
    let g = &restructured.graph;
    assert_eq!(g.node(g.node(g.output() - 1).inputs[0]).name, "layer3.2.add");
}

/// Index of the largest logit of each image.
fn predictions(logits: &[f32], classes: usize) -> Vec<usize> {
    logits
        .chunks_exact(classes)
        .map(|row| row.iter().enumerate().fold(0, |best, (c, &v)| if v > row[best] { c } else { best }))
        .collect()
}

/// Correct predictions of the CPU reference forward pass of ResNet-20 on the first `images`
/// CIFAR-10 test images, with the network's own (metadata) normalization.
fn resnet20_correct(dir: &Path, images: usize) -> usize {
    let network = real_checkpoint(dir, "resnet20_cifar10_akamaster.safetensors");
    let mut test = Dataset::open(dir.join("cifar10/test_batch.bin"), Some(CifarFormat::Cifar10)).unwrap();
    test.truncate(images);
    let mut correct = 0;
    let mut input = Vec::new();
    for start in (0..images).step_by(32) {
        let count = test.normalized_batch(start, 32, &network.normalization, &mut input);
        let logits = reference::forward(&network.graph, &input, count);
        for (image, predicted) in predictions(&logits, 10).into_iter().enumerate() {
            correct += usize::from(predicted == usize::from(test.labels[start + image]));
        }
    }
    correct
}

#[test]
fn real_resnet20_classifies_cifar10_test_images() {
    let Some(dir) = common::data_dir() else { return };
    // 59/64: observed with this loader, `Dataset::normalized_batch` and `reference::forward`
    // (about 20 s in the test profile). The same pass gets 233/256 on the first 256 images,
    // exactly the README's independent float32 count (the ignored test below checks that);
    // on the first 16 / 32 it gets 16 / 32.
    assert_eq!(resnet20_correct(&dir, 64), 59);
}

/// The README's independent figure: 233 of the first 256 (about a minute in the test profile).
/// Run with `cargo test --test loader -- --ignored`.
#[test]
#[ignore = "slow: 256 images through the CPU reference"]
fn real_resnet20_matches_the_readme_count_on_256_images() {
    let Some(dir) = common::data_dir() else { return };
    let correct = resnet20_correct(&dir, 256);
    // A correct float32 implementation matches within one or two images (near-ties).
    assert!(correct.abs_diff(233) <= 2, "{correct}/256 correct, README says 233");
}

// ---------------------------------------------------------------- trained activations (QCFS)

/// The IF layers (ReLU nodes) of `Spec::tiny()` in the restructured form, by name.
const TINY_RELUS: [&str; 7] = [
    "relu",
    "layer1.0.relu1",
    "layer1.0.relu2",
    "layer2.0.relu1",
    "layer2.0.relu2",
    "layer3.0.relu1",
    "layer3.0.relu2",
];

/// A λ per IF layer of `Spec::tiny()`: per channel for the `relu1` layers (their widths),
/// per layer for the rest; powers of two over a small range.
fn tiny_lambdas(seed: u64) -> Vec<(String, Vec<f32>)> {
    let mut rng = Rng::new(seed);
    let widths = [("relu", 4), ("layer1.0", 4), ("layer2.0", 8), ("layer3.0", 16)];
    TINY_RELUS
        .iter()
        .map(|&name| {
            let channels = widths.iter().find(|(prefix, _)| name.starts_with(prefix)).unwrap().1;
            let count = if name.ends_with("relu1") { channels } else { 1 };
            let values = (0..count).map(|_| [0.5f32, 1.0, 2.0][(rng.next_u64() % 3) as usize]).collect();
            (name.to_string(), values)
        })
        .collect()
}

fn with_lambdas(tensors: &mut Vec<Raw>, lambdas: &[(String, Vec<f32>)]) {
    for (name, values) in lambdas {
        tensors.push(Raw::float(&format!("{name}.lambda"), Dtype::F32, &[values.len()], values));
    }
}

fn qcfs_metadata(levels: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut meta = with_block(standard_metadata(), "restructured");
    meta.push(("activation", "qcfs"));
    meta.push(("qcfs_levels", levels));
    meta
}

#[test]
fn trained_lambdas_load_per_layer_and_per_channel() {
    let scratch = Scratch::new();
    let mut tensors = Spec::tiny().raw(21, Dtype::F32);
    let plain = model::load(
        scratch.write("plain.safetensors", &serialize(&tensors, &with_block(standard_metadata(), "restructured"))),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(plain.trained, None, "a checkpoint without lambdas loads as before");

    let lambdas = tiny_lambdas(3);
    with_lambdas(&mut tensors, &lambdas);
    let path = scratch.write("qcfs.safetensors", &serialize(&tensors, &qcfs_metadata("4")));
    let network = model::load(&path, &LoadOptions::default()).unwrap();
    let trained = network.trained.expect("lambdas read");
    assert_eq!(trained.describe(), "qcfs:4");
    assert_eq!(trained.levels, Some(4));
    assert_eq!(trained.lambdas.len(), TINY_RELUS.len());
    for (name, values) in &lambdas {
        assert_eq!(&trained.lambdas[name], values, "{name}");
    }
    // The graph is the same as without lambdas.
    assert_eq!(network.graph, plain.graph);
}

#[test]
fn bad_lambdas_are_one_line_errors_naming_the_tensor() {
    let scratch = Scratch::new();
    type Mutation = Box<dyn Fn(&mut Vec<Raw>)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "zero",
            Box::new(|t: &mut Vec<Raw>| {
                *t.iter_mut().find(|r| r.name == "relu.lambda").unwrap() =
                    Raw::float("relu.lambda", Dtype::F32, &[1], &[0.0])
            }),
            "relu.lambda has invalid values: element 0 is 0; a trained threshold lambda must be positive",
        ),
        (
            "negative",
            Box::new(|t: &mut Vec<Raw>| {
                *t.iter_mut().find(|r| r.name == "layer2.0.relu1.lambda").unwrap() =
                    Raw::float("layer2.0.relu1.lambda", Dtype::F32, &[8], &[1.0, 1.0, -2.0, 1.0, 1.0, 1.0, 1.0, 1.0])
            }),
            "layer2.0.relu1.lambda has invalid values: element 2 is -2",
        ),
        (
            "nan",
            Box::new(|t: &mut Vec<Raw>| {
                *t.iter_mut().find(|r| r.name == "layer1.0.relu2.lambda").unwrap() =
                    Raw::float("layer1.0.relu2.lambda", Dtype::F32, &[1], &[f32::NAN])
            }),
            "layer1.0.relu2.lambda has invalid values: element 0 is NaN",
        ),
        (
            "infinite",
            Box::new(|t: &mut Vec<Raw>| {
                *t.iter_mut().find(|r| r.name == "layer3.0.relu2.lambda").unwrap() =
                    Raw::float("layer3.0.relu2.lambda", Dtype::F32, &[1], &[f32::INFINITY])
            }),
            "layer3.0.relu2.lambda has invalid values: element 0 is inf",
        ),
        (
            "on_a_conv",
            Box::new(|t: &mut Vec<Raw>| t.push(Raw::float("layer1.0.conv1.lambda", Dtype::F32, &[1], &[1.0]))),
            "layer1.0.conv1.lambda has invalid values: no IF neuron follows this layer",
        ),
        (
            "on_the_classifier",
            Box::new(|t: &mut Vec<Raw>| t.push(Raw::float("linear.lambda", Dtype::F32, &[1], &[1.0]))),
            "linear.lambda has invalid values: no IF neuron follows this layer",
        ),
        (
            "missing_one",
            Box::new(|t: &mut Vec<Raw>| t.retain(|r| r.name != "layer2.0.relu2.lambda")),
            "tensor layer2.0.relu2.lambda (1 of 7 IF layers have no lambda while others have one) is missing",
        ),
        (
            "wrong_shape",
            Box::new(|t: &mut Vec<Raw>| {
                *t.iter_mut().find(|r| r.name == "layer3.0.relu1.lambda").unwrap() =
                    Raw::float("layer3.0.relu1.lambda", Dtype::F32, &[3], &[1.0, 1.0, 1.0])
            }),
            "tensor layer3.0.relu1.lambda has shape [3], expected [1]",
        ),
    ];
    for (case, mutate, expected) in cases {
        let mut tensors = Spec::tiny().raw(22, Dtype::F32);
        with_lambdas(&mut tensors, &tiny_lambdas(4));
        mutate(&mut tensors);
        let file = format!("{case}.safetensors");
        let path = scratch.write(&file, &serialize(&tensors, &qcfs_metadata("4")));
        let message = load_error(model::load(&path, &LoadOptions::default()), &file);
        assert!(message.contains(expected), "{case}: {message}");
    }

    // Metadata naming a trained activation with no lambdas, or levels that are no count.
    let tensors = Spec::tiny().raw(22, Dtype::F32);
    let path = scratch.write("no_lambdas.safetensors", &serialize(&tensors, &qcfs_metadata("4")));
    let message = load_error(model::load(&path, &LoadOptions::default()), "no_lambdas.safetensors");
    assert!(
        message.contains(
            "metadata activation = \"qcfs\": names a trained activation but the file has no *.lambda tensors"
        ),
        "{message}"
    );
    let mut tensors = Spec::tiny().raw(22, Dtype::F32);
    with_lambdas(&mut tensors, &tiny_lambdas(4));
    let path = scratch.write("levels.safetensors", &serialize(&tensors, &qcfs_metadata("four")));
    let message = load_error(model::load(&path, &LoadOptions::default()), "levels.safetensors");
    assert!(message.contains("metadata qcfs_levels = \"four\""), "{message}");
}

/// QCFS (Bu et al., 2022): `λ · clip(⌊x·L/λ + ½⌋, 0, L) / L`, λ per channel or per layer.
fn qcfs(x: &[f32], shape: Shape, batch: usize, lambda: &[f32], levels: usize) -> Vec<f32> {
    let plane = shape.height * shape.width;
    let l = levels as f32;
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let channel = (i / plane) % shape.channels;
            let lam = if lambda.len() == 1 { lambda[0] } else { lambda[channel] };
            lam * (v * l / lam + 0.5).floor().clamp(0.0, l) / l
        })
        .take(batch * shape.len())
        .collect()
}

/// The restructured tiny network's forward pass with QCFS activations, written out.
fn hand_forward_qcfs(
    spec: &Spec,
    seed: u64,
    lambdas: &[(String, Vec<f32>)],
    levels: usize,
    input: &[f32],
    batch: usize,
) -> Vec<f32> {
    let weights = Weights(spec.tensors(seed));
    let lambda = |name: &str| lambdas.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap();
    let conv = |x: &[f32], shape: Shape, name: &str, stride: usize| {
        ops::conv2d(&weights.conv(name, stride), x, shape, batch, None, false)
    };
    let bn = |x: &[f32], shape: Shape, name: &str| ops::batch_norm(&weights.bn(name), x, shape, batch);
    let (stem, mut shape) = conv(input, Shape::new(3, 32, 32), "conv1", 1);
    let mut x = qcfs(&bn(&stem, shape, "bn1"), shape, batch, &lambda("relu"), levels);
    for (stage, &blocks) in spec.blocks.iter().enumerate() {
        for block in 0..blocks {
            let name = format!("layer{}.{block}", stage + 1);
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let (h, h_shape) = conv(&x, shape, &format!("{name}.conv1"), stride);
            let h = qcfs(
                &bn(&h, h_shape, &format!("{name}.bn1")),
                h_shape,
                batch,
                &lambda(&format!("{name}.relu1")),
                levels,
            );
            let (h, out_shape) = conv(&h, h_shape, &format!("{name}.conv2"), 1);
            let branch = qcfs(
                &bn(&h, out_shape, &format!("{name}.bn2")),
                out_shape,
                batch,
                &lambda(&format!("{name}.relu2")),
                levels,
            );
            let identity = if stride == 1 && out_shape.channels == shape.channels {
                x.clone()
            } else {
                let diff = out_shape.channels - shape.channels;
                ops::shortcut_a(&x, shape, batch, stride, diff / 2, diff - diff / 2).0
            };
            x = ops::add(&branch, &identity);
            shape = out_shape;
        }
    }
    classify(spec, &weights, &x, shape, batch)
}

#[test]
fn quantized_ann_is_the_qcfs_forward_pass_and_trained_thresholds_are_lambda() {
    let scratch = Scratch::new();
    let spec = Spec::tiny();
    let lambdas = tiny_lambdas(5);
    let mut tensors = spec.raw(23, Dtype::F32);
    with_lambdas(&mut tensors, &lambdas);
    let path = scratch.write("qcfs.safetensors", &serialize(&tensors, &qcfs_metadata("4")));
    let network = model::load(&path, &LoadOptions::default()).unwrap();

    // 24 random images; each labelled with the class the written-out QCFS pass predicts.
    let images = 24;
    let mut rng = Rng::new(9);
    let pixels: Vec<u8> = (0..images * 3072).map(|_| (rng.next_u64() % 256) as u8).collect();
    let mut input = Vec::new();
    let mut records = Vec::new();
    for image in 0..images {
        records.push(0u8);
        records.extend_from_slice(&pixels[image * 3072..(image + 1) * 3072]);
    }
    let data = scratch.write("images.bin", &records);
    let unlabelled = Dataset::open(&data, Some(CifarFormat::Cifar10)).unwrap();
    unlabelled.normalized_batch(0, images, &network.normalization, &mut input);
    let expected = predictions(&hand_forward_qcfs(&spec, 23, &lambdas, 4, &input, images), 10);
    for (image, &class) in expected.iter().enumerate() {
        records[image * 3073] = class as u8;
    }
    let data = scratch.write("labelled.bin", &records);
    let dataset = Dataset::open(&data, Some(CifarFormat::Cifar10)).unwrap();

    let (activation, accuracy) =
        spikeconv::pipeline::quantized_ann_accuracy(&network, &dataset, images, 8).unwrap().expect("a QCFS network");
    assert_eq!(activation, "qcfs:4");
    assert_eq!(accuracy.predictions, expected);
    assert_eq!(accuracy.correct, images);
    // The ReLU network disagrees somewhere: the quantization is real.
    let relu = predictions(&reference::forward(&network.graph, &input, images), 10);
    assert_ne!(relu, expected, "pick another seed: QCFS and ReLU agree on every image");

    // `trained`: θ = λ per layer or per channel as stored, membranes start at θ/2.
    let folded = spikeconv::convert::fold_batch_norm(&network.graph);
    let snn = spikeconv::convert::snn::convert_from(
        &folded,
        "trained".parse().unwrap(),
        &[],
        network.trained.as_ref(),
        spikeconv::convert::snn::DEFAULT_V_INIT,
    )
    .unwrap();
    assert_eq!(snn.threshold_method, "trained");
    assert_eq!(snn.v_init, 0.5);
    for layer in &snn.layers {
        let (_, lambda) = lambdas.iter().find(|(n, _)| *n == layer.name).unwrap();
        assert_eq!(layer.thresholds.values(), lambda.as_slice(), "{}", layer.name);
    }
    // channel-ttrbr:trained starts every channel at its layer's λ; ttrbr:trained refuses per-channel λ.
    let start = spikeconv::convert::snn::convert_from(
        &folded,
        "channel-ttrbr:trained".parse().unwrap(),
        &[],
        network.trained.as_ref(),
        0.5,
    )
    .unwrap();
    assert_eq!(start.layers[0].thresholds.values(), vec![lambdas[0].1[0]; 4].as_slice());
    let err = spikeconv::convert::snn::convert_from(
        &folded,
        "ttrbr:trained".parse().unwrap(),
        &[],
        network.trained.as_ref(),
        0.5,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("layer1.0.relu1") && err.contains("use channel-ttrbr:trained"), "{err}");
    // Without lambdas the trained methods are an error, not a silent fallback.
    let err = spikeconv::convert::snn::convert_from(&folded, "trained".parse().unwrap(), &[], None, 0.5).unwrap_err();
    assert!(err.to_string().contains("needs a quantization-aware checkpoint"), "{err}");
}
