//! Results as people and programs read them: text tables on stdout and JSON objects.

pub mod ann;

pub use ann::AnnReport;
