//! The conversion pipeline as a library call (no CLI): networks and names per method and
//! T, the tuning report, option checks; on the CPU backend with the real ResNet-20 and a
//! small calibration set.

mod common;

use common::data_dir;
use spikeconv::backends::{Backend, BackendChoice};
use spikeconv::convert::threshold::parse_methods;
use spikeconv::data::cifar::Dataset;
use spikeconv::model::{self, LoadOptions};
use spikeconv::pipeline::{convert, ConversionOptions, Silent};
use spikeconv::Error;

#[test]
fn pipeline_names_every_network_and_records_tuning() {
    let Some(data) = data_dir() else { return };
    let network =
        model::load(data.join("weights/resnet20_cifar10_akamaster.safetensors"), &LoadOptions::default()).unwrap();
    let calib = Dataset::open(data.join("cifar10/data_batch_1.bin"), None).unwrap();
    let backend = Backend::open(BackendChoice::Cpu, None).unwrap();
    let options = ConversionOptions {
        methods: parse_methods("channel-percentile:99.9,ttrbr").unwrap(),
        calib_images: 64,
        tune_images: 16,
        tune_timesteps: vec![4, 8],
        bias_correction: true,
        ..ConversionOptions::default()
    };
    let conversion = convert(&backend, &network, &calib, &options, &mut Silent).unwrap();
    let names: Vec<(&str, Option<usize>)> =
        conversion.networks.iter().map(|n| (n.threshold_method.as_str(), n.tuned_for_timesteps)).collect();
    assert_eq!(
        names,
        [
            ("channel-percentile:99.9", None),
            ("channel-percentile:99.9+bias", Some(4)),
            ("channel-percentile:99.9+bias", Some(8)),
            ("ttrbr+bias", Some(4)),
            ("ttrbr+bias", Some(8)),
        ]
    );
    assert_eq!(conversion.tuning.runs.len(), 4);
    assert!(conversion.networks[1].layers.iter().any(|l| l.bias_current.is_some()), "the correction sets currents");
    assert_ne!(conversion.networks[3].layers, conversion.networks[4].layers, "tuned for each T");

    for (bad, flag) in [
        (
            ConversionOptions { tune_v_init: true, tune_timesteps: vec![8], ..ConversionOptions::default() },
            "--tune-v-init",
        ),
        (
            ConversionOptions { methods: parse_methods("ttrbr").unwrap(), ..ConversionOptions::default() },
            "--tune-timesteps",
        ),
        (ConversionOptions { v_init: 1.5, ..ConversionOptions::default() }, "--v-init"),
        (ConversionOptions { calib_images: 20_000, ..ConversionOptions::default() }, "--calib-images"),
    ] {
        let error = convert(&backend, &network, &calib, &bad, &mut Silent).unwrap_err();
        assert!(matches!(error, Error::Usage(_)), "{error}");
        assert!(error.to_string().contains(flag), "{flag}: {error}");
    }
}
