//! Calibration statistics of the ANN's ReLU activations, from which thresholds are chosen.
//!
//! Two passes over the calibration images, each mergeable across batches (and so
//! computable by GPU kernels batch by batch):
//!
//! 1. [`LayerRange`]: the layer's largest activation and each channel's largest activation.
//!    Batches merge by element-wise max.
//! 2. [`LayerStats`]: histograms of the **positive** activations over ranges fixed by pass 1:
//!    one layer-wide histogram over `[0, max]` and one histogram per channel over
//!    `[0, channel_max[c]]`, each with `bins` equal bins. Batches merge by adding counts.
//!
//! Zeros are not counted: like Rueckauer et al.'s SNN toolbox, percentiles are taken over
//! the nonzero (after ReLU: positive) activations. The CPU reference of both passes is
//! [`crate::reference::calibration`].
//!
//! # Binning (what a GPU kernel must compute)
//! A value `v` is counted only when `v > 0` (NaN is never counted). Its bin in a histogram
//! row with range `r` and `bins` bins is `min(trunc(v / r * bins), bins - 1)`, computed in
//! `f32` in exactly that order (divide, then multiply by `bins as f32`, then truncate); values
//! above `r` (possible when pass 2 sees data pass 1 did not) land in the last bin. Bin `b`
//! covers `[b·r/bins, (b+1)·r/bins)`, the last one includes `r`. WGSL division may differ from
//! IEEE by a few ulp, so a GPU histogram may move a value sitting on a bin edge by one bin.
//!
//! # Layout
//! [`Histogram::counts`] is row-major `rows × bins`: the count of bin `b` of row `c` is at
//! `c * bins + b`. The layer-wide histogram has one row; the per-channel one has one row per
//! channel, so a kernel fills both with one `atomicAdd` each per positive value (`u32`
//! counters per batch, summed into these `u64` counts on the host).

use crate::model::graph::NodeId;

use super::ConvertError;

/// Default number of histogram bins: percentile resolution is `max / 4096`.
pub const DEFAULT_BINS: usize = 4096;

/// Pass-1 statistics of one IF layer: largest activations over the calibration images.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerRange {
    /// The ReLU node whose output was observed.
    pub node: NodeId,
    /// Largest activation of the layer (0 when it never activated).
    pub max: f32,
    /// Largest activation per channel.
    pub channel_max: Vec<f32>,
}

impl LayerRange {
    /// An empty range (all maxima 0) for a layer of `channels` channels.
    pub fn new(node: NodeId, channels: usize) -> Self {
        Self { node, max: 0.0, channel_max: vec![0.0; channels] }
    }

    /// Folds in the range of another batch of the same layer: element-wise max.
    pub fn merge(&mut self, other: &LayerRange) -> Result<(), ConvertError> {
        if self.node != other.node || self.channel_max.len() != other.channel_max.len() {
            return Err(ConvertError::StatsMismatch(format!(
                "ranges of node {} ({} channels) and node {} ({} channels)",
                self.node,
                self.channel_max.len(),
                other.node,
                other.channel_max.len()
            )));
        }
        self.max = self.max.max(other.max);
        for (mine, theirs) in self.channel_max.iter_mut().zip(&other.channel_max) {
            *mine = mine.max(*theirs);
        }
        Ok(())
    }
}

/// Histograms of positive activations: `rows` independent histograms of `bins` bins,
/// row `c` over `[0, ranges[c]]`. See the module docs for binning and layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Bins per row.
    pub bins: usize,
    /// Upper end of each row's range (row count = `ranges.len()`).
    pub ranges: Vec<f32>,
    /// `rows × bins` counts, row-major.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Empty histograms, one row per entry of `ranges`. `bins` must be at least 1.
    pub fn new(ranges: Vec<f32>, bins: usize) -> Self {
        assert!(bins > 0, "a histogram needs at least one bin");
        let counts = vec![0; ranges.len() * bins];
        Self { bins, ranges, counts }
    }

    /// Number of rows (1 for a layer histogram, channels for a per-channel one).
    pub fn rows(&self) -> usize {
        self.ranges.len()
    }

    /// The counts of one row.
    pub fn row(&self, row: usize) -> &[u64] {
        &self.counts[row * self.bins..(row + 1) * self.bins]
    }

    /// The bin `value` falls in for a row of range `range`, `None` unless `value > 0`.
    pub fn bin_of(value: f32, range: f32, bins: usize) -> Option<usize> {
        if value > 0.0 {
            // Saturating float→int cast: +inf (range 0, or huge values) goes to the last bin.
            let scaled = value / range * bins as f32;
            Some((scaled as usize).min(bins - 1))
        } else {
            None
        }
    }

    /// Sets every count to 0, keeping the ranges.
    pub fn clear(&mut self) {
        self.counts.fill(0);
    }

    /// Counts `value` in `row` if it is positive.
    pub fn add(&mut self, row: usize, value: f32) {
        if let Some(bin) = Self::bin_of(value, self.ranges[row], self.bins) {
            self.counts[row * self.bins + bin] += 1;
        }
    }

    /// Number of positive values counted in `row`.
    pub fn positive_count(&self, row: usize) -> u64 {
        self.row(row).iter().sum()
    }

    /// Width of one bin of `row`: the resolution of its percentiles.
    pub fn resolution(&self, row: usize) -> f32 {
        self.ranges[row] / self.bins as f32
    }

    /// The `p`-th percentile (`p` in (0, 100]) of the positive values of `row`: the upper
    /// edge `(b + 1) · range / bins` of the first bin `b` at which the cumulative count
    /// reaches `ceil(p · n / 100)` (at least 1), `n` the row's positive count. It is at most
    /// one bin width above the exact percentile, never below it, and equals the range (the
    /// maximum) for `p = 100`. `None` when the row counted no positive value.
    pub fn percentile(&self, row: usize, p: f64) -> Option<f32> {
        let total = self.positive_count(row);
        if total == 0 {
            return None;
        }
        // `p · n / 100` rather than `p / 100 · n`: exact for whole percentiles.
        let target = ((p * total as f64 / 100.0).ceil() as u64).clamp(1, total);
        let mut cumulative = 0u64;
        for (bin, &count) in self.row(row).iter().enumerate() {
            cumulative += count;
            if cumulative >= target {
                let edge = self.ranges[row] as f64 * (bin + 1) as f64 / self.bins as f64;
                return Some(edge as f32);
            }
        }
        unreachable!("cumulative count reaches the total")
    }

    /// Adds the counts of another batch's histogram over the same ranges.
    pub fn merge(&mut self, other: &Histogram) -> Result<(), ConvertError> {
        if self.bins != other.bins || self.ranges != other.ranges {
            return Err(ConvertError::StatsMismatch(format!(
                "histograms of {}×{} bins over different ranges cannot be merged with {}×{} bins; \
                 fix the ranges (pass 1) before counting any batch",
                self.rows(),
                self.bins,
                other.rows(),
                other.bins
            )));
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        Ok(())
    }
}

/// Calibration statistics of one IF layer (a ReLU node of the ANN): the pass-1 ranges
/// and the pass-2 histograms over them.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerStats {
    /// The ReLU node whose output was observed.
    pub node: NodeId,
    /// Largest activation of the layer (the layer histogram's range).
    pub max: f32,
    /// Largest activation per channel (the per-channel histograms' ranges).
    pub channel_max: Vec<f32>,
    /// One row over `[0, max]`.
    pub histogram: Histogram,
    /// One row per channel, row `c` over `[0, channel_max[c]]`.
    pub channel_histogram: Histogram,
}

impl LayerStats {
    /// Empty histograms over the ranges of pass 1.
    pub fn new(range: &LayerRange, bins: usize) -> Self {
        Self {
            node: range.node,
            max: range.max,
            channel_max: range.channel_max.clone(),
            histogram: Histogram::new(vec![range.max], bins),
            channel_histogram: Histogram::new(range.channel_max.clone(), bins),
        }
    }

    /// Counts one activation `value` of channel `channel` in both histograms.
    pub fn add(&mut self, channel: usize, value: f32) {
        self.histogram.add(0, value);
        self.channel_histogram.add(channel, value);
    }

    /// Adds another batch's counts for the same layer and ranges.
    pub fn merge(&mut self, other: &LayerStats) -> Result<(), ConvertError> {
        if self.node != other.node {
            return Err(ConvertError::StatsMismatch(format!(
                "statistics of node {} and node {}",
                self.node, other.node
            )));
        }
        self.histogram.merge(&other.histogram)?;
        self.channel_histogram.merge(&other.channel_histogram)
    }
}

/// Merges per-layer statistics of two batches, layer by layer (same layers, same order).
pub fn merge_layers(into: &mut [LayerStats], other: &[LayerStats]) -> Result<(), ConvertError> {
    if into.len() != other.len() {
        return Err(ConvertError::StatsMismatch(format!("{} layers vs {} layers", into.len(), other.len())));
    }
    into.iter_mut().zip(other).try_for_each(|(mine, theirs)| mine.merge(theirs))
}

/// Merges per-layer ranges of two batches, layer by layer (same layers, same order).
pub fn merge_ranges(into: &mut [LayerRange], other: &[LayerRange]) -> Result<(), ConvertError> {
    if into.len() != other.len() {
        return Err(ConvertError::StatsMismatch(format!("{} layers vs {} layers", into.len(), other.len())));
    }
    into.iter_mut().zip(other).try_for_each(|(mine, theirs)| mine.merge(theirs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::threshold::{choose, ThresholdMethod, Thresholds};

    /// Histogram over [0, 10] with 10 bins: bin b covers [b, b+1).
    fn ten_bins(values: &[f32]) -> Histogram {
        let mut histogram = Histogram::new(vec![10.0], 10);
        values.iter().for_each(|&v| histogram.add(0, v));
        histogram
    }

    #[test]
    fn binning_skips_zeros_and_clamps_the_top() {
        let histogram = ten_bins(&[0.0, -1.0, f32::NAN, 0.5, 1.0, 9.99, 10.0, 12.0]);
        assert_eq!(histogram.row(0), [1, 1, 0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(histogram.positive_count(0), 5);
        assert_eq!(histogram.resolution(0), 1.0);
    }

    #[test]
    fn percentile_is_the_upper_edge_where_the_count_reaches_p() {
        // 100 positive values: 0.5 ×90 (bin 0), 3.5 ×9 (bin 3), 9.5 ×1 (bin 9); zeros ignored.
        let mut values = vec![0.0; 1000];
        values.extend(std::iter::repeat_n(0.5, 90));
        values.extend(std::iter::repeat_n(3.5, 9));
        values.push(9.5);
        let histogram = ten_bins(&values);
        // Target counts: ceil(p · 100 / 100).
        assert_eq!(histogram.percentile(0, 50.0), Some(1.0));
        assert_eq!(histogram.percentile(0, 90.0), Some(1.0));
        assert_eq!(histogram.percentile(0, 90.5), Some(4.0));
        assert_eq!(histogram.percentile(0, 99.0), Some(4.0));
        assert_eq!(histogram.percentile(0, 99.9), Some(10.0));
        assert_eq!(histogram.percentile(0, 100.0), Some(10.0));
        assert_eq!(histogram.percentile(0, 1e-9), Some(1.0));
        assert_eq!(ten_bins(&[0.0]).percentile(0, 50.0), None);
    }

    fn stats_with(channel_values: &[&[f32]], bins: usize) -> LayerStats {
        let channel_max: Vec<f32> = channel_values.iter().map(|vs| vs.iter().fold(0.0f32, |m, &v| m.max(v))).collect();
        let max = channel_max.iter().fold(0.0f32, |m, &v| m.max(v));
        let mut stats = LayerStats::new(&LayerRange { node: 3, max, channel_max }, bins);
        for (c, values) in channel_values.iter().enumerate() {
            values.iter().for_each(|&v| stats.add(c, v));
        }
        stats
    }

    #[test]
    fn thresholds_per_layer_and_channel_with_fallbacks() {
        // Channel 0: 1..=4, channel 1: 8 and zeros, channel 2 never positive.
        let stats = stats_with(&[&[1.0, 2.0, 3.0, 4.0], &[0.0, 0.0, 8.0], &[0.0, -2.0]], 8);
        assert_eq!(choose(ThresholdMethod::Max, &stats).unwrap(), Thresholds::Layer(8.0));
        assert_eq!(choose(ThresholdMethod::ChannelMax, &stats).unwrap(), Thresholds::Channel(vec![4.0, 8.0, 8.0]));
        // Layer: positive values 1,2,3,4,8 in bins of width 1 → 60% target 3 → bin [3,4) → 4.
        assert_eq!(choose(ThresholdMethod::Percentile(60.0), &stats).unwrap(), Thresholds::Layer(4.0));
        // Channel 0: range 4, bins of 0.5 → values in bins 2,4,6,7; 50% → 2nd → edge 2.5.
        // Channel 2 falls back to the layer-wide 50th percentile: 3rd of 5 → bin [3,4) → 4.
        assert_eq!(
            choose(ThresholdMethod::ChannelPercentile(50.0), &stats).unwrap(),
            Thresholds::Channel(vec![2.5, 8.0, 4.0])
        );
        let dead = stats_with(&[&[0.0], &[0.0]], 8);
        assert_eq!(choose(ThresholdMethod::Max, &dead).unwrap(), Thresholds::Layer(1.0));
        assert_eq!(choose(ThresholdMethod::Percentile(99.0), &dead).unwrap(), Thresholds::Layer(1.0));
        assert_eq!(
            choose(ThresholdMethod::ChannelPercentile(99.0), &dead).unwrap(),
            Thresholds::Channel(vec![1.0, 1.0])
        );
    }

    #[test]
    fn percentile_100_equals_max() {
        let stats = stats_with(&[&[0.3, 1.7, 0.01], &[2.9, 0.2]], DEFAULT_BINS);
        assert_eq!(choose(ThresholdMethod::Percentile(100.0), &stats).unwrap(), Thresholds::Layer(2.9));
        assert_eq!(
            choose(ThresholdMethod::ChannelPercentile(100.0), &stats).unwrap(),
            Thresholds::Channel(vec![1.7, 2.9])
        );
    }

    #[test]
    fn merging_needs_equal_ranges() {
        let mut a = ten_bins(&[1.5]);
        a.merge(&ten_bins(&[1.2, 9.0])).unwrap();
        assert_eq!(a.row(0), [0, 2, 0, 0, 0, 0, 0, 0, 0, 1]);
        let other = Histogram::new(vec![5.0], 10);
        assert!(matches!(a.merge(&other), Err(ConvertError::StatsMismatch(_))));
        let mut range = LayerRange { node: 1, max: 2.0, channel_max: vec![2.0, 1.0] };
        range.merge(&LayerRange { node: 1, max: 3.0, channel_max: vec![0.5, 3.0] }).unwrap();
        assert_eq!(range.channel_max, [2.0, 3.0]);
        assert!(range.merge(&LayerRange::new(2, 2)).is_err());
    }
}
