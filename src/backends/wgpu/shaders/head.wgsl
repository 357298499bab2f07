// The classifier head: global average pooling and the fully connected layer.
// Both are tiny (a few thousand values per batch), so one invocation per output value
// with a plain sequential sum is enough; the sums run in the CPU reference's order.

// The shape uniform and bindings come from elementwise_params.wgsl.

const WORKGROUP: u32 = 64u;

fn flat_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return (wg.x + wg.z * groups.x) * WORKGROUP + local;
}

// output[n * C + c] = mean of plane (n, c); the flat output index is also the plane index.
@compute @workgroup_size(64)
fn global_avg_pool(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if i >= params.total {
        return;
    }
    let start = i * params.plane;
    var sum = 0.0;
    for (var j = 0u; j < params.plane; j++) {
        sum += first[start + j];
    }
    output[i] = sum / f32(params.plane);
}

// output[n * out + o] = dot(weight[o], input[n]) + bias[o].
@compute @workgroup_size(64)
fn linear(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if i >= params.total {
        return;
    }
    let features = params.plane;
    let o = i % params.channels;
    let n = i / params.channels;
    var sum = 0.0;
    for (var j = 0u; j < features; j++) {
        sum += second[o * features + j] * first[n * features + j];
    }
    output[i] = sum + second[params.channels * features + o];
}
