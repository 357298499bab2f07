//! Compiled plans that run networks on the GPU.
