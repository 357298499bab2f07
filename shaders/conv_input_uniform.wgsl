// Conv input as a 64 KiB uniform window (prepended to conv.wgsl), the fast path on
// llvmpipe: a uniform load whose address differs between lanes is one straight-line
// 8-lane gather there, where a storage load is a loop over the lanes with a branch each.
// The host binds one window per group of whole images (up to 16 KiB floats: a CIFAR
// stage-1 image of 16 x 32 x 32), so a layer runs as one dispatch per window; the buffer
// must extend a full 64 KiB past each window's offset, as the fixed-size array requires.
// Uniform arrays have a 16-byte stride, hence vec4s indexed by component.
@group(0) @binding(1) var<uniform> input_window: array<vec4<f32>, 4096>;

fn load_input(index: u32) -> f32 {
    return input_window[index >> 2u][index & 3u];
}
