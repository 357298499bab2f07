//! Threshold tuning and conversion-error analysis on a layer-major walk
//! ([`crate::engine::walk`]), on whichever backend the walk runs: [`tune`](mod@tune) (TTRBR
//! threshold tuning and bias correction) and [`analyze`](mod@analyze) (quantization and
//! deviation errors per layer). The decisions they apply are pure functions in
//! [`crate::convert`] ([`crate::convert::ttrbr`], [`crate::convert::bias_correction`]).

pub mod analyze;
pub mod tune;
