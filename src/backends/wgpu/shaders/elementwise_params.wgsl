// Shared by elementwise.wgsl and head.wgsl (prepended by src/gpu/kernels.rs): the shape
// uniform, laid out as `ElementwiseParams` in src/gpu/kernels.rs, and the bindings.
// Each file's kernels read the fields they need; the comments say which.

struct ElementwiseParams {
    // Output values of the whole batch.
    total: u32,
    // Output channels and channel plane (height * width); global_avg_pool: channels and
    // values per plane; linear: out_features and in_features.
    channels: u32,
    plane: u32,
    // bit 1: apply ReLU to the result (affine, add).
    flags: u32,
    // Option-A shortcut: the input's shape, the subsampling stride and the channels
    // zero-padded in front.
    in_channels: u32,
    in_height: u32,
    in_width: u32,
    stride: u32,
    pad_before: u32,
    out_width: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: ElementwiseParams;
@group(0) @binding(1) var<storage, read> first: array<f32>;
// affine: [scale | shift], `channels` each; add: the second addend; linear: [weight
// (out x in, row-major) | bias (out)]; otherwise unused.
@group(0) @binding(2) var<storage, read> second: array<f32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;

