//! Result tables and machine-readable output.
