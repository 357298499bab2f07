// Conv input as a storage buffer (prepended to conv.wgsl): any size, but llvmpipe loads
// each lane's value separately (a loop over the 8 lanes with a branch per lane).
@group(0) @binding(1) var<storage, read> input: array<f32>;

fn load_input(index: u32) -> f32 {
    return input[index];
}
