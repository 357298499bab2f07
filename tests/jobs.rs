//! The library's jobs (`jobs::ann`, `jobs::sweep`, `jobs::analyze`, `jobs::bench`) called
//! directly, without the binary, on every backend (`on_every_backend!`): ResNet-20 of the
//! reference data converted on a few calibration images and run on a few test images.

mod common;

use common::on_every_backend;
use spikeconv::backends::Backend;
use spikeconv::convert::energy::EnergyModel;
use spikeconv::convert::snn::SpikingNetwork;
use spikeconv::convert::threshold::ThresholdMethod;
use spikeconv::jobs::{analyze, ann, bench, sweep, AnalyzeJob, AnnJob, BenchJob, SweepJob};
use spikeconv::pipeline::{self, ConversionOptions, Silent};

const IMAGES: usize = 16;
const TIMESTEPS: usize = 4;

/// ResNet-20, its first `IMAGES` test images and its `percentile:99.9` SNN converted on
/// `backend` from 64 calibration images.
fn resnet20_on(backend: &Backend) -> Option<(common::ResNet20, spikeconv::data::Dataset, SpikingNetwork)> {
    let mut net = common::resnet20()?;
    net.train.truncate(64);
    let mut test = net.test.clone();
    test.truncate(IMAGES);
    let options = ConversionOptions {
        methods: vec![ThresholdMethod::Percentile(99.9)],
        calib_images: 64,
        ..ConversionOptions::default()
    };
    let conversion = pipeline::convert(backend, &net.network, &net.train, &options, &mut Silent).unwrap();
    let snn = conversion.networks.into_iter().next().unwrap();
    Some((net, test, snn))
}

fn ann_counts_what_it_predicts(backend: &Backend) {
    let Some(net) = common::resnet20() else { return };
    let mut test = net.test.clone();
    test.truncate(IMAGES);
    let job = AnnJob { network: &net.network, dataset: &test, data: "test".into(), batch: Some(5) };
    let mut progress = Vec::new();
    let outcome = ann(backend, &job, |done| progress.push(done)).unwrap();
    assert_eq!(progress, [5, 10, 15, 16], "batches of 5");
    let report = &outcome.report;
    assert_eq!((report.images, report.batch, report.backend.as_str()), (IMAGES, 5, backend.name()));
    let labels: Vec<usize> = (0..IMAGES).map(|i| usize::from(test.label(i).unwrap())).collect();
    let correct = outcome.predictions.iter().zip(&labels).filter(|(p, l)| p == l).count();
    assert_eq!(report.correct, correct);
    assert!(correct >= 13, "ResNet-20 gets most of {IMAGES} images right: {correct}");
    assert!((report.accuracy - correct as f64 / IMAGES as f64).abs() < 1e-12);
}

fn sweep_reports_every_step_and_agrees_with_ann_and_bench(backend: &Backend) {
    let Some((net, test, snn)) = resnet20_on(backend) else { return };
    let networks = [snn];
    let job = SweepJob {
        networks: &networks,
        normalization: &net.network.normalization,
        source: Some(&net.network),
        model: "resnet20".into(),
        data: "test".into(),
        dataset: &test,
        timesteps: TIMESTEPS,
        batch: None,
        constant_currents: true,
        energy: EnergyModel::default(),
    };
    let outcome = sweep(backend, &job, |_, _| {}).unwrap();
    let report = &outcome.report;
    assert_eq!((report.images, report.timesteps, report.backend.as_str()), (IMAGES, TIMESTEPS, backend.name()));
    let curve = &report.curves[0];
    assert_eq!(curve.correct.len(), TIMESTEPS);
    assert!(curve.correct.iter().all(|&c| c <= IMAGES));
    assert_eq!(curve.layers.len(), networks[0].layers.len());
    assert!(outcome.spike_totals[0].iter().all(|&s| s > 0), "every IF layer spikes");
    assert!(curve.constant_current_correct.is_some_and(|c| c <= IMAGES));
    // The predictions after T steps are what the last count counts.
    let table = &outcome.predictions;
    let last = &table.networks[0].1;
    let correct = last.iter().zip(&table.labels).filter(|(p, l)| p == l).count();
    assert_eq!(correct, curve.correct[TIMESTEPS - 1]);

    // The ANN column is the ANN job's; bench simulates the same network to the same count.
    let ann_job = AnnJob { network: &net.network, dataset: &test, data: "test".into(), batch: None };
    let ann_outcome = ann(backend, &ann_job, |_| {}).unwrap();
    assert_eq!(report.ann_correct, ann_outcome.report.correct);
    assert_eq!(table.ann, ann_outcome.predictions);
    let bench_job = BenchJob {
        network: &net.network,
        snn: &networks[0],
        dataset: &test,
        timesteps: TIMESTEPS,
        batch: None,
        peak_tflops: Some(1.0),
        profile: false,
        energy: EnergyModel::default(),
    };
    let bench_report = bench(backend, &bench_job).unwrap();
    assert_eq!(bench_report.correct_at_t, curve.correct[TIMESTEPS - 1]);
    assert_eq!(bench_report.ann_correct, report.ann_correct);
    assert!(bench_report.image_timesteps_per_second > 0.0 && bench_report.fraction_of_peak.is_some());
    assert!(bench_report.firing_rate > 0.0 && bench_report.firing_rate < 1.0);
    assert!(bench_report.to_text().contains("image-timesteps/s"));
}

fn analyze_measures_every_layer_on_images_after_the_tuning_ones(backend: &Backend) {
    let Some((net, _, snn)) = resnet20_on(backend) else { return };
    let networks = [snn];
    let job = AnalyzeJob {
        networks: &networks,
        network: &net.network,
        calib: &net.train,
        calib_name: "train".into(),
        first: 60,
        images: 8,
        timesteps: TIMESTEPS,
    };
    let report = analyze(backend, &job, &mut Silent).unwrap();
    // Only 4 images follow the first 60 of the 64.
    assert_eq!((report.first_image, report.images, report.timesteps), (60, 4, TIMESTEPS));
    let layers = &report.networks[0].layers;
    assert_eq!(layers.len(), networks[0].layers.len());
    for row in layers {
        assert!(row.quantization.is_finite() && row.deviation.is_finite() && row.total.is_finite(), "{row:?}");
        // |total| ≤ |quantization| + |deviation| per neuron, so in the mean too.
        assert!(row.total <= row.quantization + row.deviation + 1e-6, "{row:?}");
    }
    let after_all = AnalyzeJob { first: 64, ..job };
    let error = analyze(backend, &after_all, &mut Silent).unwrap_err().to_string();
    assert!(error.contains("holds 64 images"), "{error}");
}

on_every_backend!(
    ann_counts_what_it_predicts,
    sweep_reports_every_step_and_agrees_with_ann_and_bench,
    analyze_measures_every_layer_on_images_after_the_tuning_ones,
);
