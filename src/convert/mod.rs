//! Conversion stages over the network graph.
