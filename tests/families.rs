//! Networks beyond He's CIFAR ResNets, as users save them: VGG-16 (BatchNorm, max pools,
//! three linear layers), ResNet-18 (CIFAR names and stem) and ResNet-34 (torchvision
//! names, the 7x7 ImageNet stem and its max pool).
//!
//! Loader exactness against PyTorch: `python/make_family_fixtures.py` filled each network
//! with seeded random weights from a generator it defines bit for bit, exported it with
//! `python/export_safetensors.py` and stored PyTorch's logits on the first 64 CIFAR-10
//! test images (`tests/fixtures/families/*.json`). This test regenerates the same tensors
//! (each checked against the fixture's hash of the exported bytes), loads them through
//! spikeconv's loader, and compares the ANN's logits with PyTorch's to 1e-4 of the largest
//! logit of each image. Then the loader's errors on broken VGG files.

mod common;

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};
use serde_json::Value;
use spikeconv::backends::cpu::ann::forward;
use spikeconv::backends::cpu::ops::to_nhwc;
use spikeconv::backends::cpu::CpuGraph;
use spikeconv::convert::fold_batch_norm;
use spikeconv::data::cifar::Dataset;
use spikeconv::model::graph::Op;
use spikeconv::model::{load_bytes, Architecture, LoadError, LoadOptions, Network, PoolKind, Stem};

// ------------------------------------------------------------------ the fixtures' generator

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn splitmix64(x: u64) -> u64 {
    let x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let z = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The tensor `name` of `shape` in the network of `seed`, as make_family_fixtures.py makes it.
fn generate(seed: u64, name: &str, shape: &[usize]) -> Vec<f32> {
    let base = fnv1a64(name.as_bytes());
    let len: usize = shape.iter().product();
    let fan_in: usize = shape[1..].iter().product();
    (0..len)
        .map(|i| {
            let bits = splitmix64(seed ^ base.wrapping_add(i as u64));
            let u = (bits >> 40) as f64 / (1u64 << 24) as f64;
            let value = if name.ends_with(".running_var") || (name.ends_with(".weight") && shape.len() == 1) {
                0.5 + u
            } else if name.ends_with(".weight") {
                (2.0 * u - 1.0) * (6.0 / fan_in as f64).sqrt()
            } else {
                (2.0 * u - 1.0) * 0.1
            };
            value as f32
        })
        .collect()
}

struct Fixture {
    arch: String,
    bytes: Vec<u8>,
    logits: Vec<Vec<f32>>,
    logits_f64: Vec<Vec<f64>>,
}

/// The fixture `arch`, its network regenerated as the safetensors file the export wrote.
fn fixture(arch: &str) -> Fixture {
    // From the source tree this binary was built in, else from the working directory (a
    // prebuilt binary run in a copy of the repository, as scripts/gpu-check.sh does).
    let built = format!("{}/tests/fixtures/families/{arch}.json", env!("CARGO_MANIFEST_DIR"));
    let path =
        if std::path::Path::new(&built).is_file() { built } else { format!("tests/fixtures/families/{arch}.json") };
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["generator"], "splitmix64-fnv1a64 v1", "{path}");
    let seed = json["seed"].as_u64().unwrap();
    let mut tensors = Vec::new();
    for tensor in json["tensors"].as_array().unwrap() {
        let name = tensor["name"].as_str().unwrap().to_string();
        let shape: Vec<usize> =
            tensor["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let bytes: Vec<u8> = generate(seed, &name, &shape).iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(format!("{:016x}", fnv1a64(&bytes)), tensor["fnv1a64_f32le"].as_str().unwrap(), "{arch}: {name}");
        tensors.push((name, shape, bytes));
    }
    let metadata: HashMap<String, String> = json["metadata"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, bytes)| (name.clone(), TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap()))
        .collect();
    let bytes = safetensors::serialize(views, Some(metadata)).unwrap();
    let rows = |key: &str| -> Vec<Vec<f64>> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect())
            .collect()
    };
    let logits = rows("logits").into_iter().map(|row| row.into_iter().map(|v| v as f32).collect()).collect();
    Fixture { arch: arch.to_string(), bytes, logits, logits_f64: rows("logits_f64") }
}

fn load(fixture: &Fixture) -> Network {
    load_bytes(format!("{}.safetensors", fixture.arch), fixture.bytes.clone(), &LoadOptions::default()).unwrap()
}

/// The first `count` test images, normalized as the network wants (NCHW).
fn test_images(network: &Network, count: usize) -> Option<Vec<f32>> {
    let data = common::data_dir()?;
    let dataset = Dataset::open_first(data.join("cifar10/test_batch.bin"), None, Some(count)).unwrap();
    let mut images = Vec::new();
    dataset.normalized_batch(0, count, &network.normalization, &mut images);
    Some(images)
}

/// Every row of `found` within `tolerance` of the largest magnitude of `expected`'s row.
fn assert_close(found: &[f32], expected: &[Vec<f64>], tolerance: f64, what: &str) {
    let classes = expected[0].len();
    for (image, row) in expected.iter().enumerate() {
        let scale = row.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (class, &want) in row.iter().enumerate() {
            let got = f64::from(found[image * classes + class]);
            assert!(
                (got - want).abs() <= tolerance * scale,
                "{what}: image {image} class {class}: {got} vs PyTorch {want} (largest logit {scale})"
            );
        }
    }
}

fn check_logits(arch: &str) {
    let fixture = fixture(arch);
    let network = load(&fixture);
    let count = fixture.logits.len();
    let Some(images) = test_images(&network, count) else { return };
    // The unfolded graph on the reference and the BN-folded one on the CPU kernels (what
    // `spikeconv ann` and calibration run).
    // (the plain reference is slow: its first 8 images).
    let few = 8;
    let reference =
        spikeconv::reference::forward::forward(&network.graph, &images[..few * network.graph.input_shape().len()], few);
    let folded = fold_batch_norm(&network.graph);
    let cpu = forward(&CpuGraph::new(&folded), to_nhwc(&images, folded.input_shape(), count), count, |_, _| {});
    let f32_rows: Vec<Vec<f64>> =
        fixture.logits.iter().map(|row| row.iter().map(|&v| f64::from(v)).collect()).collect();
    let mut results = vec![(reference, few, "reference"), (cpu, count, "CPU backend")];
    // The wgpu backend's ANN plan (lavapipe here; a real GPU in scripts/gpu-check.sh) on
    // the first 8 images.
    if let Some(common::GpuBackend { ctx, kernels }) = common::gpu() {
        let plan = spikeconv::backends::wgpu::AnnPlan::compile(ctx, kernels, &folded, few).unwrap();
        let gpu = plan.run(ctx, &images[..few * folded.input_shape().len()], few).unwrap();
        results.push((gpu, few, "wgpu backend"));
    }
    for (found, rows, what) in &results {
        assert_close(found, &fixture.logits_f64[..*rows], 1e-4, &format!("{arch}, {what} vs PyTorch float64"));
        assert_close(found, &f32_rows[..*rows], 1e-4, &format!("{arch}, {what} vs PyTorch float32"));
    }
}

#[test]
fn vgg16_logits_equal_pytorch() {
    check_logits("vgg16");
}

#[test]
fn resnet18_logits_equal_pytorch() {
    check_logits("resnet18");
}

#[test]
fn resnet34_logits_equal_pytorch() {
    check_logits("resnet34");
}

#[test]
fn the_architectures_are_read_from_the_tensors() {
    let vgg = load(&fixture("vgg16"));
    let Architecture::Vgg(info) = &vgg.info else { panic!("{:?}", vgg.info) };
    assert_eq!((info.depth, info.batch_norm, info.pool), (16, true, PoolKind::Max));
    assert_eq!(info.config_text(), "64-64-M-128-128-M-256-256-256-M-512-512-512-M-512-512-512-M");
    assert_eq!(info.classifier, [512, 512, 10]);
    assert_eq!(vgg.graph.nodes().iter().filter(|n| matches!(n.op, Op::MaxPool2d(_))).count(), 5);
    assert_eq!(vgg.info.name(), "vgg16");

    let resnet18 = load(&fixture("resnet18"));
    let info = resnet18.info.resnet().unwrap();
    assert_eq!((info.depth, info.stem), (18, Stem::Cifar));
    assert_eq!(info.blocks_per_stage, [2, 2, 2, 2]);
    assert_eq!(info.stage_widths, [64, 128, 256, 512]);
    assert_eq!(info.classifier, "linear");

    let resnet34 = load(&fixture("resnet34"));
    let info = resnet34.info.resnet().unwrap();
    assert_eq!((info.depth, info.stem), (34, Stem::ImageNet(PoolKind::Max)));
    assert_eq!(info.blocks_per_stage, [3, 4, 6, 3]);
    assert_eq!(info.classifier, "fc");
    let pool = resnet34.graph.nodes().iter().find(|n| n.name == "maxpool").unwrap();
    assert_eq!(pool.shape, spikeconv::model::graph::Shape::new(64, 8, 8), "32 → 16 (7x7, stride 2) → 8");
}

// ------------------------------------------------------------------ a small VGG and its errors

/// A VGG-11 (BatchNorm optional) with narrow layers, as the common CIFAR code names it:
/// `features.N` with gaps where the pools are, one `classifier`, `pool` metadata.
fn small_vgg11(batch_norm: bool) -> Vec<(String, Vec<usize>)> {
    let config = [Some(4), None, Some(4), None, Some(8), Some(8), None, Some(8), Some(8), None, Some(8), Some(8), None];
    let mut tensors = Vec::new();
    let (mut index, mut channels) = (0, 3);
    for layer in config {
        match layer {
            None => index += 1,
            Some(width) => {
                tensors.push((format!("features.{index}.weight"), vec![width, channels, 3, 3]));
                tensors.push((format!("features.{index}.bias"), vec![width]));
                if batch_norm {
                    for part in ["weight", "bias", "running_mean", "running_var"] {
                        tensors.push((format!("features.{}.{part}", index + 1), vec![width]));
                    }
                }
                index += if batch_norm { 3 } else { 2 };
                channels = width;
            }
        }
    }
    tensors.push(("classifier.weight".into(), vec![10, 8]));
    tensors.push(("classifier.bias".into(), vec![10]));
    tensors
}

fn vgg_bytes(tensors: &[(String, Vec<usize>)], metadata: &[(&str, &str)]) -> Vec<u8> {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape)| {
            let values = generate(7, name, shape);
            (name.clone(), shape.clone(), values.iter().flat_map(|v| v.to_le_bytes()).collect())
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(name, shape, bytes)| (name.clone(), TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap()))
        .collect();
    let mut meta: HashMap<String, String> = [("normalize_mean", "0.5,0.5,0.5"), ("normalize_std", "0.25,0.25,0.25")]
        .map(|(k, v)| (k.into(), v.into()))
        .into();
    meta.extend(metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    safetensors::serialize(views, Some(meta)).unwrap()
}

fn load_vgg(
    tensors: &[(String, Vec<usize>)],
    metadata: &[(&str, &str)],
    arch: Option<&str>,
) -> Result<Network, LoadError> {
    let options = LoadOptions { arch: arch.map(String::from), ..LoadOptions::default() };
    load_bytes("vgg.safetensors", vgg_bytes(tensors, metadata), &options)
}

fn vgg_error(tensors: &[(String, Vec<usize>)], metadata: &[(&str, &str)], arch: Option<&str>) -> String {
    let Err(error) = load_vgg(tensors, metadata, arch) else { panic!("the load must fail") };
    let message = error.to_string();
    assert!(message.starts_with("vgg.safetensors: ") && !message.contains('\n'), "one line naming the file: {message}");
    message
}

#[test]
fn a_small_vgg_loads_with_either_pool_and_without_batch_norm() {
    for batch_norm in [true, false] {
        let tensors = small_vgg11(batch_norm);
        let network = load_vgg(&tensors, &[], Some(if batch_norm { "vgg11_bn" } else { "VGG-11" })).unwrap();
        let info = network.info.vgg().unwrap();
        assert_eq!(info.config_text(), "4-M-4-M-8-8-M-8-8-M-8-8-M");
        assert_eq!(info.batch_norm, batch_norm);
        // Five 2x2 pools take 32x32 to 1x1: the last one is inferred from the classifier.
        let pools: Vec<_> = network.graph.nodes().iter().filter(|n| matches!(n.op, Op::MaxPool2d(_))).collect();
        assert_eq!(pools.len(), 5);
        assert_eq!(pools[4].shape, spikeconv::model::graph::Shape::new(8, 1, 1));
        let avg = load_vgg(&tensors, &[("pool", "avg")], None).unwrap();
        assert!(avg.graph.nodes().iter().all(|n| !matches!(n.op, Op::MaxPool2d(_))));
        assert_eq!(avg.graph.nodes().iter().filter(|n| matches!(n.op, Op::AvgPool2d(_))).count(), 5);
    }
}

#[test]
fn broken_vgg_files_get_one_line_errors_naming_the_tensor() {
    let good = small_vgg11(true);
    let without =
        |name: &str| -> Vec<(String, Vec<usize>)> { good.iter().filter(|(n, _)| n != name).cloned().collect() };
    let with = |name: &str, shape: Vec<usize>| -> Vec<(String, Vec<usize>)> {
        let mut tensors: Vec<_> = good.iter().filter(|(n, _)| n != name).cloned().collect();
        tensors.push((name.to_string(), shape));
        tensors
    };

    let message = vgg_error(&without("features.5.bias"), &[], None);
    assert!(message.contains("features.5.bias is missing"), "{message}");
    let message = vgg_error(&without("features.1.running_var"), &[], None);
    assert!(message.contains("features.1.running_var"), "{message}");
    let message = vgg_error(&with("features.4.weight", vec![4, 5, 3, 3]), &[], None);
    assert!(message.contains("features.4.weight has shape [4, 5, 3, 3], expected [4, 4, 3, 3]"), "{message}");
    // A classifier over 8×2×2 = 32 features means no pool after the last conv; 12 fits
    // no map.
    let four_pools = load_vgg(&with("classifier.weight", vec![10, 32]), &[], None).unwrap();
    assert_eq!(four_pools.info.vgg().unwrap().config_text(), "4-M-4-M-8-8-M-8-8-M-8-8");
    let message = vgg_error(&with("classifier.weight", vec![10, 12]), &[], None);
    assert!(message.contains("classifier.weight has shape [10, 12], expected [10, 8]"), "{message}");
    let message = vgg_error(&with("extra.weight", vec![3]), &[], None);
    assert!(message.contains("not part of") || message.contains("extra.weight"), "{message}");
    // Nine convolutions is no VGG configuration.
    let mut nine = good.clone();
    nine.push(("features.40.weight".into(), vec![8, 8, 3, 3]));
    let message = vgg_error(&nine, &[], None);
    assert!(message.contains("unrecognized architecture") && message.contains("9 convolutions"), "{message}");
    let message = vgg_error(&without("classifier.weight"), &[], None);
    assert!(message.contains("classifier"), "{message}");
    let message = vgg_error(&good, &[("pool", "median")], None);
    assert!(message.contains("metadata pool"), "{message}");
    let message = vgg_error(&good, &[("arch", "vgg16")], None);
    assert!(message.contains("metadata arch = \"vgg16\"") && message.contains("VGG-11"), "{message}");
    let message = vgg_error(&good, &[], Some("resnet18"));
    assert!(message.contains("--arch resnet18") && message.contains("VGG-11"), "{message}");
}

// ------------------------------------------------------------------ max pools in the SNN file

/// A converted pooled network with its max-pool strategy, through the SNN file and back; the
/// file's `max_pooling` must fit its graph.
#[test]
fn the_max_pool_strategy_is_recorded_in_the_snn_file() {
    use spikeconv::convert::pooling::{self, MaxPoolStrategy};
    use spikeconv::convert::snn::convert;
    use spikeconv::convert::snn_file::{from_bytes, to_bytes, InputNormalization, SnnFile};
    use spikeconv::convert::threshold::Thresholds;

    let network = load_vgg(&small_vgg11(true), &[], None).unwrap();
    let folded = fold_batch_norm(&network.graph);
    let mut files = Vec::new();
    for strategy in MaxPoolStrategy::ALL {
        let (graph, used) = pooling::apply(&folded, strategy);
        assert_eq!(used, Some(strategy));
        let thresholds = graph.relu_nodes().into_iter().map(|node| (node, Thresholds::Layer(0.5))).collect();
        let mut snn = convert(&graph, thresholds, 0.5).unwrap();
        snn.max_pooling = used;
        let file = SnnFile {
            snn,
            normalization: InputNormalization::rgb([0.5; 3], [0.25; 3]),
            source_model: "vgg.safetensors".into(),
        };
        let bytes = to_bytes(&file).unwrap();
        let read = from_bytes(&bytes).unwrap();
        assert_eq!(read, file, "{strategy}");
        let pools = |op: fn(&Op) -> bool| read.snn.graph.nodes().iter().filter(|n| op(&n.op)).count();
        match strategy {
            MaxPoolStrategy::Gated => assert_eq!(pools(|op| matches!(op, Op::MaxPool2d(_))), 5),
            MaxPoolStrategy::Avg => assert_eq!(pools(|op| matches!(op, Op::AvgPool2d(_))), 5),
        }
        files.push(bytes);
    }
    // The metadata must agree with the graph: a gated file claiming avg, an avg file claiming gated.
    // (values of equal length, so the header keeps its size)
    let swap = |bytes: &[u8], from: &str, to: &str| -> Vec<u8> {
        let needle = format!("\"max_pooling\":\"{from}\"").into_bytes();
        let replacement = format!("\"max_pooling\":\"{to}\"").into_bytes();
        assert_eq!(needle.len(), replacement.len());
        let at = bytes.windows(needle.len()).position(|w| w == needle.as_slice()).expect("the header holds the key");
        let mut out = bytes.to_vec();
        out[at..at + needle.len()].copy_from_slice(&replacement);
        out
    };
    let message = from_bytes(&swap(&files[0], "gated", " avg ")).unwrap_err();
    assert!(message.contains("max_pooling") && message.contains("5 max_pool2d"), "{message}");
    let message = from_bytes(&swap(&files[1], "avg", "gat")).unwrap_err();
    assert!(message.contains("max_pooling") && message.contains("gat"), "{message}");
}

// ------------------------------------------------------------------ the trained pooled assets

fn asset(name: &str) -> String {
    format!("{}/assets/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The narrow VGG-11s of assets/ keep the test counts they were trained to (PyTorch:
/// max pools 8321, average pools 8315), within two images for summation order.
#[test]
fn narrow_vgg11_assets_keep_their_accuracy_on_the_whole_test_set() {
    let Some(common::ReferencePaths { test, .. }) = common::reference_paths() else { return };
    for (file, recorded) in [("vgg11w4_max.safetensors", 8321), ("vgg11w4_avg.safetensors", 8315)] {
        let model = asset(file);
        let ann = common::json_lines(&common::spikeconv(&[
            "ann",
            "--backend",
            "cpu",
            "--model",
            &model,
            "--data",
            &test,
            "--json",
        ]));
        assert_eq!((ann[0]["images"].as_i64(), ann[0]["arch"].as_str()), (Some(10_000), Some("vgg11")), "{file}");
        let correct = ann[0]["correct"].as_i64().unwrap();
        assert!((correct - recorded).abs() <= 2, "{file}: {correct}/10000, recorded {recorded}");
    }
}

/// Both max-pool strategies convert and simulate the max-pool VGG; each reports itself,
/// and the ANN column stays the network as loaded (with its max pools) under either.
#[test]
fn both_max_pool_strategies_convert_a_trained_vgg_and_say_so() {
    let Some(common::ReferencePaths { calib, test, .. }) = common::reference_paths() else { return };
    let model = asset("vgg11w4_max.safetensors");
    let mut lines = Vec::new();
    for strategy in ["gated", "avg"] {
        let args = [
            "sweep",
            "--backend",
            "cpu",
            "--model",
            &model,
            "--calib",
            &calib,
            "--calib-images",
            "256",
            "--threshold",
            "channel-percentile:99.9",
            "--maxpool",
            strategy,
            "--data",
            &test,
            "--limit",
            "256",
            "--timesteps",
            "32",
            "--json",
        ];
        let output = common::spikeconv(&args);
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        let line = common::json_lines(&output).remove(0);
        assert_eq!(line["max_pooling"], strategy);
        assert!(stderr.contains("max pooling: 5 layer(s)"), "the strategy is printed: {stderr}");
        lines.push(line);
    }
    assert_eq!(lines[0]["ann_correct"], lines[1]["ann_correct"], "the ANN is the max-pool network under both");
    let ann = lines[0]["ann_correct"].as_f64().unwrap();
    assert!(ann > 200.0, "the asset classifies: {ann}/256");
    // The gate tracks the max-pool ANN within 15 points at T = 32 (measured: results/maxpool-vgg11-narrow).
    let gated = lines[0]["correct"][31].as_f64().unwrap();
    assert!(gated >= ann - 0.15 * 256.0, "gated SNN {gated}/256 against ANN {ann}/256");
}
