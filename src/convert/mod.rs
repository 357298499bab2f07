//! Conversion stages: small, pure passes over the network [`Graph`](crate::model::graph::Graph).
//! Each takes a graph and returns a new one (or statistics about it), and is tested alone.

pub mod fold_bn;

pub use fold_bn::fold_batch_norm;
