//! Tests of ANN→SNN conversion and the CPU reference SNN simulation: IF neuron traces
//! computed by hand, exact ANN equivalence on a network with representable activations,
//! a residual block, calibration statistics merging, and the converted-SNN file.

mod common;

use std::collections::HashMap;

use common::Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use spikeconv::convert::neuron::Neuron;
use spikeconv::convert::snn::{convert_with, synaptic_ops_per_image};
use spikeconv::convert::snn_file::{read_snn, write_snn, InputNormalization, SnnFile};
use spikeconv::convert::stats::{merge_layers, merge_ranges, DEFAULT_BINS};
use spikeconv::convert::{convert, ConvertError, SpikingNetwork, ThresholdMethod, Thresholds};
use spikeconv::model::graph::{BatchNorm, Conv2d, Graph, Linear, Op, Shape};
use spikeconv::reference::calibration::{calibrate, calibration_histograms, calibration_ranges};
use spikeconv::reference::forward::forward_all;
use spikeconv::reference::snn::{correct_per_step, if_step, simulate, Simulator};

/// Runs one neuron for `currents.len()` steps from `v_init × threshold`; returns the steps
/// (1-based) with a spike and the membrane after each step.
fn trace(currents: &[f32], threshold: f32, v_init: f32) -> (Vec<usize>, Vec<f32>) {
    let mut membrane = v_init * threshold;
    let mut spikes = Vec::new();
    let mut membranes = Vec::new();
    for (step, &current) in currents.iter().enumerate() {
        if if_step(&mut membrane, current, threshold) {
            spikes.push(step + 1);
        }
        membranes.push(membrane);
    }
    (spikes, membranes)
}

#[test]
fn if_neuron_resets_by_subtraction() {
    // Threshold 1, current 3/8, v_init 0.5 (all dyadic, so exact in f32):
    // 0.875, 1.25→0.25 (spike), 0.625, 1.0→0 (spike: `>=`), 0.375, 0.75, 1.125→0.125 (spike),
    // 0.5 — the initial state again, so the pattern repeats every 8 steps.
    let (spikes, membranes) = trace(&[0.375; 16], 1.0, 0.5);
    assert_eq!(spikes, [2, 4, 7, 10, 12, 15]);
    assert_eq!(&membranes[..8], [0.875, 0.25, 0.625, 0.0, 0.375, 0.75, 0.125, 0.5]);
    // v_init 0: 0.375, 0.75, 1.125→0.125 (spike), 0.5, 0.875, 1.25→0.25 (spike), 0.625, 1.0→0.
    let (spikes, membranes) = trace(&[0.375; 8], 1.0, 0.0);
    assert_eq!(spikes, [3, 6, 8]);
    assert_eq!(membranes[7], 0.0);
}

#[test]
fn if_neuron_with_current_0_3_spikes_three_times_in_ten_steps() {
    // v_init 0: 0.3, 0.6, 0.9, 1.2→0.2 (spike), 0.5, 0.8, 1.1→0.1 (spike), 0.4, 0.7.
    // (Step 10 would reach 1.0 exactly only in exact arithmetic, so f32 decides; not tested.)
    let (spikes, membranes) = trace(&[0.3; 9], 1.0, 0.0);
    assert_eq!(spikes, [4, 7]);
    let expected = [0.3, 0.6, 0.9, 0.2, 0.5, 0.8, 0.1, 0.4, 0.7];
    for (got, want) in membranes.iter().zip(expected) {
        assert!((got - want).abs() < 1e-6, "{membranes:?}");
    }
    // v_init 0.5: 0.8, 1.1→0.1 (spike), 0.4, 0.7, (1.0: f32 decides), ...
    let (spikes, _) = trace(&[0.3; 4], 1.0, 0.5);
    assert_eq!(spikes, [2]);
}

#[test]
fn if_neuron_edge_cases() {
    // A current equal to the threshold spikes every step, from v_init 0.
    let (spikes, membranes) = trace(&[0.75; 5], 0.75, 0.0);
    assert_eq!(spikes, [1, 2, 3, 4, 5]);
    assert!(membranes.iter().all(|&m| m == 0.0));
    // Negative currents lower the membrane below zero (no floor), then it must climb back.
    let (spikes, membranes) = trace(&[-0.25, -0.5, 1.0, 0.5, -2.0], 1.0, 0.5);
    assert_eq!(membranes, [0.25, -0.25, 0.75, 0.25, -1.75]);
    assert_eq!(spikes, [4]);
    // A current of 2.5 thresholds still spikes once per step; the surplus stays and keeps
    // the neuron firing after the input stops: 2.5→1.5, 4.0→3.0, 3.0→2.0, 2.0→1.0.
    let (spikes, membranes) = trace(&[2.5, 2.5, 0.0, 0.0], 1.0, 0.0);
    assert_eq!(spikes, [1, 2, 3, 4]);
    assert_eq!(membranes, [1.5, 3.0, 2.0, 1.0]);
}

fn conv(
    out_channels: usize,
    in_channels: usize,
    kernel: usize,
    stride: usize,
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
) -> Op {
    let padding = kernel / 2;
    Op::Conv2d(Conv2d { out_channels, in_channels, kernel, stride, padding, weight, bias })
}

fn linear(in_features: usize, out_features: usize, weight: Vec<f32>, bias: Vec<f32>) -> Op {
    Op::Linear(Linear { in_features, out_features, weight, bias })
}

/// A multiple of 1/4 in [lo, hi] (as quarters).
fn quarters(rng: &mut Rng, lo: i32, hi: i32) -> f32 {
    (lo + rng.below((hi - lo + 1) as usize) as i32) as f32 * 0.25
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// input → 1×1 conv → ReLU (IF) → pool → linear. Every value is a multiple of 1/4, so each
/// ReLU input `a` is `j/4`; with threshold `θ = k/4` and `T` a multiple of every `k`,
/// `a = m·θ/T` with `m = j·T/k` whole and a constant current spikes exactly `m` times in
/// `T` steps (for v_init 0 and 0.5 alike), so the accumulated output is exactly `T ×` ANN output.
#[test]
fn snn_matches_ann_exactly_when_activations_are_representable() {
    let mut rng = Rng::new(7);
    let mut g = Graph::new(Shape::new(2, 2, 2));
    let weight: Vec<f32> = (0..6).map(|_| [-1.0, 0.5, 1.0][rng.below(3)]).collect();
    let bias: Vec<f32> = (0..3).map(|_| quarters(&mut rng, -2, 2)).collect();
    let c = g.push("conv", conv(3, 2, 1, 1, weight, Some(bias)), &[0]).unwrap();
    let r = g.push("relu", Op::Relu, &[c]).unwrap();
    let p = g.push("pool", Op::GlobalAvgPool, &[r]).unwrap();
    let fc_weight: Vec<f32> = (0..12).map(|_| quarters(&mut rng, -4, 4)).collect();
    let fc_bias: Vec<f32> = (0..4).map(|_| quarters(&mut rng, -2, 2)).collect();
    g.push("fc", linear(3, 4, fc_weight, fc_bias), &[p]).unwrap();

    let batch = 3;
    let input: Vec<f32> = (0..batch * 8).map(|_| quarters(&mut rng, -4, 8)).collect();
    let ann = forward_all(&g, &input, batch);
    let stats = calibrate(&g, &input, batch, DEFAULT_BINS);

    for method in [ThresholdMethod::Max, ThresholdMethod::ChannelMax] {
        let thresholds = spikeconv::convert::choose(method, &stats[0]).unwrap();
        // T: least common multiple of the thresholds in quarters.
        let timesteps = thresholds.values().iter().fold(1usize, |t, &v| {
            let k = (v * 4.0) as usize;
            assert_eq!(k as f32 * 0.25, v, "threshold {v} is a multiple of 1/4");
            t / gcd(t, k) * k
        });
        eprintln!("{method}: thresholds {:?}, T = {timesteps}", thresholds.values());
        for v_init in [0.0, 0.5] {
            let snn = convert_with(&g, method, &stats, v_init).unwrap();
            let run = simulate(&snn, &input, batch, timesteps);
            for (accumulated, expected) in run.output_accumulated.iter().zip(&ann[g.output()]) {
                let got = accumulated / timesteps as f32;
                assert!((got - expected).abs() <= 1e-6, "{method} v_init {v_init} T {timesteps}: {got} vs {expected}");
            }
            // Each neuron spiked `m = j·T/k` times (relu value j/4, threshold k/4), in integers.
            let shape = g.node(r).shape;
            for (i, (&count, &value)) in run.spike_counts[0].iter().zip(&ann[r]).enumerate() {
                let k = (thresholds.for_channel((i / shape.plane()) % shape.channels) * 4.0) as usize;
                let j = (value * 4.0) as usize;
                assert_eq!(count as usize, j * timesteps / k, "neuron {i}");
            }
        }
    }
}

fn random_conv(rng: &mut Rng, out_channels: usize, in_channels: usize, stride: usize) -> Op {
    let scale = 1.5 / ((in_channels * 9) as f32).sqrt();
    let weight = rng.vec(out_channels * in_channels * 9, -scale, scale);
    conv(out_channels, in_channels, 3, stride, weight, Some(rng.vec(out_channels, -0.1, 0.2)))
}

/// conv-relu, then a downsampling residual block (conv-relu-conv + option-A shortcut with
/// stride 2, add, relu), pool, linear — the structure of a CIFAR ResNet stage boundary.
fn residual_net(rng: &mut Rng) -> Graph {
    let mut g = Graph::new(Shape::new(3, 8, 8));
    let c0 = g.push("conv1", random_conv(rng, 4, 3, 1), &[0]).unwrap();
    let r0 = g.push("relu", Op::Relu, &[c0]).unwrap();
    let c1 = g.push("layer2.0.conv1", random_conv(rng, 8, 4, 2), &[r0]).unwrap();
    let r1 = g.push("layer2.0.relu1", Op::Relu, &[c1]).unwrap();
    let c2 = g.push("layer2.0.conv2", random_conv(rng, 8, 8, 1), &[r1]).unwrap();
    let s = g.push("layer2.0.shortcut", Op::ShortcutA { stride: 2, pad_before: 2, pad_after: 2 }, &[r0]).unwrap();
    let a = g.push("layer2.0.add", Op::Add, &[c2, s]).unwrap();
    let r2 = g.push("layer2.0.relu2", Op::Relu, &[a]).unwrap();
    let p = g.push("avgpool", Op::GlobalAvgPool, &[r2]).unwrap();
    g.push("fc", linear(8, 10, rng.vec(80, -0.5, 0.5), rng.vec(10, -0.1, 0.1)), &[p]).unwrap();
    g
}

#[test]
fn residual_block_simulates_with_at_most_one_spike_per_step() {
    let mut rng = Rng::new(11);
    let g = residual_net(&mut rng);
    let batch = 4;
    let input = rng.vec(batch * 3 * 64, -2.0, 2.0);
    let stats = calibrate(&g, &input, batch, DEFAULT_BINS);
    for method in [ThresholdMethod::Percentile(99.9), ThresholdMethod::ChannelPercentile(99.0)] {
        let snn = convert_with(&g, method, &stats, 0.5).unwrap();
        assert_eq!(snn.threshold_method, method.to_string());
        let timesteps = 12;
        let run = simulate(&snn, &input, batch, timesteps);
        assert_eq!(run.predictions_per_step.len(), timesteps);
        assert!(run.predictions_per_step.iter().all(|p| p.len() == batch && p.iter().all(|&c| c < 10)));
        for (layer, counts) in snn.layers.iter().zip(&run.spike_counts) {
            assert_eq!(counts.len(), batch * g.node(layer.node).shape.len());
            assert!(counts.iter().all(|&c| c as usize <= timesteps), "{}", layer.name);
        }
        let totals = run.spike_totals();
        assert!(totals.iter().all(|&t| t > 0), "every layer fires: {totals:?}");
        let synops = synaptic_ops_per_image(&snn.layer_infos(), &totals, batch);
        assert!(synops.is_finite() && synops > 0.0);

        // Stepping by hand gives the same state as `simulate`.
        let mut simulator = Simulator::new(&snn, &input, batch);
        for t in 0..timesteps {
            assert_eq!(simulator.step(), run.predictions_per_step[t]);
        }
        let counts: Vec<Vec<u32>> = simulator.states.iter().map(|state| state.spike_counts.clone()).collect();
        let membranes: Vec<Vec<f32>> = simulator.states.iter().map(|state| state.membranes.clone()).collect();
        assert_eq!((counts, membranes), (run.spike_counts, run.membranes));
        let labels: Vec<usize> = run.predictions_per_step[timesteps - 1].clone();
        assert_eq!(correct_per_step(&run.predictions_per_step, &labels)[timesteps - 1], batch);
    }
}

#[test]
fn snn_approaches_ann_output_with_more_timesteps() {
    let mut rng = Rng::new(5);
    let g = residual_net(&mut rng);
    let batch = 2;
    let input = rng.vec(batch * 3 * 64, -2.0, 2.0);
    let expected = forward_all(&g, &input, batch).swap_remove(g.output());
    let stats = calibrate(&g, &input, batch, DEFAULT_BINS);
    let snn = convert_with(&g, ThresholdMethod::Max, &stats, 0.5).unwrap();
    let error = |timesteps: usize| -> f32 {
        let run = simulate(&snn, &input, batch, timesteps);
        run.output_accumulated.iter().zip(&expected).map(|(a, e)| (a / timesteps as f32 - e).abs()).fold(0.0, f32::max)
    };
    let (short, long) = (error(4), error(256));
    assert!(long < short && long < 0.1, "max error after 4 steps {short}, after 256 steps {long}");
}

#[test]
fn stats_merged_over_batches_equal_stats_of_the_concatenation() {
    let mut rng = Rng::new(3);
    let g = residual_net(&mut rng);
    let image = 3 * 64;
    let first = rng.vec(3 * image, -2.0, 2.0);
    let second = rng.vec(2 * image, -2.0, 2.0);
    let both: Vec<f32> = first.iter().chain(&second).copied().collect();

    let mut ranges = calibration_ranges(&g, &first, 3);
    merge_ranges(&mut ranges, &calibration_ranges(&g, &second, 2)).unwrap();
    assert_eq!(ranges, calibration_ranges(&g, &both, 5));

    let bins = 64;
    let mut stats = calibration_histograms(&g, &first, 3, &ranges, bins).unwrap();
    merge_layers(&mut stats, &calibration_histograms(&g, &second, 2, &ranges, bins).unwrap()).unwrap();
    assert_eq!(stats, calibration_histograms(&g, &both, 5, &ranges, bins).unwrap());
    assert_eq!(stats, calibrate(&g, &both, 5, bins));

    // Histograms over ranges of a single batch do not merge with those over the full range.
    let own = calibrate(&g, &second, 2, bins);
    assert!(matches!(merge_layers(&mut stats, &own), Err(ConvertError::StatsMismatch(_))));
}

// ---- converted-SNN file ----

/// A network using every op the file stores: a BN left unfolded, a conv without bias,
/// per-layer and per-channel thresholds.
fn file_network() -> SnnFile {
    let mut rng = Rng::new(21);
    let mut g = residual_net(&mut rng);
    let mut nodes = Graph::new(Shape::new(3, 8, 8));
    // Rebuild with two extra nodes in front: a bias-free conv and a BatchNorm on the input side.
    let c = nodes.push("stem", conv(3, 3, 3, 1, rng.vec(81, -0.3, 0.3), None), &[0]).unwrap();
    let bn = BatchNorm {
        gamma: rng.vec(3, 0.5, 1.5),
        beta: rng.vec(3, -0.1, 0.1),
        mean: rng.vec(3, -0.1, 0.1),
        var: rng.vec(3, 0.5, 1.5),
        eps: 1e-5,
    };
    let b = nodes.push("stem_bn", Op::BatchNorm(bn), &[c]).unwrap();
    let offset = b;
    for node in g.nodes().iter().skip(1) {
        let inputs: Vec<usize> = node.inputs.iter().map(|&i| if i == 0 { b } else { i + offset }).collect();
        nodes.push(node.name.clone(), node.op.clone(), &inputs).unwrap();
    }
    g = nodes;
    let relus: Vec<usize> =
        g.nodes().iter().enumerate().filter(|(_, n)| matches!(n.op, Op::Relu)).map(|(i, _)| i).collect();
    let thresholds = vec![
        (relus[0], Thresholds::Layer(1.25)),
        (relus[1], Thresholds::Channel((0..8).map(|c| 0.5 + c as f32 * 0.1).collect())),
        (relus[2], Thresholds::Layer(0.7)),
    ];
    let mut snn = convert(&g, thresholds, 0.5).unwrap();
    snn.threshold_method = "channel-percentile:99.9".into();
    snn.tuned_for_timesteps = Some(32);
    SnnFile {
        snn,
        normalization: InputNormalization::rgb([0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616]),
        source_model: "weights/resnet20_cifar10.safetensors".into(),
    }
}

#[test]
fn snn_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.snn.safetensors");
    let file = file_network();
    write_snn(&path, &file).unwrap();
    let back = read_snn(&path).unwrap();
    assert_eq!(back, file);
    // The network read back simulates identically.
    let mut rng = Rng::new(1);
    let input = rng.vec(2 * 3 * 64, -2.0, 2.0);
    assert_eq!(simulate(&back.snn, &input, 2, 5), simulate(&file.snn, &input, 2, 5));
    // Layers' own v_init survive, and a file without them reads the network's.
    let mut own = file.clone();
    own.snn.layers[1].v_init = Some(0.25);
    own.snn.layers[2].v_init = Some(1.0);
    write_snn(&path, &own).unwrap();
    let back = read_snn(&path).unwrap();
    assert_eq!(back, own);
    assert_eq!((back.snn.layer_v_init(0), back.snn.layer_v_init(1)), (file.snn.v_init, 0.25));
    assert_ne!(simulate(&back.snn, &input, 2, 5), simulate(&file.snn, &input, 2, 5), "they are used (test strength)");
    // So do layers' bias currents.
    let mut biased = file.clone();
    let channels = biased.snn.graph.node(biased.snn.layers[1].node).shape.channels;
    biased.snn.layers[1].bias_current = Some((0..channels).map(|c| c as f32 * 0.125 - 0.25).collect());
    write_snn(&path, &biased).unwrap();
    let back = read_snn(&path).unwrap();
    assert_eq!(back, biased);
    assert_eq!(back.snn.layer_bias_current(0), vec![0.0; back.snn.graph.node(back.snn.layers[0].node).shape.channels]);
    assert_ne!(simulate(&back.snn, &input, 2, 5), simulate(&file.snn, &input, 2, 5), "they are used (test strength)");
    // The neuron survives, and a file without it (written before signed neurons) is `if`.
    let signed = SnnFile { snn: SpikingNetwork { neuron: Neuron::SignedIf, ..file.snn.clone() }, ..file.clone() };
    write_snn(&path, &signed).unwrap();
    assert_eq!(read_snn(&path).unwrap(), signed);
    let mut older = parts(&file);
    older.metadata.remove("neuron");
    write_parts(&path, &older);
    assert_eq!(read_snn(&path).unwrap(), file);
    // v_init 0 and no tuned timestep count survive too.
    let mut plain = file.clone();
    plain.snn.v_init = 0.0;
    plain.snn.tuned_for_timesteps = None;
    write_snn(&path, &plain).unwrap();
    assert_eq!(read_snn(&path).unwrap(), plain);
}

/// The tensors and metadata of a valid file, to edit into bad ones.
struct Parts {
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    metadata: HashMap<String, String>,
}

fn parts(file: &SnnFile) -> Parts {
    let bytes = spikeconv::convert::snn_file::to_bytes(file).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().clone().unwrap();
    let tensors = SafeTensors::deserialize(&bytes)
        .unwrap()
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (name, view.shape().to_vec(), values)
        })
        .collect();
    Parts { tensors, metadata }
}

fn write_parts(path: &std::path::Path, parts: &Parts) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = parts
        .tensors
        .iter()
        .map(|(name, shape, values)| {
            (name.clone(), shape.clone(), values.iter().flat_map(|v| v.to_le_bytes()).collect())
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(name, shape, data)| (name.clone(), TensorView::new(Dtype::F32, shape.clone(), data).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, Some(parts.metadata.clone())).unwrap()).unwrap();
}

fn read_error(path: &std::path::Path) -> String {
    let err = read_snn(path).expect_err("the file is invalid");
    assert!(matches!(err, ConvertError::SnnFile { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with(&path.display().to_string()), "names the file: {message}");
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

#[test]
fn bad_snn_files_give_one_line_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.safetensors");
    let good = parts(&file_network());
    type Edit = Box<dyn Fn(&mut Parts)>;
    let set = |key: &'static str, value: &'static str| -> Edit {
        Box::new(move |p: &mut Parts| {
            p.metadata.insert(key.into(), value.into());
        })
    };
    let tensor = |name: &'static str, edit: fn(&mut (String, Vec<usize>, Vec<f32>))| -> Edit {
        Box::new(move |p: &mut Parts| edit(p.tensors.iter_mut().find(|t| t.0 == name).expect("tensor exists")))
    };
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("wrong format", set("format", "spikeconv-ann"), "format is `spikeconv-ann`"),
        ("other version", set("format_version", "2"), "format_version `2`"),
        ("bad graph JSON", set("graph", "{\"nodes\": ["), "metadata `graph` is not valid"),
        (
            "unknown op",
            Box::new(|p: &mut Parts| {
                let graph = p.metadata["graph"].replace("global_avg_pool", "max_pool");
                p.metadata.insert("graph".into(), graph);
            }),
            "metadata `graph` is not valid",
        ),
        ("bad v_init", set("v_init", "half"), "`v_init`"),
        ("unknown neuron", set("neuron", "lif"), "metadata `neuron`: unknown neuron `lif`; valid: if, signed"),
        ("v_init out of range", set("v_init", "1.5"), "v_init = 1.5"),
        ("bad timesteps", set("tuned_for_timesteps", "-3"), "tuned_for_timesteps"),
        ("bad normalization", set("normalization", "{\"mean\": [0.5], \"std\": [1.0]}"), "normalization has 1 means"),
        ("zero std", set("normalization", "{\"mean\": [0,0,0], \"std\": [1,0,1]}"), "stds positive"),
        (
            "missing key",
            Box::new(|p: &mut Parts| {
                p.metadata.remove("source_model");
            }),
            "`source_model` is missing",
        ),
        (
            "missing tensor",
            Box::new(|p: &mut Parts| p.tensors.retain(|t| t.0 != "layer2.0.conv2.weight")),
            "missing tensor `layer2.0.conv2.weight`",
        ),
        (
            "wrong shape",
            tensor("fc.weight", |t| t.1 = vec![8, 10]),
            "tensor `fc.weight` has shape [8, 10], expected [10, 8]",
        ),
        (
            "negative threshold",
            tensor("relu.threshold", |t| t.2[0] = -1.0),
            "IF layer `relu` has threshold -1; thresholds must be positive",
        ),
        ("zero channel threshold", tensor("layer2.0.relu1.threshold", |t| t.2[3] = 0.0), "(channel 3)"),
        (
            "threshold count",
            tensor("layer2.0.relu1.threshold", |t| {
                t.1 = vec![4];
                t.2.truncate(4);
            }),
            "tensor `layer2.0.relu1.threshold` has shape [4], expected [8]",
        ),
        (
            "huge size",
            Box::new(|p: &mut Parts| {
                let graph = p.metadata["graph"].replacen("\"pad_after\":2", "\"pad_after\":18446744073709551615", 1);
                p.metadata.insert("graph".into(), graph);
            }),
            "above the limit",
        ),
        (
            "layer v_init out of range",
            Box::new(|p: &mut Parts| p.tensors.push(("relu.v_init".into(), vec![1], vec![1.5]))),
            "tensor `relu.v_init`: initial membrane fraction v_init = 1.5 is outside [0, 1]",
        ),
        (
            "layer v_init shape",
            Box::new(|p: &mut Parts| p.tensors.push(("relu.v_init".into(), vec![2], vec![0.5, 0.5]))),
            "tensor `relu.v_init` has shape [2], expected [1]",
        ),
        (
            "bias current not finite",
            Box::new(|p: &mut Parts| {
                let mut bias = vec![0.0; 8];
                bias[2] = f32::NAN;
                p.tensors.push(("layer2.0.relu1.bias_current".into(), vec![8], bias));
            }),
            "tensor `layer2.0.relu1.bias_current` element 2 is NaN; every value must be finite",
        ),
        (
            "bias current shape",
            Box::new(|p: &mut Parts| p.tensors.push(("layer2.0.relu1.bias_current".into(), vec![3], vec![0.0; 3]))),
            "tensor `layer2.0.relu1.bias_current` has shape [3], expected [8]",
        ),
        (
            "extra tensor",
            Box::new(|p: &mut Parts| p.tensors.push(("ghost.weight".into(), vec![1], vec![0.0]))),
            "unexpected tensor `ghost.weight`",
        ),
        (
            "shape mismatch in graph",
            Box::new(|p: &mut Parts| {
                let graph =
                    p.metadata["graph"].replacen("\"stride\":2,\"pad_before\":2", "\"stride\":1,\"pad_before\":2", 1);
                p.metadata.insert("graph".into(), graph);
            }),
            "shortcut",
        ),
    ];
    for (what, edit, expected) in cases {
        let mut edited = Parts { tensors: good.tensors.clone(), metadata: good.metadata.clone() };
        edit(&mut edited);
        write_parts(&path, &edited);
        let message = read_error(&path);
        eprintln!("{what}: {message}");
        assert!(message.contains(expected), "{what}: `{message}` should mention `{expected}`");
    }

    std::fs::write(&path, b"definitely not safetensors").unwrap();
    assert!(read_error(&path).contains("not a safetensors file"));
    let missing = dir.path().join("missing.safetensors");
    assert!(read_error(&missing).contains("cannot read"));
}

#[test]
fn duplicate_node_names_cannot_be_written() {
    let mut g = Graph::new(Shape::new(1, 2, 2));
    let a = g.push("same", conv(1, 1, 1, 1, vec![1.0], None), &[0]).unwrap();
    let b = g.push("same", conv(1, 1, 1, 1, vec![1.0], None), &[a]).unwrap();
    let r = g.push("relu", Op::Relu, &[b]).unwrap();
    let snn: SpikingNetwork = convert(&g, vec![(r, Thresholds::Layer(1.0))], 0.5).unwrap();
    let file = SnnFile {
        snn,
        normalization: InputNormalization { mean: vec![0.0], std: vec![1.0] },
        source_model: String::new(),
    };
    let dir = tempfile::tempdir().unwrap();
    let err = write_snn(&dir.path().join("dup.safetensors"), &file).unwrap_err();
    assert!(err.to_string().contains("`same.weight`"), "{err}");
}
