//! The layer-major kernels and walks (error analysis, threshold tuning) against the CPU
//! reference (`reference::layerwise`) and against the time-major SNN plan.

mod common;

use common::dyadic::{dyadic_images, dyadic_pooled_snn, dyadic_preact_snn, dyadic_restructured_snn, dyadic_snn};
use common::{gpu, Rng};
use spikeconv::backends::cpu::CpuDevice;
use spikeconv::backends::wgpu::buffers::{read_buffer, storage_from_f32, storage_zeroed};
use spikeconv::backends::wgpu::kernels::record_steps;
use spikeconv::backends::wgpu::layerwise_layers::{
    error_analysis_step, if_scan_step, sum_partials_by_channel, threshold_search_step, ScanLayout, ThresholdSearch,
};
use spikeconv::backends::wgpu::SnnPlan;
use spikeconv::backends::wgpu::{GpuContext, GpuStep};
use spikeconv::convert::bias_correction::BIAS_CORRECTION_ROUNDS;
use spikeconv::convert::neuron::Neuron;
use spikeconv::convert::snn::SpikingNetwork;
use spikeconv::convert::threshold::Thresholds;
use spikeconv::convert::ttrbr::V_INIT_CANDIDATES;
use spikeconv::engine::walk::{walk, LayerSetting, ScanShape, Walker, ERROR_STATS, SIGNED_TOTAL_STAT};
use spikeconv::model::graph::Shape;
use spikeconv::reference::layerwise::{candidate_errors, if_scan, neuron_errors};
use spikeconv::tuning::analyze::analyze;
use spikeconv::tuning::tune::{correct_bias, tune, TuneOptions};

fn run(ctx: &GpuContext, step: GpuStep) {
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("test") });
    record_steps(&mut encoder, &[step]);
    ctx.queue.submit([encoder.finish()]);
}

fn close(got: f64, expected: f64, what: &str) {
    assert!((got - expected).abs() <= 1e-4 * expected.abs().max(1.0), "{what}: GPU {got}, CPU {expected}");
}

#[test]
fn kernels_match_reference_on_random_inputs() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let mut rng = Rng::new(42);
    // Planes of 21 (one partial chunk) and 81 (a full and a partial chunk), both current kinds.
    let cases = [
        (3, Shape::new(5, 3, 7), 13, false, 0.5),
        (2, Shape::new(2, 9, 9), 9, true, 0.0),
        (1, Shape::new(3, 8, 8), 32, false, 0.25),
    ];
    for ((images, shape, timesteps, constant_current, v_init), kind) in
        cases.into_iter().flat_map(|case| Neuron::ALL.map(|kind| (case, kind)))
    {
        let scan = ScanShape { shape, images, timesteps, constant_current, v_init, neuron: kind };
        let case = format!("{kind} neurons, {images} images of {shape}, T = {timesteps}, constant {constant_current}");
        let step_values = scan.step_values();
        let current_steps = if constant_current { 1 } else { timesteps };
        let currents = rng.vec(step_values * current_steps, -0.6, 1.4);
        let activations = rng.vec(step_values, 0.0, 1.5);
        let thresholds = rng.vec(shape.channels, 0.3, 1.5);
        let current_at = |t: usize, i: usize| currents[if constant_current { i } else { t * step_values + i }];
        let neuron = |i: usize| (0..timesteps).map(|t| current_at(t, i)).collect::<Vec<f32>>();
        let channel = |i: usize| (i / shape.plane()) % shape.channels;

        let current = storage_from_f32(ctx, "current", &currents).unwrap();
        let threshold_buffer = storage_from_f32(ctx, "thresholds", &thresholds).unwrap();
        let reference = storage_from_f32(ctx, "reference", &activations).unwrap();

        // The scan: every step's value, exactly.
        let output = storage_zeroed(ctx, "spikes", step_values * timesteps).unwrap();
        run(ctx, if_scan_step(ctx, kernels, &scan, &current, &threshold_buffer, &output, false).unwrap());
        let got = read_buffer(ctx, &output, 0, step_values * timesteps).unwrap();
        for i in 0..step_values {
            let expected = if_scan(kind, &neuron(i), thresholds[channel(i)], v_init);
            let trace: Vec<f32> = (0..timesteps).map(|t| got[t * step_values + i]).collect();
            assert_eq!(trace, expected, "{case}: neuron {i}");
        }
        if kind.signed() && !constant_current {
            assert!(got.iter().any(|&v| v < 0.0), "{case}: some negative spike (test strength)");
        }

        // The error analysis: per-channel sums; spike counts exactly.
        let partials = storage_zeroed(ctx, "partials", scan.groups() * ERROR_STATS).unwrap();
        run(ctx, error_analysis_step(ctx, kernels, &scan, &current, &threshold_buffer, &reference, &partials).unwrap());
        let sums = sum_partials_by_channel(
            &scan,
            &read_buffer(ctx, &partials, 0, scan.groups() * ERROR_STATS).unwrap(),
            ERROR_STATS,
        );
        let mut expected = vec![0.0f64; shape.channels * ERROR_STATS];
        for i in 0..step_values {
            let e = neuron_errors(kind, &neuron(i), activations[i], thresholds[channel(i)], v_init, constant_current);
            let values = [
                e.quantization.abs(),
                e.deviation.abs(),
                e.total.abs(),
                e.total * e.total,
                e.variance,
                e.spikes as f32,
                e.deviation,
                e.quantization,
                e.tracking,
                e.total,
            ];
            for (k, value) in values.into_iter().enumerate() {
                expected[channel(i) * ERROR_STATS + k] += f64::from(value);
            }
        }
        for c in 0..shape.channels {
            assert_eq!(sums[c * ERROR_STATS + 5], expected[c * ERROR_STATS + 5], "{case}: spikes of channel {c}");
            for k in 0..ERROR_STATS {
                close(
                    sums[c * ERROR_STATS + k],
                    expected[c * ERROR_STATS + k],
                    &format!("{case}: stat {k} channel {c}"),
                );
            }
        }
        if constant_current {
            assert!((0..shape.channels).all(|c| sums[c * ERROR_STATS + 1] == 0.0), "{case}: no deviation error");
        } else {
            assert!(sums.chunks(ERROR_STATS).any(|s| s[1] > 0.0), "{case}: some deviation error (test strength)");
        }

        // The search: tracking errors per candidate.
        let per_channel = 5;
        let candidates = rng.vec(shape.channels * per_channel, 0.2, 2.0);
        let candidate_buffer = storage_from_f32(ctx, "candidates", &candidates).unwrap();
        let partials = storage_zeroed(ctx, "partials", scan.groups() * per_channel).unwrap();
        run(
            ctx,
            threshold_search_step(
                ctx,
                kernels,
                &ThresholdSearch { scan: &scan, per_channel, thresholds: &candidate_buffer, reference: &reference },
                &current,
                &partials,
            )
            .unwrap(),
        );
        let sums = sum_partials_by_channel(
            &scan,
            &read_buffer(ctx, &partials, 0, scan.groups() * per_channel).unwrap(),
            per_channel,
        );
        let mut expected = vec![0.0f64; shape.channels * per_channel];
        for (i, &activation) in activations.iter().enumerate() {
            let c = channel(i);
            let errors =
                candidate_errors(kind, &neuron(i), activation, &candidates[c * per_channel..][..per_channel], v_init);
            for (k, error) in errors.into_iter().enumerate() {
                expected[c * per_channel + k] += f64::from(error);
            }
        }
        for (k, (&g, &e)) in sums.iter().zip(&expected).enumerate() {
            close(g, e, &format!("{case}: candidate {k}"));
        }
    }
}

/// Spikes per IF layer of a walk that only measures.
fn walk_spike_totals(
    device: &dyn Walker,
    snn: &SpikingNetwork,
    images: &[f32],
    count: usize,
    timesteps: usize,
) -> Vec<u64> {
    let mut totals = Vec::new();
    let used = walk(device, snn, images, count, timesteps, |probe| {
        let thresholds = &snn.layers[probe.layer].thresholds;
        let sums = probe.error_sums(thresholds)?;
        totals.push(sums.chunks_exact(ERROR_STATS).map(|s| s[5]).sum::<f64>() as u64);
        Ok(None)
    })
    .unwrap();
    let own: Vec<LayerSetting> = (snn.layers.iter().enumerate())
        .map(|(i, l)| LayerSetting {
            thresholds: l.thresholds.clone(),
            v_init: snn.layer_v_init(i),
            bias_current: snn.layer_bias_current(i),
        })
        .collect();
    assert_eq!(used, own, "a walk that changes nothing spikes with the network's settings");
    totals
}

#[test]
fn walk_spikes_like_the_simulation() {
    let Some(device @ common::GpuBackend { ctx, kernels }) = gpu() else { return };
    type Network = fn(u64, bool, f32) -> SpikingNetwork;
    let (standard, restructured, preact, pooled): (Network, Network, Network, Network) =
        (dyadic_snn, dyadic_restructured_snn, dyadic_preact_snn, dyadic_pooled_snn);
    for (seed, per_channel, v_init, count, timesteps, (form, network), neuron) in [
        (1, false, 0.5, 5, 24, ("standard", standard), Neuron::If),
        (2, true, 0.0, 3, 17, ("standard", standard), Neuron::If),
        (3, false, 0.5, 4, 20, ("restructured", restructured), Neuron::If),
        (4, true, 0.5, 3, 19, ("preact", preact), Neuron::If),
        // Gated max pools (2×2, overlapping 3×3 of stride 2) between IF layers, an average pool.
        (5, false, 0.5, 4, 13, ("pooled", pooled), Neuron::If),
        (6, true, 0.25, 3, 21, ("pooled", pooled), Neuron::If),
        (7, true, 0.5, 4, 16, ("restructured", restructured), Neuron::SignedIf),
        (8, false, 0.5, 4, 13, ("pooled", pooled), Neuron::SignedIf),
    ] {
        let snn = SpikingNetwork { neuron, ..network(seed, per_channel, v_init) };
        let form = format!("{form} of {neuron} neurons");
        let mut rng = Rng::new(seed + 7);
        let images = dyadic_images(&mut rng, count * snn.graph.input_shape().len());
        let labels = vec![0u32; count];
        let plan = SnnPlan::compile(ctx, kernels, &snn, count, timesteps).unwrap();
        let expected = plan.run(ctx, &images, &labels, count, timesteps).unwrap().spike_totals;
        let got = walk_spike_totals(device, &snn, &images, count, timesteps);
        assert_eq!(got, expected, "{form}, seed {seed}");
        assert!(got.iter().all(|&t| t > 0), "{form}: every layer spikes (test strength)");

        // `analyze` reports the same activity as firing rates.
        let rows = analyze(device, &snn, &images, count, timesteps, |_| {}).unwrap();
        for ((row, &spikes), info) in rows.iter().zip(&expected).zip(snn.layer_infos()) {
            let rate = spikes as f64 / (info.neurons * timesteps * count) as f64;
            assert!((row.firing_rate - rate).abs() < 1e-12, "{}: {} vs {rate}", row.layer, row.firing_rate);
            assert!(row.quantization >= 0.0 && row.deviation >= 0.0 && row.input_variance >= 0.0);
            // Channels hold equally many neurons, so the layer's mean error is the mean of its
            // channels' (no larger in magnitude than their mean magnitude), and a channel's
            // mean error is no larger in magnitude than its mean |error|.
            let slack = 1e-6 * row.total.max(1e-3);
            assert!(row.mean_error.abs() <= row.channel_mean_error + slack, "{row:?}");
            assert!(row.channel_mean_error <= row.total + slack, "{row:?}");
        }
        assert_eq!(rows[0].deviation, 0.0, "the first layer's current (the direct input) is constant");
        assert_eq!(rows[0].input_variance, 0.0);
    }
}

#[test]
fn walk_starts_each_layer_from_its_own_v_init() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let snn = dyadic_snn(9, true, 0.5);
    let mut own = snn.clone();
    for (i, layer) in own.layers.iter_mut().enumerate() {
        layer.v_init = Some([0.25, 0.875, 0.0, 1.0][i % 4]);
    }
    assert_walk_spikes_like_plan_unlike(ctx, kernels, &own, &snn, &mut Rng::new(16), "the layers' own v_init");
}

/// Walk and time-major plan spike alike on `network` (4 images, 20 steps), and `plain`
/// spikes otherwise: what `network` adds to it (`what`) is used by both.
fn assert_walk_spikes_like_plan_unlike(
    ctx: &GpuContext,
    kernels: &spikeconv::backends::wgpu::Kernels,
    network: &SpikingNetwork,
    plain: &SpikingNetwork,
    rng: &mut Rng,
    what: &str,
) {
    let (count, timesteps) = (4, 20);
    let images = dyadic_images(rng, count * network.graph.input_shape().len());
    let labels = vec![0u32; count];
    let plan = SnnPlan::compile(ctx, kernels, network, count, timesteps).unwrap();
    let expected = plan.run(ctx, &images, &labels, count, timesteps).unwrap().spike_totals;
    assert_eq!(walk_spike_totals(gpu().expect("a GPU"), network, &images, count, timesteps), expected, "{what}");
    assert_ne!(
        walk_spike_totals(gpu().expect("a GPU"), plain, &images, count, timesteps),
        expected,
        "{what} change the spikes (test strength)"
    );
}

#[test]
fn walk_adds_each_layers_bias_current() {
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    let snn = dyadic_snn(13, false, 0.5);
    let mut rng = Rng::new(17);
    let mut own = snn.clone();
    for i in 0..own.layers.len() {
        let channels = own.graph.node(own.layers[i].node).shape.channels;
        own.layers[i].bias_current = Some((0..channels).map(|_| (rng.below(9) as f32 - 4.0) / 16.0).collect());
    }
    assert_walk_spikes_like_plan_unlike(ctx, kernels, &own, &snn, &mut rng, "the layers' bias currents");
}

#[test]
fn thresholds_chosen_at_a_layer_drive_the_layers_after_it() {
    let Some(device) = gpu() else { return };
    let snn = dyadic_snn(3, false, 0.5);
    let mut rng = Rng::new(11);
    let count = 4;
    let images = dyadic_images(&mut rng, count * snn.graph.input_shape().len());
    let mut changed = snn.clone();
    changed.layers[1].thresholds = Thresholds::Layer(0.125);
    let expected = walk_spike_totals(device, &changed, &images, count, 16);
    let mut totals = Vec::new();
    let used = walk(device, &snn, &images, count, 16, |probe| {
        let thresholds =
            if probe.layer == 1 { Thresholds::Layer(0.125) } else { snn.layers[probe.layer].thresholds.clone() };
        let sums = probe.error_sums(&thresholds)?;
        totals.push(sums.chunks_exact(ERROR_STATS).map(|s| s[5]).sum::<f64>() as u64);
        let bias_current = probe.bias_current.clone();
        Ok((probe.layer == 1).then_some(LayerSetting { thresholds, v_init: probe.scan.v_init, bias_current }))
    })
    .unwrap();
    assert_eq!(used[1].thresholds, Thresholds::Layer(0.125));
    assert_eq!(totals, expected);
    let original = walk_spike_totals(device, &snn, &images, count, 16);
    assert_ne!(original[2..], expected[2..], "the change reaches later layers (test strength)");
}

#[test]
fn tuning_never_loses_to_its_start_and_is_deterministic() {
    let Some(device) = gpu() else { return };
    let mut rng = Rng::new(5);
    for (per_channel, tune_v_init) in [(false, false), (true, false), (false, true), (true, true)] {
        let snn = dyadic_snn(4, per_channel, 0.5);
        let count = 6;
        let images = rng.vec(count * snn.graph.input_shape().len(), -1.0, 1.0);
        let options = TuneOptions { per_channel_thresholds: per_channel, tune_v_init, ..TuneOptions::default() };
        let (tuned, records) = tune(device, &snn, &images, count, 8, options, |_| {}).unwrap();
        assert_eq!(tuned.tuned_for_timesteps, Some(8));
        assert_eq!(records.len(), snn.layers.len());
        for (record, layer) in records.iter().zip(&tuned.layers) {
            assert!(record.objective <= record.start_objective, "{}: {record:?}", record.layer);
            if !per_channel {
                // Relative to the start, channel by channel: the start scores 1 (less where a
                // channel's start error is floored).
                assert!(record.start_objective > 0.0 && record.start_objective <= 1.0 + 1e-12, "{record:?}");
            }
            assert!(layer.thresholds.values().iter().all(|t| t.is_finite() && *t > 0.0), "{record:?}");
            assert_eq!(matches!(layer.thresholds, Thresholds::Channel(_)), per_channel);
            assert_eq!(record.tuned, layer.thresholds);
            assert_eq!(record.start_v_init, 0.5);
            assert_eq!((layer.bias_current.as_ref(), record.bias_current), (None, 0.0), "no bias correction asked");
            assert_eq!(record.mean_error, record.start_mean_error);
            if tune_v_init {
                assert_eq!(layer.v_init, Some(record.v_init));
                assert!(V_INIT_CANDIDATES.contains(&record.v_init), "{record:?}");
            } else {
                assert_eq!((layer.v_init, record.v_init), (None, 0.5));
            }
        }
        assert!(records.iter().any(|r| r.objective < r.start_objective), "tuning improves something (test strength)");
        if tune_v_init {
            assert!(records.iter().any(|r| r.v_init != 0.5), "some layer prefers another v_init (test strength)");
        }
        let (again, again_records) = tune(device, &snn, &images, count, 8, options, |_| {}).unwrap();
        assert_eq!(again, tuned, "deterministic");
        assert_eq!(again_records, records);
        // The tuned thresholds (and v_init) measured again give the objective tuning reported.
        let rows = analyze(device, &tuned, &images, count, 8, |_| {}).unwrap();
        for (row, record) in rows.iter().zip(&records) {
            close(row.tracking, record.tracking, &row.layer);
            if per_channel {
                close(record.tracking, record.objective, &row.layer);
            }
        }
    }
}

#[test]
fn bias_correction_shrinks_every_channels_mean_error_and_is_deterministic() {
    let Some(device) = gpu() else { return };
    let mut rng = Rng::new(6);
    for per_channel in [false, true] {
        let (snn, images, count) = bias_case(&mut rng, per_channel);
        let plain = TuneOptions { per_channel_thresholds: per_channel, ..TuneOptions::default() };
        let options = TuneOptions { correct_bias: true, ..plain };
        let (tuned, records) = tune(device, &snn, &images, count, 8, options, |_| {}).unwrap();
        let (uncorrected, plain_records) = tune(device, &snn, &images, count, 8, plain, |_| {}).unwrap();
        // The first layer gets the same thresholds either way (nothing before it changed).
        assert_eq!(tuned.layers[0].thresholds, uncorrected.layers[0].thresholds);
        assert_eq!(records[0].start_mean_error, plain_records[0].mean_error);
        for (record, layer) in records.iter().zip(&tuned.layers) {
            let bias = layer.bias_current.as_ref().expect("every tuned layer gets a bias current");
            assert!(bias.iter().all(|b| b.is_finite()), "{record:?}");
            assert!(record.mean_error <= record.start_mean_error, "{record:?}");
            assert!(record.bias_current.is_finite(), "{record:?}");
        }
        assert!(
            records.iter().any(|r| r.mean_error < 0.5 * r.start_mean_error),
            "correction removes most of some layer's mean error (test strength): {records:?}"
        );
        assert_retuned_alike_with_recorded_mean_errors(device, &snn, &images, options, (&tuned, &records));
        // Measured again with its bias currents, each channel's mean error is what tuning
        // reported after correction, also by hand from the error sums.
        let mut measured = Vec::new();
        walk(device, &tuned, &images, count, 8, |probe| {
            let layer = &tuned.layers[probe.layer];
            let sums = probe.error_sums(&layer.thresholds)?;
            let neurons = (count * probe.scan.shape.plane()) as f64;
            let channels = sums.chunks_exact(ERROR_STATS).map(|s| (s[SIGNED_TOTAL_STAT] / neurons).abs());
            measured.push(channels.sum::<f64>() / probe.scan.shape.channels as f64);
            Ok(None)
        })
        .unwrap();
        for (got, record) in measured.iter().zip(&records) {
            close(*got, record.mean_error, &record.layer);
        }
    }
}

#[test]
fn more_bias_rounds_never_leave_the_first_layer_a_larger_mean_error() {
    let Some(device) = gpu() else { return };
    let mut rng = Rng::new(9);
    for per_channel in [false, true] {
        let (snn, images, count) = bias_case(&mut rng, per_channel);
        let corrected =
            TuneOptions { per_channel_thresholds: per_channel, correct_bias: true, ..TuneOptions::default() };
        assert_eq!(corrected.bias_rounds, BIAS_CORRECTION_ROUNDS);
        let with_rounds = |bias_rounds| {
            tune(device, &snn, &images, count, 8, TuneOptions { bias_rounds, ..corrected }, |_| {}).unwrap()
        };
        let runs: Vec<_> = [1, BIAS_CORRECTION_ROUNDS, 6].into_iter().map(with_rounds).collect();
        // The first layer's thresholds and starting error do not depend on the rounds, and
        // each round continues where the fewer rounds stopped, keeping only improvements.
        for pair in runs.windows(2) {
            let (fewer, more) = (&pair[0].1[0], &pair[1].1[0]);
            assert_eq!(fewer.tuned, more.tuned);
            assert_eq!(fewer.start_mean_error, more.start_mean_error);
            assert!(more.mean_error <= fewer.mean_error, "{fewer:?} {more:?}");
        }
        let (once, six) = (&runs[0].1, &runs[2].1);
        assert!(
            once.iter().zip(six.iter()).any(|(a, b)| b.mean_error < a.mean_error),
            "more rounds cancel more of some layer's mean error (test strength): {once:?} {six:?}"
        );
        // The baseline path takes the same rounds: from its own thresholds, one round leaves
        // the first layer's mean error no smaller than six.
        let baseline = |rounds| correct_bias(device, &snn, &images, count, 8, rounds, |_| {}).unwrap().1;
        let (baseline_once, baseline_six) = (baseline(1), baseline(6));
        assert!(baseline_six[0].mean_error <= baseline_once[0].mean_error);
        assert!(baseline_six.iter().all(|r| r.mean_error <= r.start_mean_error), "{baseline_six:?}");
    }
}

/// The network and images the bias-correction tests tune: five dyadic IF layers, six
/// random images.
fn bias_case(rng: &mut Rng, per_channel: bool) -> (SpikingNetwork, Vec<f32>, usize) {
    let snn = dyadic_snn(5, per_channel, 0.5);
    let count = 6;
    let images = rng.vec(count * snn.graph.input_shape().len(), -1.0, 1.0);
    (snn, images, count)
}

/// Tuning `snn` again on the same `images` (8 timesteps) with `options` gives the same
/// network and records (`tuned`), and `analyze` of that network measures every layer's
/// channel mean error as its record says.
fn assert_retuned_alike_with_recorded_mean_errors(
    device: &dyn Walker,
    snn: &SpikingNetwork,
    images: &[f32],
    options: TuneOptions,
    (tuned, records): (&SpikingNetwork, &[spikeconv::tuning::tune::LayerTuning]),
) {
    let count = images.len() / snn.graph.input_shape().len();
    let (again, again_records) = tune(device, snn, images, count, 8, options, |_| {}).unwrap();
    assert_eq!(&again, tuned, "deterministic");
    assert_eq!(again_records, records);
    let rows = analyze(device, tuned, images, count, 8, |_| {}).unwrap();
    for (row, record) in rows.iter().zip(records) {
        close(row.channel_mean_error, record.mean_error, &record.layer);
    }
}

#[test]
fn refit_searches_thresholds_again_under_the_corrected_bias_current() {
    let Some(device) = gpu() else { return };
    let mut rng = Rng::new(8);
    for per_channel in [false, true] {
        let (snn, images, count) = bias_case(&mut rng, per_channel);
        let corrected =
            TuneOptions { per_channel_thresholds: per_channel, correct_bias: true, ..TuneOptions::default() };
        let refit = TuneOptions { refit_thresholds: true, ..corrected };
        let (once, _) = tune(device, &snn, &images, count, 8, corrected, |_| {}).unwrap();
        let (twice, records) = tune(device, &snn, &images, count, 8, refit, |_| {}).unwrap();
        if per_channel {
            // The first layer's second search starts from the thresholds and bias current of
            // the network corrected once (nothing before it differs): its incumbent scores
            // what that network's first layer measures.
            let rows = analyze(device, &once, &images, count, 8, |_| {}).unwrap();
            close(records[0].start_objective, rows[0].tracking, "first layer's incumbent");
        }
        for (record, layer) in records.iter().zip(&twice.layers) {
            assert!(record.objective <= record.start_objective, "never worse than its incumbent: {record:?}");
            assert!(layer.thresholds.values().iter().all(|t| t.is_finite() && *t > 0.0), "{record:?}");
            let bias = layer.bias_current.as_ref().expect("every tuned layer gets a bias current");
            assert!(bias.iter().all(|b| b.is_finite()), "{record:?}");
            assert_eq!(record.tuned, layer.thresholds);
        }
        assert!(
            twice.layers.iter().zip(&once.layers).any(|(a, b)| a.thresholds != b.thresholds),
            "the second search moves some thresholds (test strength)"
        );
        // Measured again, each channel's mean error is what the second correction reported.
        assert_retuned_alike_with_recorded_mean_errors(device, &snn, &images, refit, (&twice, &records));
    }
}

#[test]
fn walk_repeats_static_values_read_every_timestep() {
    use common::dyadic::{dyadic_conv, relu_nodes};
    use spikeconv::convert::snn::convert;
    use spikeconv::model::graph::{Graph, Linear, Op};
    let Some(common::GpuBackend { ctx, kernels }) = gpu() else { return };
    // The second block adds the (static) first convolution to a spiking branch, so a
    // per-timestep node reads a value computed once.
    let mut rng = Rng::new(21);
    let mut g = Graph::new(Shape::new(3, 8, 8));
    let stem = g.push("conv1", dyadic_conv(&mut rng, 3, 4, 1), &[0]).unwrap();
    let r1 = g.push("relu1", Op::Relu, &[stem]).unwrap();
    let branch = g.push("conv2", dyadic_conv(&mut rng, 4, 4, 1), &[r1]).unwrap();
    let sum = g.push("add", Op::Add, &[branch, stem]).unwrap();
    let r2 = g.push("relu2", Op::Relu, &[sum]).unwrap();
    let pool = g.push("pool", Op::GlobalAvgPool, &[r2]).unwrap();
    let linear = Linear { in_features: 4, out_features: 2, weight: vec![0.5; 8], bias: vec![0.0; 2] };
    g.push("fc", Op::Linear(linear), &[pool]).unwrap();
    let thresholds = relu_nodes(&g).into_iter().map(|id| (id, Thresholds::Layer(0.25))).collect();
    let snn = convert(&g, thresholds, 0.5).unwrap();
    let count = 3;
    let images = dyadic_images(&mut rng, count * g.input_shape().len());
    let plan = SnnPlan::compile(ctx, kernels, &snn, count, 12).unwrap();
    let expected = plan.run(ctx, &images, &[0; 3], count, 12).unwrap().spike_totals;
    assert!(expected.iter().all(|&t| t > 0), "both layers spike (test strength)");
    assert_eq!(walk_spike_totals(gpu().expect("a GPU"), &snn, &images, count, 12), expected);
}

/// Every probe measurement of a walk (error sums under the layer's thresholds, and tracking
/// errors under a spread of candidates), layer by layer.
fn probe_measurements(walker: &dyn Walker, snn: &SpikingNetwork, images: &[f32], count: usize) -> Vec<Vec<f64>> {
    let mut measured = Vec::new();
    walk(walker, snn, images, count, 12, |probe| {
        let thresholds = &snn.layers[probe.layer].thresholds;
        let channels = probe.scan.shape.channels;
        let bias: Vec<f32> = (0..channels).map(|c| (c % 3) as f32 / 16.0 - 0.0625).collect();
        let mut values = probe.error_sums(thresholds)?;
        values.extend(probe.error_sums_with(thresholds, 0.25, &bias)?);
        let candidates: Vec<f32> =
            (0..channels).flat_map(|c| (1..=5).map(move |k| k as f32 * 0.125 + c as f32 * 0.0625)).collect();
        values.extend(probe.search(&candidates, 5, 0.5, &bias)?);
        measured.push(values);
        Ok(None)
    })
    .unwrap();
    measured
}

#[test]
fn cpu_walk_measures_like_the_gpu_walk() {
    let Some(device) = gpu() else { return };
    for (seed, snn) in [
        (1, dyadic_snn(1, false, 0.5)),
        (2, dyadic_restructured_snn(2, true, 0.5)),
        (3, dyadic_preact_snn(3, true, 0.0)),
        (4, dyadic_pooled_snn(4, true, 0.5)),
        (5, SpikingNetwork { neuron: Neuron::SignedIf, ..dyadic_snn(5, true, 0.5) }),
        (6, SpikingNetwork { neuron: Neuron::SignedIf, ..dyadic_restructured_snn(6, false, 0.5) }),
    ] {
        let mut rng = Rng::new(seed + 40);
        let count = 4;
        let images = dyadic_images(&mut rng, count * snn.graph.input_shape().len());
        let gpu_values = probe_measurements(device, &snn, &images, count);
        let cpu_values = probe_measurements(&CpuDevice::detect(), &snn, &images, count);
        assert_eq!(gpu_values.len(), cpu_values.len());
        for (layer, (g, c)) in gpu_values.iter().zip(&cpu_values).enumerate() {
            assert_eq!(g.len(), c.len());
            for (i, (g, c)) in g.iter().zip(c).enumerate() {
                // The GPU adds f32 partial sums per workgroup, the CPU f64 per neuron.
                assert!((g - c).abs() <= 1e-5 * g.abs().max(1.0), "seed {seed}, layer {layer}, value {i}: {g} vs {c}");
            }
        }
        assert!(cpu_values.iter().flatten().any(|&v| v != 0.0), "the walk measures something (test strength)");
    }
}

#[test]
fn tuning_and_correction_on_the_cpu_choose_what_the_gpu_chooses() {
    // The pooled network's later layers read the tuned layers' spikes through gated max pools.
    for (seed, snn) in [
        (11, dyadic_snn(4, true, 0.5)),
        (12, dyadic_pooled_snn(5, true, 0.5)),
        (13, SpikingNetwork { neuron: Neuron::SignedIf, ..dyadic_snn(4, true, 0.5) }),
    ] {
        assert_cpu_and_gpu_tune_alike(&snn, seed);
    }
}

fn assert_cpu_and_gpu_tune_alike(snn: &SpikingNetwork, seed: u64) {
    let Some(device) = gpu() else { return };
    let count = 6;
    let mut rng = Rng::new(seed);
    let images = dyadic_images(&mut rng, count * snn.graph.input_shape().len());
    for options in [
        TuneOptions { per_channel_thresholds: false, ..TuneOptions::default() },
        TuneOptions { per_channel_thresholds: true, tune_v_init: true, correct_bias: true, ..TuneOptions::default() },
    ] {
        let (on_gpu, gpu_records) = tune(device, snn, &images, count, 8, options, |_| {}).unwrap();
        let (on_cpu, cpu_records) = tune(&CpuDevice::detect(), snn, &images, count, 8, options, |_| {}).unwrap();
        assert_same_choices(&on_cpu, &on_gpu);
        for (c, g) in cpu_records.iter().zip(&gpu_records) {
            // Objectives divide by each channel's start error, which magnifies the GPU's f32
            // partial sums' rounding: equal to 1e-3.
            for (cpu, gpu) in [(c.objective, g.objective), (c.tracking, g.tracking)] {
                assert!((cpu - gpu).abs() <= 1e-3 * gpu.abs().max(1e-3), "{}: CPU {cpu}, GPU {gpu}", c.layer);
            }
        }
    }
    let (gpu_corrected, _) = correct_bias(device, snn, &images, count, 8, 3, |_| {}).unwrap();
    let (cpu_corrected, _) = correct_bias(&CpuDevice::detect(), snn, &images, count, 8, 3, |_| {}).unwrap();
    assert_same_choices(&cpu_corrected, &gpu_corrected);
}

/// Thresholds and v_init chosen alike; bias currents (means of f64 sums on the CPU, of f32
/// partial sums on the GPU) alike to a few ulps.
fn assert_same_choices(cpu: &SpikingNetwork, gpu: &SpikingNetwork) {
    for (c, g) in cpu.layers.iter().zip(&gpu.layers) {
        assert_eq!((&c.thresholds, c.v_init), (&g.thresholds, g.v_init), "{}", c.name);
        let (cb, gb) = (c.bias_current.clone().unwrap_or_default(), g.bias_current.clone().unwrap_or_default());
        assert_eq!(cb.len(), gb.len(), "{}", c.name);
        for (x, y) in cb.iter().zip(&gb) {
            assert!((x - y).abs() <= 1e-6, "{}: bias current CPU {x}, GPU {y}", c.name);
        }
    }
}
