//! Input normalization: the per-channel `(pixel / 255 - mean) / std` a network was trained
//! with, its presets, and the parser for `"a,b,c"` triples given on the command line or
//! stored in a checkpoint's `__metadata__` (`normalize_mean`, `normalize_std`).

use std::fmt;
use std::str::FromStr;

/// Number of input channels (RGB) every CIFAR network reads.
pub const CHANNELS: usize = 3;

/// A normalization value, preset name or triple that could not be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NormalizeError {
    /// The text did not hold exactly three comma-separated values.
    #[error("`{text}` has {found} value(s), expected 3 comma-separated numbers (e.g. 0.4914,0.4822,0.4465)")]
    WrongCount { text: String, found: usize },
    /// One of the values is not a number.
    #[error("`{text}`: `{item}` is not a number")]
    NotANumber { text: String, item: String },
    /// One of the values is NaN or infinite.
    #[error("`{text}`: `{item}` is not a finite number")]
    NotFinite { text: String, item: String },
    /// A standard deviation is zero or negative (it divides the input).
    #[error("standard deviation {values:?} must be > 0 in every channel")]
    NonPositiveStd { values: [f32; CHANNELS] },
    /// A value outside what normalizing `pixel / 255` can mean: the normalized input would
    /// overflow or be meaningless.
    #[error("{what} {values:?} is outside [{min}, {max}] (pixels are scaled to [0, 1] before normalizing)")]
    OutOfRange { what: &'static str, values: [f32; CHANNELS], min: f32, max: f32 },
    /// The preset name is not one this crate knows.
    #[error("unknown normalization preset `{name}`, expected one of: cifar10, imagenet")]
    UnknownPreset { name: String },
}

/// Normalization constants commonly used for CIFAR networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormalizePreset {
    /// CIFAR-10 training-set statistics: mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616)
    /// (the per-pixel standard deviation over the whole training set).
    Cifar10,
    /// ImageNet statistics: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225); used by the
    /// akamaster CIFAR ResNets.
    Imagenet,
}

impl NormalizePreset {
    /// Every preset, for help texts.
    pub const ALL: [NormalizePreset; 2] = [NormalizePreset::Cifar10, NormalizePreset::Imagenet];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            NormalizePreset::Cifar10 => "cifar10",
            NormalizePreset::Imagenet => "imagenet",
        }
    }

    /// The preset's mean and standard deviation.
    pub fn normalization(self) -> Normalization {
        match self {
            NormalizePreset::Cifar10 => Normalization { mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616] },
            NormalizePreset::Imagenet => Normalization { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
        }
    }
}

impl fmt::Display for NormalizePreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NormalizePreset {
    type Err = NormalizeError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| NormalizeError::UnknownPreset { name: name.to_string() })
    }
}

/// Per-channel input normalization: the network sees `(pixel / 255 - mean[c]) / std[c]`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    /// Mean of each RGB channel, on the `[0, 1]` pixel scale.
    pub mean: [f32; CHANNELS],
    /// Standard deviation of each RGB channel, on the `[0, 1]` pixel scale; all `> 0`.
    pub std: [f32; CHANNELS],
}

impl Normalization {
    /// Checks that every value is finite and every std is positive.
    pub fn new(mean: [f32; CHANNELS], std: [f32; CHANNELS]) -> Result<Self, NormalizeError> {
        for (values, what) in [(&mean, "mean"), (&std, "std")] {
            if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
                return Err(NormalizeError::NotFinite { text: format!("{what} {values:?}"), item: bad.to_string() });
            }
        }
        check_std(std)?;
        check_mean(mean)?;
        Ok(Self { mean, std })
    }

    /// Parses `mean` and `std` given as `"a,b,c"` strings.
    pub fn parse(mean: &str, std: &str) -> Result<Self, NormalizeError> {
        Self::new(parse_mean(mean)?, parse_std(std)?)
    }

    /// The normalized value of an 8-bit `pixel` of `channel` (0 red, 1 green, 2 blue).
    ///
    /// # Panics
    /// If `channel >= 3` (a caller bug, never a property of user input).
    #[inline]
    pub fn apply(&self, channel: usize, pixel: u8) -> f32 {
        (f32::from(pixel) / 255.0 - self.mean[channel]) / self.std[channel]
    }

    /// A 256-entry lookup table per channel: `table[c][p] == self.apply(c, p)`.
    pub fn lookup_table(&self) -> [[f32; 256]; CHANNELS] {
        let mut table = [[0.0; 256]; CHANNELS];
        for (channel, row) in table.iter_mut().enumerate() {
            for (pixel, value) in row.iter_mut().enumerate() {
                *value = self.apply(channel, pixel as u8);
            }
        }
        table
    }
}

impl fmt::Display for Normalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [m0, m1, m2] = self.mean;
        let [s0, s1, s2] = self.std;
        write!(f, "mean ({m0}, {m1}, {m2}) / std ({s0}, {s1}, {s2})")
    }
}

/// Parses `"a,b,c"` into three finite numbers (spaces around values are allowed, as are
/// surrounding parentheses or brackets: `"(0.5, 0.5, 0.5)"`). This is the format of the
/// checkpoints' `normalize_mean` / `normalize_std` metadata and of `--mean` / `--std`.
pub fn parse_triple(text: &str) -> Result<[f32; CHANNELS], NormalizeError> {
    let inner = text.trim().trim_start_matches(['(', '[']).trim_end_matches([')', ']']);
    let items: Vec<&str> = inner.split(',').map(str::trim).collect();
    if items.len() != CHANNELS || items.iter().any(|s| s.is_empty()) {
        let found = items.iter().filter(|s| !s.is_empty()).count();
        return Err(NormalizeError::WrongCount { text: text.to_string(), found });
    }
    let mut values = [0.0f32; CHANNELS];
    for (value, item) in values.iter_mut().zip(&items) {
        let parsed: f32 =
            item.parse().map_err(|_| NormalizeError::NotANumber { text: text.to_string(), item: item.to_string() })?;
        if !parsed.is_finite() {
            return Err(NormalizeError::NotFinite { text: text.to_string(), item: item.to_string() });
        }
        *value = parsed;
    }
    Ok(values)
}

/// Parses a mean triple (`"a,b,c"`, three finite numbers).
pub fn parse_mean(text: &str) -> Result<[f32; CHANNELS], NormalizeError> {
    parse_triple(text)
}

/// Parses a standard-deviation triple (`"a,b,c"`, three finite numbers, all `> 0`).
pub fn parse_std(text: &str) -> Result<[f32; CHANNELS], NormalizeError> {
    check_std(parse_triple(text)?)
}

fn check_mean(mean: [f32; CHANNELS]) -> Result<[f32; CHANNELS], NormalizeError> {
    if mean.iter().any(|m| m.abs() > MEAN_LIMIT) {
        return Err(NormalizeError::OutOfRange { what: "mean", values: mean, min: -MEAN_LIMIT, max: MEAN_LIMIT });
    }
    Ok(mean)
}

/// Smallest and largest standard deviation accepted: far outside any real normalization
/// of `[0, 1]` pixels (ImageNet's and CIFAR's are about 0.2), near enough that normalized
/// values stay far from f32 overflow.
pub const STD_RANGE: (f32, f32) = (1e-4, 1e4);
/// Largest mean magnitude accepted.
pub const MEAN_LIMIT: f32 = 1e4;

fn check_std(std: [f32; CHANNELS]) -> Result<[f32; CHANNELS], NormalizeError> {
    if std.iter().any(|&s| s <= 0.0 || !s.is_finite()) {
        return Err(NormalizeError::NonPositiveStd { values: std });
    }
    if std.iter().any(|&s| !(STD_RANGE.0..=STD_RANGE.1).contains(&s)) {
        return Err(NormalizeError::OutOfRange {
            what: "standard deviation",
            values: std,
            min: STD_RANGE.0,
            max: STD_RANGE.1,
        });
    }
    Ok(std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metadata_format_and_variants() {
        assert_eq!(parse_triple("0.485,0.456,0.406").unwrap(), [0.485, 0.456, 0.406]);
        assert_eq!(parse_triple(" (0.5, 0.25 ,1) ").unwrap(), [0.5, 0.25, 1.0]);
        assert_eq!(parse_triple("[1,2,3]").unwrap(), [1.0, 2.0, 3.0]);
    }

    #[test]
    fn rejects_bad_triples() {
        assert!(matches!(parse_triple("0.1,0.2"), Err(NormalizeError::WrongCount { found: 2, .. })));
        assert!(matches!(parse_triple("0.1,0.2,0.3,0.4"), Err(NormalizeError::WrongCount { found: 4, .. })));
        assert!(matches!(parse_triple("0.1,,0.3"), Err(NormalizeError::WrongCount { .. })));
        assert!(matches!(parse_triple(""), Err(NormalizeError::WrongCount { found: 0, .. })));
        assert!(matches!(parse_triple("0.1,x,0.3"), Err(NormalizeError::NotANumber { .. })));
        assert!(matches!(parse_triple("0.1,NaN,0.3"), Err(NormalizeError::NotFinite { .. })));
        assert!(matches!(parse_triple("0.1,inf,0.3"), Err(NormalizeError::NotFinite { .. })));
        assert!(matches!(parse_std("0.1,0,0.3"), Err(NormalizeError::NonPositiveStd { .. })));
        assert!(matches!(parse_std("0.1,-1,0.3"), Err(NormalizeError::NonPositiveStd { .. })));
        assert!(parse_mean("-0.5,0,0.3").is_ok());
    }

    #[test]
    fn presets_and_apply() {
        assert_eq!("CIFAR10".parse::<NormalizePreset>().unwrap(), NormalizePreset::Cifar10);
        assert!("mnist".parse::<NormalizePreset>().is_err());
        let n = NormalizePreset::Imagenet.normalization();
        assert!((n.apply(0, 255) - (1.0 - 0.485) / 0.229).abs() < 1e-6);
        assert_eq!(n.lookup_table()[2][17], n.apply(2, 17));
        assert!(Normalization::new([0.0; 3], [1.0, 0.0, 1.0]).is_err());
        assert!(Normalization::new([f32::NAN, 0.0, 0.0], [1.0; 3]).is_err());
    }
}
