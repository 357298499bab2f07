//! Threshold choice: how each IF layer's firing threshold is read off the ANN's
//! calibration statistics ([`LayerStats`]), and the names users select methods by.
//!
//! | name                     | thresholds                                              |
//! |--------------------------|---------------------------------------------------------|
//! | `max`                    | one per layer: the largest activation                   |
//! | `percentile:P`           | one per layer: P-th percentile of positive activations  |
//! | `channel-max`            | one per channel: the channel's largest activation       |
//! | `channel-percentile:P`   | one per channel: P-th percentile within the channel     |
//! | `ttrbr`, `ttrbr:P`       | one per layer: `percentile:P` (default 99.9), then tuned |
//! | `channel-ttrbr[:P]`      | one per channel: `channel-percentile:P`, then tuned     |
//! | `trained`                | the λ a quantization-aware network learned (θ = λ)      |
//! | `ttrbr:trained`, `channel-ttrbr:trained` | λ, then tuned                            |
//!
//! `trained` reads the clip level λ each ReLU of a quantization-aware (QCFS) network was
//! trained with ([`crate::model::TrainedActivation`]); with the default initial membrane
//! θ/2 it is QCFS's conversion. Its thresholds are per layer or per channel as the λ are.
//!
//! The `ttrbr` methods start from the percentile thresholds and are then tuned layer by
//! layer for a target number of timesteps on the GPU (see [`super::ttrbr`] and
//! docs/METHOD.md); [`choose`] gives their starting point.
//!
//! Percentiles follow Rueckauer et al. (2017) and their SNN toolbox, which take the
//! percentile over the *nonzero* activations of a layer; they are read from histograms
//! (see [`Histogram::percentile`]), so they are exact to one bin (`range / bins`).
//!
//! Fallback: thresholds must be positive and finite. A channel with no positive
//! calibration activation gets its layer's threshold (same method, layer-wide); a layer
//! with no positive activation at all gets [`FALLBACK_THRESHOLD`] (1.0). Such a layer
//! never activated on the calibration set, so any positive value keeps the network valid.

use std::fmt;
use std::str::FromStr;

use super::stats::{Histogram, LayerStats};
use super::ConvertError;

/// Threshold of a layer (or channel) that had no positive activation during calibration.
pub const FALLBACK_THRESHOLD: f32 = 1.0;

/// Percentile the `ttrbr` methods start from unless one is given (`ttrbr:P`).
pub const TTRBR_START_PERCENTILE: f64 = 99.9;

/// How thresholds are chosen from calibration statistics.
///
/// Extensible: a method adds a variant here and a name in [`FromStr`] / [`fmt::Display`]
/// and [`super::THRESHOLD_METHOD_NAMES`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThresholdMethod {
    /// One threshold per layer: the largest calibration activation.
    Max,
    /// One threshold per layer: the given percentile (in (0, 100]) of positive activations.
    Percentile(f64),
    /// One threshold per channel: each channel's largest activation.
    ChannelMax,
    /// One threshold per channel: the given percentile of the channel's positive activations.
    ChannelPercentile(f64),
    /// The thresholds a quantization-aware network learned: θ = λ of every IF layer.
    Trained,
    /// Threshold tuning (TTRBR): start from `percentile:P` (per layer) or
    /// `channel-percentile:P` (per channel), or from the trained λ, then tune for a number
    /// of timesteps.
    Ttrbr { per_channel: bool, start: TuningStart },
}

/// Where threshold tuning starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TuningStart {
    /// The given percentile (in (0, 100]) of the layer's (or channel's) positive activations.
    Percentile(f64),
    /// The trained λ ([`ThresholdMethod::Trained`]).
    Trained,
}

impl ThresholdMethod {
    /// Whether this method gives one threshold per channel.
    pub fn is_per_channel(&self) -> bool {
        matches!(self, Self::ChannelMax | Self::ChannelPercentile(_) | Self::Ttrbr { per_channel: true, .. })
    }

    /// Whether the thresholds are tuned on spiking activity for a number of timesteps
    /// after [`choose`] gives their starting point.
    pub fn is_tuned(&self) -> bool {
        matches!(self, Self::Ttrbr { .. })
    }

    /// Whether the thresholds (or tuning's start) are the network's trained λ rather than
    /// calibration statistics.
    pub fn uses_trained(&self) -> bool {
        matches!(self, Self::Trained | Self::Ttrbr { start: TuningStart::Trained, .. })
    }
}

/// The name a converted network carries: the method, then what was done beyond it —
/// `+v_init` (tuning chose initial membranes), `+bias` (bias correction with the default
/// rounds, `+bias:N` with N), `+refit` (thresholds searched again under the bias), e.g.
/// `channel-ttrbr+bias+refit`.
pub fn method_name(method: ThresholdMethod, tuned_v_init: bool, bias_rounds: Option<usize>, refit: bool) -> String {
    let bias = match bias_rounds {
        None => String::new(),
        Some(crate::convert::bias_correction::BIAS_CORRECTION_ROUNDS) => "+bias".to_string(),
        Some(rounds) => format!("+bias:{rounds}"),
    };
    format!("{method}{}{bias}{}", if tuned_v_init { "+v_init" } else { "" }, if refit { "+refit" } else { "" })
}

impl fmt::Display for ThresholdMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Max => write!(f, "max"),
            Self::Percentile(p) => write!(f, "percentile:{p}"),
            Self::ChannelMax => write!(f, "channel-max"),
            Self::ChannelPercentile(p) => write!(f, "channel-percentile:{p}"),
            Self::Trained => write!(f, "trained"),
            Self::Ttrbr { per_channel, start } => {
                let prefix = if *per_channel { "channel-" } else { "" };
                match start {
                    TuningStart::Percentile(p) if *p == TTRBR_START_PERCENTILE => write!(f, "{prefix}ttrbr"),
                    TuningStart::Percentile(p) => write!(f, "{prefix}ttrbr:{p}"),
                    TuningStart::Trained => write!(f, "{prefix}ttrbr:trained"),
                }
            }
        }
    }
}

impl FromStr for ThresholdMethod {
    type Err = ConvertError;

    /// Parses `max`, `percentile:P`, `channel-max`, `channel-percentile:P`, `trained`,
    /// `ttrbr[:P|:trained]` or `channel-ttrbr[:P|:trained]`, P in (0, 100].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (name, argument) = match text.split_once(':') {
            Some((name, argument)) => (name, Some(argument)),
            None => (text, None),
        };
        let percentile = |argument: Option<&str>| -> Result<f64, ConvertError> {
            let bad =
                || ConvertError::BadPercentile { method: text.to_string(), value: argument.unwrap_or("").to_string() };
            let value: f64 = argument.ok_or_else(bad)?.trim().parse().map_err(|_| bad())?;
            // `value > 0.0` is false for NaN, so NaN is rejected too.
            if value > 0.0 && value <= 100.0 {
                Ok(value)
            } else {
                Err(bad())
            }
        };
        match (name, argument) {
            ("max", None) => Ok(Self::Max),
            ("channel-max", None) => Ok(Self::ChannelMax),
            ("percentile", argument) => Ok(Self::Percentile(percentile(argument)?)),
            ("channel-percentile", argument) => Ok(Self::ChannelPercentile(percentile(argument)?)),
            ("trained", None) => Ok(Self::Trained),
            ("ttrbr" | "channel-ttrbr", argument) => {
                let start = match argument.map(str::trim) {
                    None => TuningStart::Percentile(TTRBR_START_PERCENTILE),
                    Some("trained") => TuningStart::Trained,
                    Some(_) => TuningStart::Percentile(percentile(argument)?),
                };
                Ok(Self::Ttrbr { per_channel: name == "channel-ttrbr", start })
            }
            _ => Err(ConvertError::UnknownThresholdMethod { name: text.to_string() }),
        }
    }
}

/// Parses a comma-separated list of methods, e.g. `max,percentile:99.9`. Empty entries
/// (as in `max,,channel-max` or an empty string) are errors.
///
/// ```
/// use spikeconv::convert::threshold::{parse_methods, ThresholdMethod};
///
/// let methods = parse_methods("max,percentile:99.9").unwrap();
/// assert_eq!(methods, [ThresholdMethod::Max, ThresholdMethod::Percentile(99.9)]);
/// assert!(parse_methods("percentile:0").is_err());
/// ```
pub fn parse_methods(list: &str) -> Result<Vec<ThresholdMethod>, ConvertError> {
    list.split(',').map(str::parse).collect()
}

/// The thresholds of one IF layer.
#[derive(Clone, Debug, PartialEq)]
pub enum Thresholds {
    /// One threshold shared by every neuron of the layer.
    Layer(f32),
    /// One threshold per channel (index = channel of the ReLU's input).
    Channel(Vec<f32>),
}

impl Thresholds {
    /// One threshold per channel, as the IF kernels of every backend read them (a layer
    /// threshold broadcast).
    pub fn per_channel(&self, channels: usize) -> Vec<f32> {
        (0..channels).map(|c| self.for_channel(c)).collect()
    }

    /// Threshold of the neurons in `channel`.
    pub fn for_channel(&self, channel: usize) -> f32 {
        match self {
            Self::Layer(threshold) => *threshold,
            Self::Channel(thresholds) => thresholds[channel],
        }
    }

    /// All threshold values (one for a layer threshold).
    pub fn values(&self) -> &[f32] {
        match self {
            Self::Layer(threshold) => std::slice::from_ref(threshold),
            Self::Channel(thresholds) => thresholds,
        }
    }

    /// The layer's threshold, or the mean over channels: one number per layer for tables.
    pub fn mean(&self) -> f64 {
        let values = self.values();
        values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64
    }

    /// `"layer"` or `"channel"`, as stored in converted-SNN files.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Layer(_) => "layer",
            Self::Channel(_) => "channel",
        }
    }
}

/// Chooses an IF layer's thresholds from its calibration statistics, or `None` for the
/// methods whose thresholds are trained λ ([`ThresholdMethod::uses_trained`]; see
/// [`from_trained`]). Always positive values when the statistics are finite (see the module
/// docs for fallbacks); [`super::snn::convert`] rejects anything not positive and finite.
pub fn choose(method: ThresholdMethod, stats: &LayerStats) -> Option<Thresholds> {
    let method = match method {
        ThresholdMethod::Ttrbr { per_channel: false, start: TuningStart::Percentile(p) } => {
            ThresholdMethod::Percentile(p)
        }
        ThresholdMethod::Ttrbr { per_channel: true, start: TuningStart::Percentile(p) } => {
            ThresholdMethod::ChannelPercentile(p)
        }
        ThresholdMethod::Trained | ThresholdMethod::Ttrbr { start: TuningStart::Trained, .. } => return None,
        other => other,
    };
    let layer_threshold = |value: Option<f32>| value.filter(|v| *v > 0.0).unwrap_or(FALLBACK_THRESHOLD);
    Some(match method {
        ThresholdMethod::Max => Thresholds::Layer(layer_threshold(Some(stats.max))),
        ThresholdMethod::Percentile(p) => Thresholds::Layer(layer_threshold(stats.histogram.percentile(0, p))),
        ThresholdMethod::ChannelMax => {
            let fallback = layer_threshold(Some(stats.max));
            Thresholds::Channel(stats.channel_max.iter().map(|&m| if m > 0.0 { m } else { fallback }).collect())
        }
        ThresholdMethod::ChannelPercentile(p) => {
            let fallback = layer_threshold(stats.histogram.percentile(0, p));
            let histogram: &Histogram = &stats.channel_histogram;
            Thresholds::Channel(
                (0..histogram.rows())
                    .map(|c| histogram.percentile(c, p).filter(|v| *v > 0.0).unwrap_or(fallback))
                    .collect(),
            )
        }
        ThresholdMethod::Trained | ThresholdMethod::Ttrbr { .. } => unreachable!("returned or mapped above"),
    })
}

/// An IF layer's thresholds from its trained λ (one value, or one per channel) under a
/// method that [`ThresholdMethod::uses_trained`]: `trained` keeps λ's form,
/// `channel-ttrbr:trained` starts every channel at its λ (a layer's λ repeated), and
/// `ttrbr:trained` needs one λ per layer (it tunes one threshold for the layer).
pub fn from_trained(
    method: ThresholdMethod,
    layer: &str,
    lambda: &[f32],
    channels: usize,
) -> Result<Thresholds, ConvertError> {
    let per_layer = lambda.len() == 1;
    match method {
        ThresholdMethod::Ttrbr { per_channel: true, .. } if per_layer => {
            Ok(Thresholds::Channel(vec![lambda[0]; channels]))
        }
        ThresholdMethod::Ttrbr { per_channel: false, .. } if !per_layer => {
            Err(ConvertError::TrainedThresholds(format!(
                "ttrbr:trained tunes one threshold per layer, but IF layer `{layer}` has {} trained lambdas (one per \
             channel); use channel-ttrbr:trained",
                lambda.len()
            )))
        }
        _ if per_layer => Ok(Thresholds::Layer(lambda[0])),
        _ => Ok(Thresholds::Channel(lambda.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "max",
            "percentile:99.9",
            "percentile:100",
            "channel-max",
            "channel-percentile:99.99",
            "ttrbr",
            "ttrbr:99.99",
            "channel-ttrbr",
            "channel-ttrbr:99",
            "trained",
            "ttrbr:trained",
            "channel-ttrbr:trained",
        ] {
            let method: ThresholdMethod = name.parse().unwrap();
            assert_eq!(method.to_string(), name);
        }
        assert_eq!(" percentile:99.5 ".parse::<ThresholdMethod>(), Ok(ThresholdMethod::Percentile(99.5)));
    }

    #[test]
    fn lists_parse_in_order() {
        let methods = parse_methods("max,percentile:99.9, channel-max").unwrap();
        assert_eq!(methods, [ThresholdMethod::Max, ThresholdMethod::Percentile(99.9), ThresholdMethod::ChannelMax]);
        assert!(parse_methods("max,,channel-max").is_err());
        assert!(parse_methods("").is_err());
    }

    #[test]
    fn bad_names_list_valid_ones() {
        for name in ["maximum", "max:3", "channel-max:1", "robust", "Percentile:99", "trained:4"] {
            let err = name.parse::<ThresholdMethod>().unwrap_err();
            assert!(matches!(err, ConvertError::UnknownThresholdMethod { .. }), "{name}: {err}");
            let message = err.to_string();
            assert!(message.contains("channel-percentile:P") && !message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn percentile_out_of_range_is_rejected() {
        for name in [
            "percentile:0",
            "percentile:-1",
            "percentile:100.5",
            "percentile:",
            "percentile",
            "percentile:nan",
            "channel-percentile:x",
            "ttrbr:0",
            "channel-ttrbr:101",
            "ttrbr:train",
        ] {
            let err = name.parse::<ThresholdMethod>().unwrap_err();
            assert!(matches!(err, ConvertError::BadPercentile { .. }), "{name}: {err}");
        }
    }
}
