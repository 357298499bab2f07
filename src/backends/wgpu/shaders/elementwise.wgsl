// Memory-bound element-wise kernels over NCHW f32 activations: per-channel affine
// (an unfolded BatchNorm), ReLU, addition, and He et al.'s option-A shortcut.
//
// One invocation per output value. The flat index is spread over workgroup_id.x and .z
// because one dispatch dimension may hold at most 65535 workgroups. The shape uniform and
// bindings come from elementwise_params.wgsl.

const WORKGROUP: u32 = 256u;
const FLAG_RELU: u32 = 2u;

fn flat_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return (wg.x + wg.z * groups.x) * WORKGROUP + local;
}

fn activate(value: f32) -> f32 {
    return select(value, max(value, 0.0), (params.flags & FLAG_RELU) != 0u);
}

@compute @workgroup_size(256)
fn affine(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if i >= params.total {
        return;
    }
    let c = (i / params.plane) % params.channels;
    output[i] = activate(first[i] * second[c] + second[params.channels + c]);
}

@compute @workgroup_size(256)
fn relu(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if i >= params.total {
        return;
    }
    output[i] = max(first[i], 0.0);
}

@compute @workgroup_size(256)
fn add(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if i >= params.total {
        return;
    }
    output[i] = activate(first[i] + second[i]);
}

// out[n, c, y, x] = in[n, c - pad_before, y * stride, x * stride], zero outside the input's
// channels. Every output value is written, so the output buffer needs no clearing.
@compute @workgroup_size(256)
fn shortcut_a(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if i >= params.total {
        return;
    }
    let x = i % params.out_width;
    let y = (i / params.out_width) % (params.plane / params.out_width);
    let c = (i / params.plane) % params.channels;
    let n = i / (params.plane * params.channels);
    let source_channel = i32(c) - i32(params.pad_before);
    var value = 0.0;
    if source_channel >= 0 && source_channel < i32(params.in_channels) {
        let in_plane = params.in_height * params.in_width;
        let source = (n * params.in_channels + u32(source_channel)) * in_plane
            + y * params.stride * params.in_width + x * params.stride;
        value = first[source];
    }
    output[i] = value;
}
