// Conv weights as a storage buffer (prepended to conv.wgsl), for layers whose single
// 8-channel block does not fit the 64 KiB uniform window of conv_weights_uniform.wgsl.
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
