//! CPU reference implementations: one plain function per GPU kernel ([`ops`]) and a
//! whole-graph forward pass ([`forward`](mod@forward)). They favour clarity over speed; GPU kernels
//! are tested against them on random inputs. [`calibration`] is the reference of the
//! calibration-statistics kernels, [`snn`] of the spiking simulation and [`layerwise`] of
//! the layer-major error-analysis and threshold-search kernels.

pub mod calibration;
pub mod forward;
pub mod layerwise;
pub mod ops;
pub mod snn;

pub use forward::forward;
