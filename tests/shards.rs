//! The sweep job as a library call, split into shards and merged: four shards of the
//! restructured ResNet-20 give exactly what one sweep over all their images gives (counts
//! per t, spike-derived rates, predictions, text, CSV and JSON but the timings), and shard
//! sets that do not fit together are refused. CPU backend, no binary.

mod common;

use common::data_dir;
use spikeconv::backends::{Backend, BackendChoice};
use spikeconv::convert::snn::SpikingNetwork;
use spikeconv::convert::threshold::parse_methods;
use spikeconv::data::cifar::Dataset;
use spikeconv::jobs::shard::networks_checksum;
use spikeconv::jobs::{merge, sweep, Shard, ShardRecord, SweepJob, SweepOutcome};
use spikeconv::model::{self, LoadOptions, Network};
use spikeconv::pipeline::{convert, ConversionOptions, Silent};
use spikeconv::report::Report;

#[test]
fn shards_parse_and_cover_every_image_once() {
    assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
    for bad in ["4/4", "1/0", "-1/4", "1", "a/b", "1/4/2", ""] {
        let message = bad.parse::<Shard>().unwrap_err();
        assert!(message.contains("K/N"), "{bad}: {message}");
    }
    for images in [0usize, 1, 3, 10, 10_000, 10_001] {
        for count in [1usize, 2, 3, 4, 7] {
            let mut next = 0;
            for index in 0..count {
                let range = Shard { index, count }.range(images);
                assert_eq!(range.start, next);
                assert!(range.len() <= images / count + 1);
                next = range.end;
            }
            assert_eq!(next, images, "{images} images, {count} shards");
        }
    }
}

struct Fixture {
    network: Network,
    networks: Vec<SpikingNetwork>,
    test: Dataset,
    backend: Backend,
}

fn fixture(images: usize) -> Option<Fixture> {
    let data = data_dir()?;
    let network = model::load(
        concat!(env!("CARGO_MANIFEST_DIR"), "/assets/resnet20_restructured.safetensors"),
        &LoadOptions::default(),
    )
    .unwrap();
    let calib = Dataset::open(data.join("cifar10/data_batch_1.bin"), None).unwrap();
    let mut test = Dataset::open(data.join("cifar10/test_batch.bin"), None).unwrap();
    test.truncate(images);
    let backend = Backend::open(BackendChoice::Cpu, None).unwrap();
    let options = ConversionOptions {
        methods: parse_methods("percentile:99.9,channel-max").unwrap(),
        calib_images: 64,
        ..ConversionOptions::default()
    };
    let networks = convert(&backend, &network, &calib, &options, &mut Silent).unwrap().networks;
    Some(Fixture { network, networks, test, backend })
}

fn run(f: &Fixture, dataset: &Dataset, networks: &[SpikingNetwork], timesteps: usize) -> SweepOutcome {
    let job = SweepJob {
        networks,
        normalization: &f.network.normalization,
        source: Some(&f.network),
        model: "resnet20_restructured.safetensors".into(),
        data: "test_batch.bin".into(),
        dataset,
        timesteps,
        batch: Some(5),
        constant_currents: true,
        energy: spikeconv::convert::energy::EnergyModel::default(),
    };
    sweep(&f.backend, &job, |_, _| {}).unwrap()
}

/// The shard record of shard `k` of `n`, through its JSON text as `merge` reads it.
fn shard(f: &Fixture, networks: &[SpikingNetwork], k: usize, n: usize, timesteps: usize) -> (String, ShardRecord) {
    let shard = Shard { index: k, count: n };
    let range = shard.range(f.test.len());
    let outcome = run(f, &f.test.slice(range.clone()), networks, timesteps);
    let checksum = networks_checksum(networks, &f.network.normalization);
    let record = ShardRecord::new(&outcome, networks, checksum, shard, range, f.test.len());
    let name = format!("shard{k}.json");
    let parsed = ShardRecord::from_json(&name, &serde_json::to_string(&record).unwrap()).unwrap();
    assert_eq!(parsed, record, "the record reads back as written");
    (name, parsed)
}

/// JSON lines without the wall-clock fields, which no two runs share.
fn without_timings(json_lines: &str) -> Vec<serde_json::Value> {
    json_lines
        .lines()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
            let object = value.as_object_mut().unwrap();
            object.remove("seconds");
            object.remove("image_timesteps_per_second");
            value
        })
        .collect()
}

#[test]
fn four_shards_merge_into_exactly_the_single_run() {
    let Some(f) = fixture(42) else { return };
    let whole = run(&f, &f.test, &f.networks, 6);
    // Shards in scrambled order: merge sorts them by their ranges.
    let records: Vec<_> = [2, 0, 3, 1].iter().map(|&k| shard(&f, &f.networks, k, 4, 6)).collect();
    let (report, predictions) = merge(&records).unwrap();

    assert_eq!(report.images, 42);
    for (merged, single) in report.curves.iter().zip(&whole.report.curves) {
        assert_eq!(merged.correct, single.correct, "{}", single.threshold_method);
        assert_eq!(merged.constant_current_correct, single.constant_current_correct);
        for (a, b) in merged.layers.iter().zip(&single.layers) {
            assert_eq!(a.firing_rate.to_bits(), b.firing_rate.to_bits(), "{}", a.layer);
            assert_eq!(a.synops_per_image.to_bits(), b.synops_per_image.to_bits(), "{}", a.layer);
        }
    }
    assert_eq!(predictions, whole.predictions);
    assert_eq!(report.to_table(), whole.report.to_table());
    assert_eq!(report.to_csv(), whole.report.to_csv());
    assert_eq!(
        without_timings(&report.to_json_lines().unwrap()),
        without_timings(&whole.report.to_json_lines().unwrap())
    );
}

#[test]
fn shard_sets_that_do_not_fit_together_are_refused() {
    let Some(f) = fixture(21) else { return };
    let records: Vec<_> = (0..3).map(|k| shard(&f, &f.networks, k, 3, 4)).collect();
    let refused = |records: Vec<(String, ShardRecord)>, needles: &[&str]| {
        let message = merge(&records).unwrap_err().to_string();
        assert!(!message.contains('\n'), "{message}");
        for needle in needles {
            assert!(message.contains(needle), "`{needle}` not in: {message}");
        }
    };
    // A missing shard, a duplicate one, none at all.
    refused(vec![records[0].clone(), records[2].clone()], &["images 7..14 are in no shard"]);
    refused(vec![records[0].clone(), records[1].clone()], &["images 14..21 are in no shard"]);
    refused(records.iter().cloned().chain([records[1].clone()]).collect(), &["shard1.json", "overlap"]);
    refused(Vec::new(), &["no shard records"]);
    // Another network (a different initial membrane), another T, other methods.
    let mut other = f.networks.clone();
    other[0].v_init = 0.25;
    let foreign = shard(&f, &other, 1, 3, 4);
    refused(vec![records[0].clone(), foreign, records[2].clone()], &["shard1.json", "network checksum", "shard0.json"]);
    let later = shard(&f, &f.networks, 2, 3, 5);
    refused(vec![records[0].clone(), records[1].clone(), later], &["timesteps 5", "not shards of one sweep"]);
    let fewer = shard(&f, &f.networks[..1], 1, 3, 4);
    let mut fewer = fewer;
    fewer.1.networks_checksum = records[0].1.networks_checksum.clone();
    refused(vec![records[0].clone(), fewer, records[2].clone()], &["methods"]);
    // Records that are not records.
    for (text, needle) in [
        ("{}", "not a sweep shard record"),
        ("[1, 2]", "not a sweep shard record"),
        (r#"{"format": "other"}"#, "not a sweep shard record"),
    ] {
        let message = ShardRecord::from_json("bad.json", text).unwrap_err().to_string();
        assert!(message.contains("bad.json") && message.contains(needle), "{message}");
    }
    let mut wrong = records[0].1.clone();
    wrong.format = "something-else".into();
    let message =
        ShardRecord::from_json("wrong.json", &serde_json::to_string(&wrong).unwrap()).unwrap_err().to_string();
    assert!(message.contains("wrong.json: format \"something-else\""), "{message}");
    let mut inconsistent = records[0].1.clone();
    inconsistent.networks[0].correct.pop();
    let message =
        ShardRecord::from_json("short.json", &serde_json::to_string(&inconsistent).unwrap()).unwrap_err().to_string();
    assert!(message.contains("short.json") && message.contains("counts for T = 4"), "{message}");
}

#[test]
fn the_command_line_refuses_a_shard_without_images_or_output() {
    let Some(data) = data_dir() else { return };
    let test = common::path(&data, "cifar10/test_batch.bin");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/resnet20_restructured.safetensors");
    let calib = common::path(&data, "cifar10/data_batch_1.bin");
    let base =
        ["sweep", "--backend", "cpu", "--model", model, "--calib", &calib, "--calib-images", "8", "--data", &test];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        base.iter().chain(extra).copied().collect()
    }
    common::assert_fails_with(
        &with(&base, &["--timesteps", "2", "--shard", "4/4", "--shard-out", "x.json"]),
        &["--shard", "K/N"],
    );
    common::assert_fails_with(&with(&base, &["--timesteps", "2", "--shard", "1/4"]), &["--shard-out"]);
    common::assert_fails_with(
        &with(&base, &["--timesteps", "2", "--limit", "2", "--shard", "2/4", "--shard-out", "x.json"]),
        &["--shard 2/4", "none"],
    );
    common::assert_fails_with(&["merge", "/nonexistent/shard.json"], &["/nonexistent/shard.json"]);
}
