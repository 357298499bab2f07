// Pooling windows over NCHW f32 values (PyTorch's MaxPool2d / AvgPool2d, floor mode):
// the ANN's max and average over a batch, and the spiking network's gated max over all
// timesteps of a layer-major run (src/convert/pooling.rs).
//
// One invocation per output value of one sample (max, average) or per output neuron of
// one image, scanning all timesteps (gated max). The flat index is spread over
// workgroup_id.x and .z because one dispatch dimension may hold at most 65535 workgroups.
// A window covers input rows `oy * stride - padding ..` (kernel of them) clipped to the
// input, likewise columns, visited in (y, x) order as the CPU reference does.

struct PoolParams {
    // Output values of one dispatch item range: batch x C x OH x OW (max, average), or one
    // timestep's images x C x OH x OW (gated max).
    total: u32,
    in_height: u32,
    in_width: u32,
    out_height: u32,
    out_width: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
    // Gated max: timesteps scanned, and input values per timestep (images x C x H x W);
    // the output holds `total` values per timestep. Both timestep-major.
    timesteps: u32,
    in_step: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: PoolParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;

const WORKGROUP: u32 = 64u;
// Most inputs one gated window holds (kernel <= 8): its running sums live in a private
// array for the whole scan. src/backends/wgpu/layers.rs refuses larger windows.
const MAX_GATED_WINDOW: u32 = 64u;

fn flat_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return (wg.x + wg.z * groups.x) * WORKGROUP + local;
}

// The input rows (or columns) output `o` covers, `[start, end)`, clipped to `0..size`
// (padding never contributes a value: PyTorch's max ignores it; the average counts it as
// zeros, which add nothing).
fn window(o: u32, size: u32) -> vec2<u32> {
    let start = i32(o * params.stride) - i32(params.padding);
    let end = min(start + i32(params.kernel), i32(size));
    return vec2<u32>(u32(max(start, 0)), u32(max(end, 0)));
}

// Where output `i` (flat over planes) reads: the first value of its input plane, and its
// window's rows and columns.
struct Window {
    plane: u32,
    rows: vec2<u32>,
    columns: vec2<u32>,
}

fn window_of(i: u32) -> Window {
    let ox = i % params.out_width;
    let oy = (i / params.out_width) % params.out_height;
    let plane = i / (params.out_width * params.out_height);
    return Window(plane * params.in_height * params.in_width, window(oy, params.in_height), window(ox, params.in_width));
}

// The largest value of each window (a window always holds at least one input: padding is
// at most kernel / 2).
@compute @workgroup_size(64)
fn max_pool(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if i >= params.total {
        return;
    }
    let w = window_of(i);
    var best = input[w.plane + w.rows.x * params.in_width + w.columns.x];
    for (var y = w.rows.x; y < w.rows.y; y++) {
        for (var x = w.columns.x; x < w.columns.y; x++) {
            best = max(best, input[w.plane + y * params.in_width + x]);
        }
    }
    output[i] = best;
}

// Each window's sum in (y, x) order from 0, divided by kernel² (padding counts as zeros).
// The divisor is a power of two for even kernels, where the quotient is exact on every
// driver; otherwise a driver may round the division differently in the last bit (as in
// head.wgsl's global average).
@compute @workgroup_size(64)
fn avg_pool(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if i >= params.total {
        return;
    }
    let w = window_of(i);
    var sum = 0.0;
    for (var y = w.rows.x; y < w.rows.y; y++) {
        for (var x = w.columns.x; x < w.columns.y; x++) {
            sum += input[w.plane + y * params.in_width + x];
        }
    }
    output[i] = sum / f32(params.kernel * params.kernel);
}

// The spiking network's max pool (a gate, Rueckauer et al. 2017), all timesteps at once:
// every step, each input of the window adds its value to its running sum (f32, step
// order), and the window passes the current value of the input whose sum is the largest
// (strict `>`: the first in (y, x) order on ties). The sums are per input neuron; each
// invocation recomputes those of its own window in private memory, in the same order, so
// overlapping windows (kernel 3, stride 2) see the same sums without sharing state. Over
// spikes the output is a spike of one input (its threshold) or 0, never a new value.
@compute @workgroup_size(64)
fn gated_max_pool(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if i >= params.total {
        return;
    }
    let w = window_of(i);
    // Zeros: WGSL initializes every function variable.
    var sums: array<f32, MAX_GATED_WINDOW>;
    for (var t = 0u; t < params.timesteps; t++) {
        let plane = t * params.in_step + w.plane;
        var j = 0u;
        var best_sum = 0.0;
        var passed = 0.0;
        for (var y = w.rows.x; y < w.rows.y; y++) {
            for (var x = w.columns.x; x < w.columns.y; x++) {
                let value = input[plane + y * params.in_width + x];
                let sum = sums[j] + value;
                sums[j] = sum;
                if j == 0u || sum > best_sum {
                    best_sum = sum;
                    passed = value;
                }
                j++;
            }
        }
        output[t * params.total + i] = passed;
    }
}
