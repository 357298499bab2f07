//! The native CPU backend against the plain CPU reference: the layer-major spiking
//! simulation gives the time-major reference's predictions after every step and its spike
//! totals exactly on the dyadic networks (every sum exact in any order); the ANN forward
//! pass and calibration equal the reference's on them; the convolution kernels match the
//! reference convolution on random (non-dyadic) inputs of awkward shapes to rounding; on
//! a real converted ResNet-20 the simulation equals the reference bit for bit.

mod common;

use common::dyadic::{
    dyadic_images, dyadic_pooled_net, dyadic_pooled_snn, dyadic_preact_snn, dyadic_resnet, dyadic_restructured_snn,
    dyadic_snn,
};
use common::Rng;
use spikeconv::backends::cpu::ann::forward;
use spikeconv::backends::cpu::constant_current::ConstantCurrentTwin;
use spikeconv::backends::cpu::conv::{conv_dense, conv_events, sums_in_canonical_order, ConvWeights};
use spikeconv::backends::cpu::ops::{to_nchw, to_nhwc};
use spikeconv::backends::cpu::{CpuGraph, CpuSnn};
use spikeconv::convert::neuron::Neuron;
use spikeconv::convert::snn::SpikingNetwork;
use spikeconv::model::graph::{Conv2d, Shape};
use spikeconv::reference;

/// Asserts the CPU backend's per-step predictions and spike totals equal the reference's.
fn assert_matches_reference(snn: &SpikingNetwork, count: usize, timesteps: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let images = dyadic_images(&mut rng, count * snn.graph.input_shape().len());
    let expected = reference::snn::simulate(snn, &images, count, timesteps);
    let cpu = CpuSnn::new(snn).unwrap();
    let (per_step, totals) = cpu.predictions_per_step(&images, count, timesteps).unwrap();
    assert_eq!(per_step, expected.predictions_per_step, "predictions after every step");
    assert_eq!(totals, expected.spike_totals(), "spike totals per layer");
    assert!(totals.iter().any(|&s| s > 0), "the case must spike to test anything");
}

#[test]
fn layer_major_simulation_equals_reference_on_dyadic_networks() {
    for seed in 0..4 {
        for (per_channel, v_init) in [(false, 0.5), (true, 0.5), (true, 0.0), (false, 0.875)] {
            // Odd image counts and step counts that are not powers of two.
            assert_matches_reference(&dyadic_snn(seed, per_channel, v_init), 3, 11, seed);
            assert_matches_reference(&dyadic_restructured_snn(seed, per_channel, v_init), 2, 7, seed + 10);
            assert_matches_reference(&dyadic_preact_snn(seed, per_channel, v_init), 5, 9, seed + 20);
            assert_matches_reference(&dyadic_pooled_snn(seed, per_channel, v_init), 3, 13, seed + 30);
        }
    }
}

#[test]
fn signed_neurons_follow_the_reference_and_take_spikes_back() {
    let mut took_back = false;
    for seed in 0..3 {
        for (per_channel, v_init) in [(false, 0.5), (true, 0.5), (true, 0.25)] {
            for (snn, count, timesteps) in [
                (dyadic_snn(seed, per_channel, v_init), 3, 11),
                (dyadic_restructured_snn(seed, per_channel, v_init), 2, 7),
                (dyadic_preact_snn(seed, per_channel, v_init), 5, 9),
                (dyadic_pooled_snn(seed, per_channel, v_init), 3, 13),
            ] {
                let signed = SpikingNetwork { neuron: Neuron::SignedIf, ..snn };
                assert_matches_reference(&signed, count, timesteps, seed + 50);
                let images = dyadic_images(&mut Rng::new(seed + 50), count * signed.graph.input_shape().len());
                let mut simulator = reference::snn::Simulator::new(&signed, &images, count);
                (0..timesteps).for_each(|_| drop(simulator.step()));
                took_back |= simulator
                    .states
                    .iter()
                    .any(|s| s.net_spikes.iter().zip(&s.spike_counts).any(|(&net, &all)| net < all as i32));
            }
        }
    }
    assert!(took_back, "some neuron fires a negative spike (test strength)");
}

/// A dyadic network whose layers have their own `v_init` (every other layer) and dyadic
/// bias currents.
fn with_own_v_init_and_bias_currents(seed: u64) -> SpikingNetwork {
    let mut snn = dyadic_snn(seed, true, 0.5);
    let mut rng = Rng::new(seed + 87);
    for (index, layer) in snn.layers.iter_mut().enumerate() {
        let channels = snn.graph.node(layer.node).shape.channels;
        layer.v_init = (index % 2 == 0).then_some([0.25, 0.75][index % 4 / 2]);
        layer.bias_current = Some((0..channels).map(|_| (rng.below(5) as f32 - 2.0) / 16.0).collect());
    }
    snn
}

#[test]
fn own_v_init_and_bias_currents_follow_the_reference() {
    assert_matches_reference(&with_own_v_init_and_bias_currents(12), 4, 40, 7);
}

/// The constant-current twin on the CPU kernels equals the reference's twin (output and
/// every layer's spikes), and its first IF layer, whose current is constant in the SNN too
/// (it reads the image every step), counts exactly the SNN's spikes neuron by neuron.
#[test]
fn constant_current_twin_equals_the_reference_and_the_snn_where_currents_are_constant() {
    let networks = [
        with_own_v_init_and_bias_currents(13),
        dyadic_snn(1, false, 0.5),
        dyadic_restructured_snn(2, true, 0.25),
        dyadic_preact_snn(3, true, 0.0),
        dyadic_pooled_snn(4, true, 0.5),
    ];
    for (seed, snn) in networks.iter().enumerate() {
        for timesteps in [4, 16] {
            let count = 3;
            let input_shape = snn.graph.input_shape();
            let images = dyadic_images(&mut Rng::new(seed as u64), count * input_shape.len());
            let (expected, counts) = reference::snn::constant_current_forward(snn, &images, count, timesteps);
            let twin = ConstantCurrentTwin::new(snn, timesteps).unwrap();
            let (output, totals) = twin.forward(to_nhwc(&images, input_shape, count), count);
            assert_eq!(output, expected, "network {seed}, T = {timesteps}: output");
            let expected_totals: Vec<u64> = counts.iter().map(|c| c.iter().map(|&m| u64::from(m)).sum()).collect();
            assert_eq!(totals, expected_totals, "network {seed}, T = {timesteps}: spikes per layer");
            assert!(totals.iter().all(|&s| s > 0), "every layer must spike to test anything: {totals:?}");
            let run = reference::snn::simulate(snn, &images, count, timesteps);
            assert_eq!(counts[0], run.spike_counts[0], "network {seed}, T = {timesteps}: first IF layer");
        }
    }
    assert!(ConstantCurrentTwin::new(&networks[0], 0).is_err(), "T = 0 is an error, not NaN outputs");
}

#[test]
fn sparse_and_dense_paths_both_run_and_agree() {
    // A high threshold keeps spikes sparse (event-driven path), a low one makes them dense
    // (GEMM path); both must equal the reference.
    for scale in [0.0625f32, 16.0] {
        let mut snn = dyadic_snn(3, false, 0.5);
        for layer in &mut snn.layers {
            let values: Vec<f32> = layer.thresholds.values().iter().map(|t| t * scale).collect();
            layer.thresholds = spikeconv::convert::threshold::Thresholds::Layer(values[0]);
        }
        let mut rng = Rng::new(5);
        let images = dyadic_images(&mut rng, 4 * snn.graph.input_shape().len());
        let labels = [0u32, 1, 2, 3];
        let labels_u16 = [0u16, 1, 2, 3];
        let cpu = CpuSnn::new(&snn).unwrap();
        let (result, stats) = cpu.run_with_stats(&images, &labels, 4, 16).unwrap();
        let expected = reference::snn::simulate(&snn, &images, 4, 16);
        assert_eq!(result.spike_totals, expected.spike_totals());
        let correct = reference::snn::correct_per_step(&expected.predictions_per_step, &labels_u16);
        assert_eq!(result.correct.iter().map(|&c| c as usize).collect::<Vec<_>>(), correct);
        if scale < 1.0 {
            assert!(stats.dense > 0, "dense spikes take the dense path: {stats:?}");
        } else {
            assert!(stats.event > 0, "sparse spikes take the event path: {stats:?}");
        }
    }
}

#[test]
fn ann_forward_and_calibration_equal_reference_on_dyadic_network() {
    for graph in [dyadic_resnet(4), dyadic_pooled_net(5)] {
        assert_ann_forward_matches_reference(&graph);
    }
}

fn assert_ann_forward_matches_reference(graph: &spikeconv::model::graph::Graph) {
    let graph = graph.clone();
    let mut rng = Rng::new(4);
    let count = 3;
    let images = dyadic_images(&mut rng, count * graph.input_shape().len());
    let lowered = CpuGraph::new(&graph);
    let mut observed = Vec::new();
    let logits = forward(&lowered, to_nhwc(&images, graph.input_shape(), count), count, |node, values| {
        observed.push((node, to_nchw(values, graph.node(node).shape, count)))
    });
    let expected = reference::forward::forward_all(&graph, &images, count);
    assert_eq!(logits, expected[graph.output()]);
    assert!(!observed.is_empty());
    for (node, values) in observed {
        assert_eq!(values, expected[node], "ReLU node {node}");
    }
}

/// A convolution with random weights; `kernel`, `stride` and `padding` as given.
fn random_conv(rng: &mut Rng, cin: usize, cout: usize, kernel: usize, stride: usize, padding: usize) -> Conv2d {
    Conv2d {
        out_channels: cout,
        in_channels: cin,
        kernel,
        stride,
        padding,
        weight: rng.vec(cout * cin * kernel * kernel, -1.0, 1.0),
        bias: Some(rng.vec(cout, -1.0, 1.0)),
    }
}

#[test]
fn convolution_kernels_match_reference_on_awkward_shapes() {
    let mut rng = Rng::new(17);
    for (cin, cout, h, w, kernel, stride, padding) in [
        (3, 5, 7, 9, 3, 1, 1),
        (4, 6, 9, 8, 3, 2, 1),
        (5, 3, 6, 6, 1, 2, 0),
        (2, 7, 11, 5, 5, 1, 2),
        (16, 17, 8, 8, 3, 1, 0),
        // The direct kernel's channel counts, with rows that are not whole pixel blocks.
        (3, 16, 7, 9, 3, 1, 1),
        (8, 32, 9, 10, 3, 2, 1),
        (4, 48, 5, 5, 1, 1, 0),
        (6, 64, 6, 7, 5, 1, 2),
    ] {
        let conv = random_conv(&mut rng, cin, cout, kernel, stride, padding);
        let in_shape = Shape::new(cin, h, w);
        let out_shape = Shape::new(cout, conv.output_size(h).unwrap(), conv.output_size(w).unwrap());
        let samples = 3;
        // Half the inputs zero, as spikes would leave them, the rest random.
        let input: Vec<f32> = (0..samples * in_shape.len())
            .map(|_| if rng.below(2) == 0 { 0.0 } else { rng.uniform(-1.0, 1.0) })
            .collect();
        let (expected, shape) = reference::ops::conv2d(&conv, &input, in_shape, samples, None, false);
        assert_eq!(shape, out_shape);
        let weights = ConvWeights::new(&conv, in_shape, out_shape);
        let nhwc = to_nhwc(&input, in_shape, samples);
        for kernel_name in ["dense", "events"] {
            let mut out = vec![f32::NAN; samples * out_shape.len()];
            if kernel_name == "dense" {
                conv_dense(&weights, &nhwc, samples, &mut out);
            } else {
                conv_events(&weights, &nhwc, samples, &mut out);
            }
            let got = to_nchw(&out, out_shape, samples);
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                let tolerance = 1e-5 * (cin * kernel * kernel) as f32;
                assert!(
                    (g - e).abs() <= tolerance,
                    "{kernel_name} conv {cin}->{cout} k{kernel} s{stride} at {i}: {g} vs {e}"
                );
            }
        }
        // Rounding each product, the dense kernel is the reference bit for bit (where it
        // runs its direct kernels: `gemm` keeps its own order).
        if sums_in_canonical_order(&weights) {
            let mut out = vec![f32::NAN; samples * out_shape.len()];
            conv_dense(&weights.rounding_each_product(), &nhwc, samples, &mut out);
            let got = to_nchw(&out, out_shape, samples);
            let first = got.iter().zip(&expected).position(|(g, e)| g != e);
            assert_eq!(first, None, "dense conv {cin}->{cout} k{kernel} rounding each product differs");
        }
        // Over spikes (each input 0 or its channel's threshold), both kernels are the
        // reference bit for bit: every θ · w is the reference's product.
        let thresholds: Vec<f32> = (0..cin).map(|_| rng.uniform(0.1, 2.0)).collect();
        let spikes: Vec<f32> = input
            .iter()
            .enumerate()
            .map(|(i, &v)| if v > 0.0 { thresholds[(i / in_shape.plane()) % cin] } else { 0.0 })
            .collect();
        let (expected, _) = reference::ops::conv2d(&conv, &spikes, in_shape, samples, None, false);
        let over_spikes = weights.over_spikes(&thresholds);
        let nhwc = to_nhwc(&spikes, in_shape, samples);
        for kernel_name in ["dense", "events"] {
            if kernel_name == "dense" && !sums_in_canonical_order(&weights) {
                continue;
            }
            let mut out = vec![f32::NAN; samples * out_shape.len()];
            if kernel_name == "dense" {
                conv_dense(&over_spikes, &nhwc, samples, &mut out);
            } else {
                conv_events(&over_spikes, &nhwc, samples, &mut out);
            }
            let got = to_nchw(&out, out_shape, samples);
            let first = got.iter().zip(&expected).position(|(g, e)| g != e);
            assert_eq!(
                first, None,
                "{kernel_name} conv {cin}->{cout} k{kernel} over spikes differs from the reference"
            );
        }
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let snn = dyadic_snn(1, false, 0.5);
    let cpu = CpuSnn::new(&snn).unwrap();
    let len = snn.graph.input_shape().len();
    assert!(cpu.run(&vec![0.0; 2 * len - 1], &[0, 1], 2, 4).is_err());
    assert!(cpu.run(&vec![0.0; 2 * len], &[0], 2, 4).is_err());
    let mut broken = snn.clone();
    broken.layers[0].thresholds = spikeconv::convert::threshold::Thresholds::Layer(f32::NAN);
    let error = CpuSnn::new(&broken).unwrap_err().to_string();
    assert!(error.contains(&snn.layers[0].name), "{error}");
}

/// A converted ResNet-20 on real test images: the CPU backend's spikes are the time-major
/// reference's, bit for bit, in every layer at every step. Convolutions over spikes add
/// exact θ-scaled weights, the first one rounds each product as the reference does, and
/// every sum runs in the reference's order (see ARCHITECTURE.md, "One arithmetic on every
/// backend"). At this size (the reference is slow) the check is coarse: a last-bit
/// difference flips a spike only every few million neuron-steps, so it also passed with
/// fused products; the bit-level checks are the kernel tests above and in
/// tests/kernels.rs, and tests/snn_plan.rs runs a larger network comparison.
#[test]
fn layer_major_simulation_equals_reference_on_a_real_network() {
    let Some(common::ResNet20 { network, folded, train, test }) = common::resnet20() else { return };
    let stats = spikeconv::backends::cpu::calibrate::calibrate(
        &CpuGraph::new(&folded),
        spikeconv::engine::EvaluationSet::new(&train, &network.normalization, 64),
        32,
        2048,
        |_| {},
    )
    .unwrap();
    let method = "channel-percentile:99.9".parse().unwrap();
    let snn = spikeconv::convert::snn::convert_with(&folded, method, &stats, 0.5).unwrap();
    let mut images = Vec::new();
    let (count, timesteps) = (4, 8);
    assert_eq!(test.normalized_batch(0, count, &network.normalization, &mut images), count);
    let expected = reference::snn::simulate(&snn, &images, count, timesteps);
    let (per_step, totals) = CpuSnn::new(&snn).unwrap().predictions_per_step(&images, count, timesteps).unwrap();
    assert_eq!(totals, expected.spike_totals(), "spike totals per layer");
    assert_eq!(per_step, expected.predictions_per_step, "predictions after every step");
    assert!(totals.iter().all(|&s| s > 0), "every layer spikes: {totals:?}");
}
