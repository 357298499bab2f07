//! CPU reference implementations: one plain function per GPU kernel ([`ops`]) and a
//! whole-graph forward pass ([`forward`]). They favour clarity over speed; GPU kernels
//! are tested against them on random inputs.

pub mod forward;
pub mod ops;

pub use forward::forward;
