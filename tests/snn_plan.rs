//! The SNN on the GPU against the CPU reference (`reference::snn`): the layer-major IF scan
//! and the readout on random inputs of awkward sizes, then whole compiled plans on small
//! residual networks and on networks with pooling windows (gated max pools over spikes).
//!
//! Exactness: whole-plan tests use weights, biases, inputs and thresholds that are small
//! dyadic numbers (multiples of 1/8 or 1/16 with few terms, thresholds powers of two), so
//! every float sum the GPU or the CPU forms is exact whatever the order, and spike counts
//! per neuron and correct counts per step must be identical. The IF scan alone on random
//! floats does the same f32 operations in the same order as the reference, so it must
//! match exactly too.

mod common;

use common::dyadic::{
    dyadic_conv, dyadic_images, dyadic_pooled_snn, dyadic_preact_snn, dyadic_restructured_snn, dyadic_snn,
};
use common::{gpu, Rng};
use spikeconv::backends::wgpu::buffers::{read_buffer, storage_from_f32, storage_zeroed};
use spikeconv::backends::wgpu::kernels::record_steps;
use spikeconv::backends::wgpu::layerwise_layers::{if_scan_step, ScanLayout};
use spikeconv::backends::wgpu::snn_layers::{readout_timesteps_step, ReadoutBuffers, ReadoutSize, COUNT_SLOT};
use spikeconv::backends::wgpu::SnnPlan;
use spikeconv::backends::wgpu::{GpuContext, GpuError, GpuStep, Kernels};
use spikeconv::convert::neuron::Neuron;
use spikeconv::convert::snn::{convert, IfLayer, SpikingNetwork};
use spikeconv::convert::threshold::Thresholds;
use spikeconv::engine::walk::ScanShape;
use spikeconv::model::graph::{Conv2d, Graph, Linear, Op, Pool2d, Shape};
use spikeconv::reference::forward::{forward, forward_all};
use spikeconv::reference::ops::argmax_rows;
use spikeconv::reference::snn::{correct_per_step, if_layer_step, simulate, LayerState, Simulator};

fn run_steps(ctx: &GpuContext, steps: &[GpuStep]) {
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("test") });
    record_steps(&mut encoder, steps);
    ctx.queue.submit([encoder.finish()]);
}

fn read_u32(ctx: &GpuContext, buffer: &wgpu::Buffer, len: usize) -> Vec<u32> {
    read_buffer(ctx, buffer, 0, len).expect("readback").into_iter().map(f32::to_bits).collect()
}

fn words(values: &[u32]) -> Vec<f32> {
    values.iter().map(|&w| f32::from_bits(w)).collect()
}

#[test]
fn counted_if_scan_matches_reference_step_by_step() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(1);
    let cases = [
        (1, Shape::new(3, 5, 7), false, 0.5, 6, false),
        (7, Shape::new(5, 3, 3), true, 0.0, 9, false),
        (2, Shape::new(1, 1, 1), true, 0.25, 4, true),
        (3, Shape::new(4, 9, 9), false, 0.5, 5, false), // 81-neuron planes: two workgroups each
    ];
    for ((images, shape, per_channel, v_init, timesteps, constant), neuron) in
        cases.into_iter().flat_map(|case| Neuron::ALL.map(|neuron| (case, neuron)))
    {
        let thresholds = if per_channel {
            Thresholds::Channel(rng.vec(shape.channels, 0.2, 2.0))
        } else {
            Thresholds::Layer(rng.uniform(0.2, 2.0))
        };
        let neurons = images * shape.len();
        let steps_stored = if constant { 1 } else { timesteps };
        let inputs = rng.vec(steps_stored * neurons, -1.0, 2.5);
        let scan = ScanShape { shape, images, timesteps, constant_current: constant, v_init, neuron };
        let current = storage_from_f32(ctx, "current", &inputs).unwrap();
        let threshold_buffer = storage_from_f32(ctx, "t", &thresholds.per_channel(shape.channels)).unwrap();
        let output = storage_zeroed(ctx, "output", timesteps * neurons + scan.groups()).unwrap();
        let step = if_scan_step(ctx, kernels, &scan, &current, &threshold_buffer, &output, true).unwrap();
        let short = storage_zeroed(ctx, "short", timesteps * neurons).unwrap();
        assert!(matches!(
            if_scan_step(ctx, kernels, &scan, &current, &threshold_buffer, &short, true),
            Err(GpuError::InvalidInput(_))
        ));
        run_steps(ctx, &[step]);
        let got = read_buffer(ctx, &output, 0, timesteps * neurons + scan.groups()).unwrap();

        let mut state = LayerState::new(&thresholds, shape, images, v_init);
        let no_bias = vec![0.0; shape.channels];
        for t in 0..timesteps {
            let input = &inputs[if constant { 0 } else { t * neurons }..][..neurons];
            let expected = if_layer_step(neuron, &mut state, input, &thresholds, &no_bias, shape);
            assert_eq!(got[t * neurons..(t + 1) * neurons], expected, "{neuron} neurons: values, step {t}");
        }
        // Per workgroup (64 neurons of one channel plane of one image) the spike count.
        let chunks = shape.plane().div_ceil(64);
        let expected_groups: Vec<f32> = (0..images * shape.channels * chunks)
            .map(|g| {
                let (plane, chunk) = (g / chunks, g % chunks);
                let start = plane * shape.plane() + chunk * 64;
                let end = (start + 64).min((plane + 1) * shape.plane());
                state.spike_counts[start..end].iter().sum::<u32>() as f32
            })
            .collect();
        assert_eq!(got[timesteps * neurons..], expected_groups, "spike counts per workgroup");
        assert!(state.spike_counts.iter().any(|&c| c > 0), "some neuron spikes (test strength)");
        if neuron.signed() && !constant {
            assert!(state.net_spikes.iter().zip(&state.spike_counts).any(|(&n, &c)| n < c as i32), "a negative spike");
        }
    }
}

#[test]
fn readout_over_timesteps_matches_reference() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(2);
    for (batch, count, classes, timesteps) in [(1, 1, 10, 3), (7, 5, 3, 6), (70, 69, 10, 4)] {
        let mut counters = vec![0u32; 1 + timesteps];
        counters[COUNT_SLOT] = count as u32;
        let counter_buffer = storage_from_f32(ctx, "counters", &words(&counters)).unwrap();
        let labels: Vec<u32> = (0..batch).map(|_| rng.below(classes) as u32).collect();
        let label_buffer = storage_from_f32(ctx, "labels", &words(&labels)).unwrap();
        // Ties on purpose: values on a coarse grid.
        let values: Vec<f32> = (0..timesteps * batch * classes).map(|_| rng.below(4) as f32 * 0.5 - 0.5).collect();
        let value_buffer = storage_from_f32(ctx, "values", &values).unwrap();
        let accumulated = storage_zeroed(ctx, "accumulated", batch * classes).unwrap();
        let buffers = ReadoutBuffers {
            values: &value_buffer,
            labels: &label_buffer,
            accumulated: &accumulated,
            counters: &counter_buffer,
            correct_slot: 1,
        };
        let readout = readout_timesteps_step(ctx, kernels, ReadoutSize { batch, classes, timesteps }, buffers).unwrap();
        run_steps(ctx, &[readout]);
        let mut sums = vec![0.0f32; batch * classes];
        let mut expected = vec![count as u32];
        for step in values.chunks_exact(batch * classes) {
            sums.iter_mut().zip(step).for_each(|(s, v)| *s += v);
            let predictions = argmax_rows(&sums, classes);
            expected.push((0..count).filter(|&n| predictions[n] == labels[n] as usize).count() as u32);
        }
        assert_eq!(read_u32(ctx, &counter_buffer, 1 + timesteps), expected, "batch {batch}");
        let got = read_buffer(ctx, &accumulated, 0, batch * classes).unwrap();
        assert_eq!(got[..count * classes], sums[..count * classes], "batch {batch}");
    }
}

#[test]
fn plan_matches_reference_exactly_on_dyadic_networks() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let timesteps = 32;
    for (seed, per_channel, v_init, batch, count, neuron) in [
        (1, false, 0.5, 7, 7, Neuron::If),
        (2, true, 0.0, 7, 5, Neuron::If),
        (3, true, 0.5, 1, 1, Neuron::If),
        (4, false, 0.0, 3, 2, Neuron::If),
        (1, false, 0.5, 7, 7, Neuron::SignedIf),
        (2, true, 0.5, 7, 5, Neuron::SignedIf),
    ] {
        let snn = SpikingNetwork { neuron, ..dyadic_snn(seed, per_channel, v_init) };
        let mut rng = Rng::new(seed + 7);
        let images = dyadic_images(&mut rng, count * snn.graph.input_shape().len());
        let reference = simulate(&snn, &images, count, timesteps);
        // Labels: this network's own prediction after a few steps for some images (so
        // correct counts change over time), random for the others.
        let labels: Vec<u32> = (0..count)
            .map(|n| if n % 2 == 0 { reference.predictions_per_step[3][n] as u32 } else { rng.below(4) as u32 })
            .collect();
        let expected_correct: Vec<u32> =
            correct_per_step(&reference.predictions_per_step, &labels.iter().map(|&l| l as usize).collect::<Vec<_>>())
                .into_iter()
                .map(|c| c as u32)
                .collect();

        let plan = SnnPlan::compile(ctx, kernels, &snn, batch, timesteps).unwrap();
        let (result, counts) = plan.run_with_spike_counts(ctx, &images, &labels, count, timesteps).unwrap();
        let case = format!(
            "{neuron} neurons, seed {seed}, per-channel {per_channel}, v_init {v_init}, batch {batch}, count {count}"
        );
        assert_eq!(counts.len(), snn.layers.len(), "{case}");
        for (layer, (gpu_counts, cpu_counts)) in counts.iter().zip(&reference.spike_counts).enumerate() {
            assert_eq!(gpu_counts, cpu_counts, "{case}: spike counts of layer {layer}");
        }
        assert!(reference.spike_totals().iter().all(|&t| t > 0), "{case}: every layer spikes (test strength)");
        assert_eq!(result.spike_totals, reference.spike_totals(), "{case}");
        assert_eq!(result.correct, expected_correct, "{case}");
        assert_eq!(result.predictions, reference.predictions_per_step[timesteps - 1], "{case}: predictions");

        // A second run on the same plan starts from fresh state (and fewer steps work).
        let again = plan.run(ctx, &images, &labels, count, 5).unwrap();
        assert_eq!(again.correct, expected_correct[..5], "{case}: rerun");
        assert_eq!(again.predictions, reference.predictions_per_step[4], "{case}: rerun predictions");
    }
}

#[test]
fn layers_with_their_own_v_init_match_reference_exactly() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut snn = dyadic_snn(10, false, 0.5);
    for (i, layer) in snn.layers.iter_mut().enumerate() {
        layer.v_init = Some([0.0, 0.25, 0.875, 1.0][i % 4]);
    }
    assert_plan_matches_reference(ctx, kernels, &snn, 10);
    let mut plain = snn.clone();
    plain.layers.iter_mut().for_each(|layer| layer.v_init = None);
    let mut rng = Rng::new(3);
    let images = dyadic_images(&mut rng, 2 * snn.graph.input_shape().len());
    assert_ne!(
        simulate(&snn, &images, 2, 16).spike_counts,
        simulate(&plain, &images, 2, 16).spike_counts,
        "the layers' own v_init are used (test strength)"
    );
    snn.layers[1].v_init = Some(1.5);
    let Err(error) = SnnPlan::compile(ctx, kernels, &snn, 2, 8) else { panic!("v_init above 1 is rejected") };
    let error = error.to_string();
    let expected =
        format!("IF layer `{}`: initial membrane fraction v_init = 1.5 is outside [0, 1]", snn.layers[1].name);
    assert!(error.contains(&expected), "{error}");
}

#[test]
fn layers_with_bias_currents_match_reference_exactly() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut snn = dyadic_snn(12, true, 0.5);
    let mut rng = Rng::new(12);
    for i in 0..snn.layers.len() {
        let channels = snn.graph.node(snn.layers[i].node).shape.channels;
        // Multiples of 1/16 keep every sum exact, whatever the order.
        let bias = (0..channels).map(|_| (rng.below(9) as f32 - 4.0) / 16.0).collect();
        snn.layers[i].bias_current = Some(bias);
    }
    assert_plan_matches_reference(ctx, kernels, &snn, 12);
    let mut plain = snn.clone();
    plain.layers.iter_mut().for_each(|layer| layer.bias_current = None);
    let images = dyadic_images(&mut rng, 2 * snn.graph.input_shape().len());
    assert_ne!(
        simulate(&snn, &images, 2, 16).spike_counts,
        simulate(&plain, &images, 2, 16).spike_counts,
        "the bias currents are used (test strength)"
    );
    snn.layers[2].bias_current.as_mut().unwrap()[1] = f32::NAN;
    let Err(error) = SnnPlan::compile(ctx, kernels, &snn, 2, 8) else { panic!("a NaN bias current is rejected") };
    let expected = format!("IF layer `{}` has bias current NaN (channel 1)", snn.layers[2].name);
    assert!(error.to_string().contains(&expected), "{error}");
    snn.layers[2].bias_current = Some(vec![0.0]);
    let Err(error) = SnnPlan::compile(ctx, kernels, &snn, 2, 8) else { panic!("a short bias current is rejected") };
    assert!(error.to_string().contains("has 1 bias currents"), "{error}");
}

/// Runs `snn` on the plan and on the CPU reference (32 steps, 4 images): spike counts per
/// neuron and correct counts per step must be equal.
fn assert_plan_matches_reference(ctx: &GpuContext, kernels: &Kernels, snn: &SpikingNetwork, seed: u64) {
    assert_plan_matches_reference_over(ctx, kernels, snn, seed, 32);
}

/// [`assert_plan_matches_reference`] over `timesteps` steps (at least 2).
fn assert_plan_matches_reference_over(
    ctx: &GpuContext,
    kernels: &Kernels,
    snn: &SpikingNetwork,
    seed: u64,
    timesteps: usize,
) {
    let count = 4;
    let mut rng = Rng::new(seed + 7);
    let images = dyadic_images(&mut rng, count * snn.graph.input_shape().len());
    let reference = simulate(snn, &images, count, timesteps);
    let labelled = 5.min(timesteps - 1);
    let labels: Vec<u32> = (0..count).map(|n| reference.predictions_per_step[labelled][n] as u32).collect();
    let plan = SnnPlan::compile(ctx, kernels, snn, count, timesteps).unwrap();
    let (result, counts) = plan.run_with_spike_counts(ctx, &images, &labels, count, timesteps).unwrap();
    assert_eq!(counts, reference.spike_counts, "seed {seed}: spike counts per neuron");
    assert!(reference.spike_totals().iter().all(|&t| t > 0), "seed {seed}: every layer spikes (test strength)");
    assert_eq!(result.spike_totals, reference.spike_totals(), "seed {seed}: spike totals");
    let expected: Vec<u32> =
        correct_per_step(&reference.predictions_per_step, &labels.iter().map(|&l| l as usize).collect::<Vec<_>>())
            .into_iter()
            .map(|c| c as u32)
            .collect();
    assert_eq!(result.correct, expected, "seed {seed}");
    assert_eq!(result.predictions, reference.predictions_per_step[timesteps - 1], "seed {seed}: predictions");
}

/// The plan's prediction for each of `count` images after every step, read from runs of
/// one image labelled with each class in turn (a step counts the image correct exactly
/// when its prediction then is the label): `[step][image]`, as the reference's.
fn predictions_per_step(
    ctx: &GpuContext,
    kernels: &Kernels,
    snn: &SpikingNetwork,
    images: &[f32],
    count: usize,
    timesteps: usize,
) -> Vec<Vec<usize>> {
    let plan = SnnPlan::compile(ctx, kernels, snn, 1, timesteps).unwrap();
    let classes = snn.graph.num_classes();
    let mut predictions = vec![vec![usize::MAX; count]; timesteps];
    for (n, image) in images.chunks_exact(snn.graph.input_shape().len()).take(count).enumerate() {
        for class in 0..classes {
            let correct = plan.run(ctx, image, &[class as u32], 1, timesteps).unwrap().correct;
            for (t, &c) in correct.iter().enumerate() {
                if c == 1 {
                    assert_eq!(predictions[t][n], usize::MAX, "image {n}, step {t}: one prediction");
                    predictions[t][n] = class;
                }
            }
        }
    }
    predictions
}

/// Gated max pools over spikes (2×2, and overlapping 3×3 windows of stride 2) and an
/// average pool, at odd numbers of steps: spike counts per neuron, spike totals, correct
/// counts and the predictions after every step equal the reference's.
#[test]
fn pooled_network_matches_reference_exactly() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    for (seed, per_channel, v_init, timesteps) in
        [(1, false, 0.5, 13), (2, true, 0.0, 13), (3, true, 0.5, 32), (4, false, 0.25, 7)]
    {
        let snn = dyadic_pooled_snn(seed, per_channel, v_init);
        assert_plan_matches_reference_over(ctx, kernels, &snn, seed + 30, timesteps);

        let count = 3;
        let mut rng = Rng::new(seed + 60);
        let images = dyadic_images(&mut rng, count * snn.graph.input_shape().len());
        let reference = simulate(&snn, &images, count, timesteps);
        let got = predictions_per_step(ctx, kernels, &snn, &images, count, timesteps);
        assert_eq!(got, reference.predictions_per_step, "seed {seed}: predictions after every step");
    }
}

/// A max pool over the image is static (the ANN's max, once per image); gated max pools
/// in a row pass one IF layer's spikes to the conv after them; a padded 2×2 window of
/// stride 1 overlaps its neighbours.
#[test]
fn static_and_stacked_max_pools_match_reference_exactly() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let pool = |kernel, stride, padding| Op::MaxPool2d(Pool2d { kernel, stride, padding });
    for (seed, per_channel, v_init) in [(40, false, 0.5), (41, true, 0.25)] {
        let mut rng = Rng::new(seed);
        let mut g = Graph::new(Shape::new(3, 12, 12));
        let x = g.push("image_pool", pool(2, 2, 0), &[0]).unwrap(); // 6x6, static
        let x = g.push("conv1", dyadic_conv(&mut rng, 3, 5, 1), &[x]).unwrap();
        let r1 = g.push("relu1", Op::Relu, &[x]).unwrap();
        let x = g.push("pool1", pool(2, 1, 1), &[r1]).unwrap(); // 7x7
        let x = g.push("pool2", pool(3, 2, 1), &[x]).unwrap(); // 4x4
        let x = g.push("conv2", dyadic_conv(&mut rng, 5, 4, 1), &[x]).unwrap();
        let r2 = g.push("relu2", Op::Relu, &[x]).unwrap();
        let x = g.push("avg", Op::AvgPool2d(Pool2d { kernel: 2, stride: 2, padding: 0 }), &[r2]).unwrap(); // 2x2
        let weight = (0..4 * 16).map(|_| (rng.below(9) as f32 - 4.0) / 4.0).collect();
        let bias = vec![0.0; 4];
        g.push("fc", Op::Linear(Linear { in_features: 16, out_features: 4, weight, bias }), &[x]).unwrap();
        let threshold = |channels: usize, rng: &mut Rng| {
            let power = |rng: &mut Rng| [0.25f32, 0.5, 1.0][rng.below(3)];
            if per_channel {
                Thresholds::Channel((0..channels).map(|_| power(rng)).collect())
            } else {
                Thresholds::Layer(power(rng))
            }
        };
        let thresholds = vec![(r1, threshold(5, &mut rng)), (r2, threshold(4, &mut rng))];
        let snn = convert(&g, thresholds, v_init).unwrap();
        assert_plan_matches_reference_over(ctx, kernels, &snn, seed, 11);
    }
}

#[test]
fn restructured_blocks_convert_and_match_reference_exactly() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    for (seed, per_channel, v_init) in [(5, false, 0.5), (6, true, 0.0)] {
        let snn = dyadic_restructured_snn(seed, per_channel, v_init);
        // Stem, and two IF layers inside each of the two blocks; none after the sums.
        assert_eq!(snn.layers.len(), 5);
        assert!(snn.layers.iter().all(|l| !snn.graph.node(snn.graph.node(l.node).inputs[0]).name.ends_with(".add")));
        assert_plan_matches_reference(ctx, kernels, &snn, seed);
    }
}

#[test]
fn preactivation_blocks_convert_and_match_reference_exactly() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    for (seed, per_channel, v_init) in [(7, false, 0.5), (8, true, 0.0)] {
        let snn = dyadic_preact_snn(seed, per_channel, v_init);
        // Two IF layers in each block and one before the pool; the first of each block and
        // the last read a BatchNorm of the running sum, which stays an affine node.
        assert_eq!(snn.layers.len(), 5);
        let source = |l: &IfLayer| snn.graph.node(snn.graph.node(l.node).inputs[0]);
        let after_bn = snn.layers.iter().filter(|l| matches!(source(l).op, Op::BatchNorm(_))).count();
        assert_eq!(after_bn, 3);
        assert_plan_matches_reference(ctx, kernels, &snn, seed);
    }
}

#[test]
fn plan_matches_reference_step_counts_over_64_steps() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let snn = dyadic_snn(9, true, 0.5);
    let mut rng = Rng::new(9);
    let batch = 4;
    let images = dyadic_images(&mut rng, batch * snn.graph.input_shape().len());
    let labels: Vec<u32> = (0..batch).map(|_| rng.below(4) as u32).collect();
    let mut simulator = Simulator::new(&snn, &images, batch);
    let plan = SnnPlan::compile(ctx, kernels, &snn, batch, 64).unwrap();
    let result = plan.run(ctx, &images, &labels, batch, 64).unwrap();
    let mut last = Vec::new();
    let expected: Vec<u32> = (0..64)
        .map(|_| {
            last = simulator.step();
            last.iter().zip(&labels).filter(|(&p, &l)| p == l as usize).count() as u32
        })
        .collect();
    assert_eq!(result.correct, expected);
    assert_eq!(result.predictions, last);
    let totals: Vec<u64> =
        simulator.states.iter().map(|state| state.spike_counts.iter().map(|&v| u64::from(v)).sum()).collect();
    assert_eq!(result.spike_totals, totals);
    // Zero steps: nothing counted.
    let empty = plan.run(ctx, &images, &labels, batch, 0).unwrap();
    assert!(empty.correct.is_empty());
    assert!(empty.predictions.is_empty());
    assert_eq!(empty.spike_totals, vec![0; snn.layers.len()]);
}

/// A network whose every activation is 0 or its layer's threshold: each IF layer then
/// reproduces the ANN's values at every step, so the accumulated output is `t ×` the ANN's
/// logits and the prediction after every step is the ANN's.
#[test]
fn exactly_representable_network_gives_ann_predictions() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(5);
    // Center-tap "copy" convolutions (output channel o copies input channel o % in).
    let copy = |in_channels: usize, out_channels: usize| {
        let mut weight = vec![0.0; out_channels * in_channels * 9];
        for o in 0..out_channels {
            weight[(o * in_channels + o % in_channels) * 9 + 4] = 1.0;
        }
        Op::Conv2d(Conv2d { out_channels, in_channels, kernel: 3, stride: 1, padding: 1, weight, bias: None })
    };
    let mut g = Graph::new(Shape::new(3, 5, 6));
    let c1 = g.push("conv1", copy(3, 4), &[0]).unwrap();
    let r1 = g.push("relu1", Op::Relu, &[c1]).unwrap(); // {0, 1}
    let c2 = g.push("conv2", copy(4, 4), &[r1]).unwrap();
    let a = g.push("add", Op::Add, &[c2, r1]).unwrap();
    let r2 = g.push("relu2", Op::Relu, &[a]).unwrap(); // {0, 2}
    let p = g.push("pool", Op::GlobalAvgPool, &[r2]).unwrap();
    let weight = rng.vec(40, -1.0, 1.0);
    g.push("fc", Op::Linear(Linear { in_features: 4, out_features: 10, weight, bias: vec![0.0; 10] }), &[p]).unwrap();
    let snn = convert(&g, vec![(r1, Thresholds::Layer(1.0)), (r2, Thresholds::Layer(2.0))], 0.0).unwrap();

    let batch = 6;
    let images: Vec<f32> = (0..batch * 90).map(|_| if rng.below(2) == 0 { -1.0 } else { 1.0 }).collect();
    let ann_predictions = argmax_rows(&forward(&g, &images, batch), 10);
    let labels: Vec<u32> = ann_predictions.iter().map(|&p| p as u32).collect();
    let timesteps = 20;
    let plan = SnnPlan::compile(ctx, kernels, &snn, batch, timesteps).unwrap();
    let (result, counts) = plan.run_with_spike_counts(ctx, &images, &labels, batch, timesteps).unwrap();
    assert_eq!(result.correct, vec![batch as u32; timesteps]);
    assert_eq!(result.predictions, ann_predictions);
    // Spike counts are T × (ANN value / threshold) per neuron.
    let values = forward_all(&g, &images, batch);
    for ((layer, node), threshold) in counts.iter().zip([r1, r2]).zip([1.0, 2.0]) {
        let expected: Vec<u32> = values[node].iter().map(|&v| (v / threshold) as u32 * timesteps as u32).collect();
        assert_eq!(layer, &expected);
    }
}

#[test]
fn profile_times_every_node_pass() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    if !ctx.has_timestamps() {
        eprintln!("skipped: {} has no timestamp queries", ctx.describe());
        return;
    }
    let snn = dyadic_snn(2, true, 0.5);
    let mut rng = Rng::new(4);
    let images = dyadic_images(&mut rng, 3 * snn.graph.input_shape().len());
    let plan = SnnPlan::compile(ctx, kernels, &snn, 3, 6).unwrap();
    let passes = plan.profile(ctx, &images, &[0, 1, 2], 3, 6).unwrap();
    // One pass per node with dispatches, their dispatches adding up to the plan's.
    assert_eq!(passes.iter().map(|p| p.kernels.len()).sum::<usize>(), plan.dispatches_per_chunk());
    assert_eq!(passes.last().unwrap().node, "readout");
    assert_eq!(passes.iter().filter(|p| p.kernels.iter().any(|k| k == "IfScanCounted")).count(), snn.layers.len());
    assert!(passes.iter().all(|p| p.nanoseconds.is_finite() && p.nanoseconds >= 0.0));
    assert!(passes.iter().any(|p| p.nanoseconds > 0.0), "some pass takes time");
}

#[test]
fn bad_input_is_rejected() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let snn = dyadic_snn(1, false, 0.5);
    let plan = SnnPlan::compile(ctx, kernels, &snn, 2, 4).unwrap();
    let image = vec![0.0; snn.graph.input_shape().len()];
    assert!(matches!(plan.run(ctx, &image, &[0], 2, 4), Err(GpuError::InvalidInput(_))));
    assert!(matches!(plan.run(ctx, &image, &[0, 1], 1, 4), Err(GpuError::InvalidInput(_))));
    assert!(matches!(plan.run(ctx, &image, &[4], 1, 4), Err(GpuError::InvalidInput(_))));
    let images = vec![0.0; 3 * image.len()];
    assert!(matches!(plan.run(ctx, &images, &[0, 0, 0], 3, 4), Err(GpuError::InvalidInput(_))));
    assert!(matches!(SnnPlan::compile(ctx, kernels, &snn, 0, 4), Err(GpuError::InvalidInput(_))));
    let too_many = SnnPlan::max_batch(ctx, &snn, 4) + 1;
    assert!(matches!(SnnPlan::compile(ctx, kernels, &snn, too_many, 4), Err(GpuError::TooLarge { .. })));
    // Partial batches: padded images are never counted.
    let result = plan.run(ctx, &image, &[0], 1, 3).unwrap();
    assert!(result.correct.iter().all(|&c| c <= 1));
}

/// ResNet-20 on real data, on the GPU plan and on the CPU backend: calibration on 64
/// training images, percentile thresholds, 32 test images for 32 steps. Every sum the two
/// backends form over spikes adds the same exact products (θ · w, formed once) in the same
/// order; the one layer over dense values, the first conv, gets inputs rounded to powers
/// of two here, which makes its products exact too (whether the driver fuses multiply-adds
/// or not: lavapipe does not, the CPU does). So every spike of every layer must agree:
/// per-step correct counts, spike totals and predictions are identical, not close.
#[test]
fn resnet20_plan_equals_the_cpu_backend_bit_for_bit() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let Some(common::ResNet20 { network, folded, train, test }) = common::resnet20() else { return };
    let stats = spikeconv::backends::wgpu::calibrate(
        ctx,
        kernels,
        &folded,
        spikeconv::engine::EvaluationSet::new(&train, &network.normalization, 64),
        32,
        2048,
        |_| {},
    )
    .unwrap();
    let method = "channel-percentile:99.9".parse().unwrap();
    let snn = spikeconv::convert::snn::convert_with(&folded, method, &stats, 0.5).unwrap();
    let mut images = Vec::new();
    let count = test.normalized_batch(0, 32, &network.normalization, &mut images);
    // Each value rounded to the nearest power of two (sign kept): the image stays
    // recognisable and every product with a weight is exact.
    for value in &mut images {
        if *value != 0.0 {
            *value = value.signum() * value.abs().log2().round().exp2();
        }
    }
    let labels: Vec<u32> = test.labels[..count].iter().map(|&l| u32::from(l)).collect();
    let timesteps = 32;
    let mut totals = Vec::new();
    for neuron in Neuron::ALL {
        let snn = SpikingNetwork { neuron, ..snn.clone() };
        let plan = SnnPlan::compile(ctx, kernels, &snn, count, timesteps).unwrap();
        let gpu = plan.run(ctx, &images, &labels, count, timesteps).unwrap();
        let cpu = spikeconv::backends::cpu::CpuSnn::new(&snn).unwrap().run(&images, &labels, count, timesteps).unwrap();
        assert_eq!(gpu.spike_totals, cpu.spike_totals, "{neuron} neurons: spikes per layer");
        assert_eq!(gpu.correct, cpu.correct, "{neuron} neurons: correct per step");
        assert_eq!(gpu.predictions, cpu.predictions);
        assert!(gpu.spike_totals.iter().all(|&t| t > 0), "{:?}", gpu.spike_totals);
        assert!(gpu.correct[timesteps - 1] >= 16, "the network still classifies: {:?}", gpu.correct);
        eprintln!("ResNet-20 ({neuron}), 32 power-of-two images, T = 32: correct per step {:?}", gpu.correct);
        totals.push(gpu.spike_totals);
    }
    assert_ne!(totals[0], totals[1], "signed neurons fire differently (test strength)");
}
