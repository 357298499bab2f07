//! Sweeps split over machines: `sweep --shard K/N` evaluates the K-th of N contiguous image
//! ranges (K from 0, as Slurm array indices and Kubernetes completion indices count) and
//! writes a [`ShardRecord`]: integer counts, spike totals and predictions, never rates, so
//! that [`merge`] adds them up to exactly what one run over all images reports. Shards
//! that do not fit together (another network, another T, ranges that overlap or leave a
//! gap) are refused.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::sweep::{layer_activity, SweepOutcome};
use crate::convert::energy::{snn_fixed_operations, EnergyModel, Operations};
use crate::convert::snn::SpikingNetwork;
use crate::report::{PredictionTable, QuantizedAnn, SnnCurve, SweepReport};
use crate::Error;

/// The `format` field of every shard record.
pub const SHARD_FORMAT: &str = "spikeconv-sweep-shard";
/// The record layout's version; merge refuses any other.
pub const SHARD_VERSION: u32 = 1;

/// The K-th (from 0) of N contiguous parts of a set of images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The images of this shard out of `images`: `index·images/count .. (index+1)·images/count`
    /// (sizes differ by at most one; every image in exactly one shard).
    pub fn range(&self, images: usize) -> Range<usize> {
        let bound = |k: usize| ((k as u128 * images as u128) / self.count as u128) as usize;
        bound(self.index)..bound(self.index + 1)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `K/N` with `0 <= K < N`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not K/N with 0 <= K < N (e.g. 0/4 .. 3/4)");
        let (k, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let (index, count) =
            (k.trim().parse::<usize>().map_err(|_| bad())?, n.trim().parse::<usize>().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One IF layer as the merge needs it: name, neurons per image, synaptic operations per spike.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardLayer {
    pub layer: String,
    pub neurons: usize,
    pub fan_out: f64,
}

/// One network's counts on the shard's images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardNetwork {
    pub threshold_method: String,
    pub tuned_for_timesteps: Option<usize>,
    pub v_init: f32,
    /// What the network's max pools became, if it had any (absent in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pooling: Option<String>,
    /// The IF layers' neuron (`if` in records written before signed neurons existed).
    #[serde(default = "plain_neuron")]
    pub neuron: String,
    /// Correct predictions after t = 1..=T steps.
    pub correct: Vec<usize>,
    pub constant_current_correct: Option<usize>,
    /// Spikes per IF layer over the shard's images and all steps.
    pub spike_totals: Vec<u64>,
    pub layers: Vec<ShardLayer>,
    /// Class of each of the shard's images after T steps.
    pub predictions: Vec<usize>,
    pub seconds: f64,
    /// The network's operations per image that do not depend on its spikes (energy; absent
    /// from records of versions before the estimate).
    #[serde(default)]
    pub fixed_operations: Option<Operations>,
}

/// What `sweep --shard K/N --shard-out FILE` writes (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub format: String,
    pub version: u32,
    pub model: String,
    pub data: String,
    /// Digest of the simulated networks and the normalization (see [`networks_checksum`]).
    pub networks_checksum: String,
    pub timesteps: usize,
    pub shard: Shard,
    /// The shard's images: `start..end` of `total`.
    pub start: usize,
    pub end: usize,
    pub total: usize,
    pub backend: String,
    pub adapter: String,
    pub labels: Vec<usize>,
    pub ann_correct: usize,
    pub ann_predictions: Vec<usize>,
    pub quantized_ann: Option<QuantizedAnn>,
    pub networks: Vec<ShardNetwork>,
    pub seconds: f64,
    /// The ANN's operations per image and the energy prices (absent from records of
    /// versions before the energy estimate: the merged report then has none).
    #[serde(default)]
    pub ann_operations: Option<Operations>,
    #[serde(default)]
    pub energy_model: Option<EnergyModel>,
}

fn plain_neuron() -> String {
    crate::convert::Neuron::If.name().to_string()
}

/// A 64-bit FNV-1a digest, as 16 hex digits, of everything that decides the networks'
/// spikes and the images they see: each network's graph, weights, thresholds, initial
/// membranes, bias currents, neuron and name, and the normalization (their exact `Debug` forms:
/// floats print as the shortest text that reads back to the same bits).
pub fn networks_checksum(networks: &[SpikingNetwork], normalization: &impl fmt::Debug) -> String {
    struct Fnv(u64);
    impl fmt::Write for Fnv {
        fn write_str(&mut self, text: &str) -> fmt::Result {
            for byte in text.bytes() {
                self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
            Ok(())
        }
    }
    let mut digest = Fnv(0xcbf2_9ce4_8422_2325);
    use fmt::Write as _;
    let _ = write!(digest, "{normalization:?}");
    for network in networks {
        let _ = write!(digest, "{network:?}");
    }
    format!("{:016x}", digest.0)
}

impl ShardRecord {
    /// The record of `outcome`, a sweep of `networks` over images `range` of `total`.
    pub fn new(
        outcome: &SweepOutcome,
        networks: &[SpikingNetwork],
        checksum: String,
        shard: Shard,
        range: Range<usize>,
        total: usize,
    ) -> Self {
        let report = &outcome.report;
        let networks = networks
            .iter()
            .zip(&report.curves)
            .zip(&outcome.spike_totals)
            .zip(&outcome.predictions.networks)
            .map(|(((snn, curve), spikes), (_, predictions))| ShardNetwork {
                threshold_method: curve.threshold_method.clone(),
                tuned_for_timesteps: curve.tuned_for_timesteps,
                v_init: curve.v_init,
                max_pooling: curve.max_pooling.clone(),
                neuron: curve.neuron.clone(),
                correct: curve.correct.clone(),
                constant_current_correct: curve.constant_current_correct,
                spike_totals: spikes.clone(),
                layers: snn
                    .layer_infos()
                    .into_iter()
                    .map(|info| ShardLayer { layer: info.name, neurons: info.neurons, fan_out: info.fan_out })
                    .collect(),
                predictions: predictions.clone(),
                fixed_operations: curve.operations.map(|_| snn_fixed_operations(snn, report.timesteps)),
                seconds: curve.seconds,
            })
            .collect();
        ShardRecord {
            format: SHARD_FORMAT.into(),
            version: SHARD_VERSION,
            model: report.model.clone(),
            data: report.data.clone(),
            networks_checksum: checksum,
            timesteps: report.timesteps,
            shard,
            start: range.start,
            end: range.end,
            total,
            backend: report.backend.clone(),
            adapter: report.adapter.clone(),
            labels: outcome.predictions.labels.clone(),
            ann_correct: report.ann_correct,
            ann_predictions: outcome.predictions.ann.clone(),
            quantized_ann: report.quantized_ann.clone(),
            networks,
            seconds: report.seconds,
            ann_operations: report.ann_operations,
            energy_model: Some(report.energy_model),
        }
    }

    /// Reads a record, naming `source` (the file) in every error.
    pub fn from_json(source: &str, text: &str) -> Result<Self, Error> {
        let record: ShardRecord =
            serde_json::from_str(text).map_err(|e| Error::Usage(format!("{source}: not a sweep shard record: {e}")))?;
        if record.format != SHARD_FORMAT || record.version != SHARD_VERSION {
            return Err(Error::Usage(format!(
                "{source}: format {:?} version {}, expected {SHARD_FORMAT:?} version {SHARD_VERSION}",
                record.format, record.version
            )));
        }
        record.check(source)?;
        Ok(record)
    }

    /// Internal consistency: counts and lists fit the range and T.
    fn check(&self, source: &str) -> Result<(), Error> {
        let bad = |message: String| Err(Error::Usage(format!("{source}: {message}")));
        let images = self.end.checked_sub(self.start).filter(|_| self.end <= self.total);
        let Some(images) = images else {
            return bad(format!(
                "image range {}..{} of {} is not a range of the images",
                self.start, self.end, self.total
            ));
        };
        if self.shard.count == 0 || self.shard.index >= self.shard.count {
            return bad(format!("shard {} is not K/N with K < N", self.shard));
        }
        if self.labels.len() != images || self.ann_predictions.len() != images || self.ann_correct > images {
            return bad(format!(
                "{} labels and {} ANN predictions for {images} images",
                self.labels.len(),
                self.ann_predictions.len()
            ));
        }
        for network in &self.networks {
            let name = &network.threshold_method;
            if network.correct.len() != self.timesteps || network.correct.iter().any(|&c| c > images) {
                return bad(format!(
                    "network {name}: {} counts for T = {}, or a count above {images}",
                    network.correct.len(),
                    self.timesteps
                ));
            }
            if network.predictions.len() != images || network.spike_totals.len() != network.layers.len() {
                return bad(format!("network {name}: predictions or spike totals do not fit the images and layers"));
            }
        }
        Ok(())
    }
}

/// Combines shard records (each named by its source, e.g. the file) into the report and
/// prediction table one sweep over all their images would have given: counts and spike
/// totals added, rates computed from the sums, images in order. Refuses records of other
/// networks (checksum), another T, data or methods, and ranges that overlap or leave gaps.
/// `seconds` is the sum of the shards' simulation times.
pub fn merge(records: &[(String, ShardRecord)]) -> Result<(SweepReport, PredictionTable), Error> {
    let Some((first_source, first)) = records.first() else {
        return Err(Error::Usage("merge: no shard records given".into()));
    };
    let mismatch = |source: &str, what: &str, theirs: &dyn fmt::Debug, ours: &dyn fmt::Debug| {
        Error::Usage(format!(
            "{source}: {what} {theirs:?} differs from {first_source}'s {ours:?}; not shards of one sweep"
        ))
    };
    let methods = |r: &ShardRecord| -> Vec<(String, Option<usize>)> {
        r.networks.iter().map(|n| (n.threshold_method.clone(), n.tuned_for_timesteps)).collect()
    };
    for (source, record) in &records[1..] {
        if record.networks_checksum != first.networks_checksum {
            return Err(mismatch(source, "network checksum", &record.networks_checksum, &first.networks_checksum));
        }
        if record.timesteps != first.timesteps {
            return Err(mismatch(source, "timesteps", &record.timesteps, &first.timesteps));
        }
        if record.total != first.total {
            return Err(mismatch(source, "image count", &record.total, &first.total));
        }
        if record.data != first.data {
            return Err(mismatch(source, "data", &record.data, &first.data));
        }
        if methods(record) != methods(first) {
            return Err(mismatch(source, "methods", &methods(record), &methods(first)));
        }
    }
    let mut order: Vec<&(String, ShardRecord)> = records.iter().collect();
    order.sort_by_key(|(_, r)| (r.start, r.end));
    let mut next = 0;
    for (source, record) in &order {
        if record.start < next {
            return Err(Error::Usage(format!(
                "{source}: images {}..{} overlap images another shard already covers (up to {next})",
                record.start, record.end
            )));
        }
        if record.start > next {
            return Err(Error::Usage(format!(
                "images {next}..{} are in no shard (the next, {source}, starts at {})",
                record.start, record.start
            )));
        }
        next = record.end;
    }
    if next != first.total {
        return Err(Error::Usage(format!("images {next}..{} are in no shard", first.total)));
    }

    let total = first.total;
    let timesteps = first.timesteps;
    let concat = |pick: &dyn Fn(&ShardRecord) -> &Vec<usize>| -> Vec<usize> {
        order.iter().flat_map(|(_, r)| pick(r).iter().copied()).collect()
    };
    let mut curves = Vec::with_capacity(first.networks.len());
    let mut columns = Vec::with_capacity(first.networks.len());
    for (index, network) in first.networks.iter().enumerate() {
        let parts: Vec<&ShardNetwork> = order.iter().map(|(_, r)| &r.networks[index]).collect();
        let correct: Vec<usize> = (0..timesteps).map(|t| parts.iter().map(|p| p.correct[t]).sum()).collect();
        let constant_current_correct = parts.iter().map(|p| p.constant_current_correct).sum::<Option<usize>>();
        let layers: Vec<crate::report::LayerActivity> = network
            .layers
            .iter()
            .enumerate()
            .map(|(layer, info)| {
                let spikes = parts.iter().map(|p| p.spike_totals[layer]).sum();
                layer_activity(info.layer.clone(), info.neurons, info.fan_out, spikes, timesteps, total)
            })
            .collect();
        let synops: f64 = layers.iter().map(|l| l.synops_per_image).sum();
        curves.push(SnnCurve {
            threshold_method: network.threshold_method.clone(),
            tuned_for_timesteps: network.tuned_for_timesteps,
            v_init: network.v_init,
            max_pooling: network.max_pooling.clone(),
            neuron: network.neuron.clone(),
            correct,
            constant_current_correct,
            operations: network.fixed_operations.map(|fixed| fixed.with_synops(synops)),
            layers,
            seconds: parts.iter().map(|p| p.seconds).sum(),
        });
        let predictions = parts.iter().flat_map(|p| p.predictions.iter().copied()).collect();
        columns
            .push((crate::report::method_label(&network.threshold_method, network.tuned_for_timesteps), predictions));
    }
    let quantized_ann = first.quantized_ann.as_ref().map(|q| QuantizedAnn {
        activation: q.activation.clone(),
        correct: order.iter().map(|(_, r)| r.quantized_ann.as_ref().map_or(0, |q| q.correct)).sum(),
    });
    let distinct = |pick: &dyn Fn(&ShardRecord) -> &String| -> String {
        let mut seen: Vec<&String> = Vec::new();
        for (_, r) in &order {
            if !seen.contains(&pick(r)) {
                seen.push(pick(r));
            }
        }
        seen.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" + ")
    };
    let report = SweepReport {
        model: first.model.clone(),
        data: first.data.clone(),
        backend: distinct(&|r| &r.backend),
        adapter: distinct(&|r| &r.adapter),
        images: total,
        timesteps,
        ann_correct: order.iter().map(|(_, r)| r.ann_correct).sum(),
        quantized_ann,
        ann_operations: first.ann_operations,
        energy_model: first.energy_model.unwrap_or_default(),
        curves,
        seconds: order.iter().map(|(_, r)| r.seconds).sum(),
    };
    let predictions = PredictionTable {
        timesteps,
        labels: concat(&|r| &r.labels),
        ann: concat(&|r| &r.ann_predictions),
        networks: columns,
    };
    Ok((report, predictions))
}
