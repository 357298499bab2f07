// The readout of a layer-major SNN run (src/backends/wgpu/snn.rs), computed on the GPU so that a run
// reads back only a few hundred bytes: the number of correct images after every step.
//
// `values` holds the output node for every step, timestep-major:
// (t * batch + n) * classes + k. One invocation per image adds its output step by step into
// `accumulated` (f32, in step order, as the CPU reference does), takes the argmax after
// every step (first index on ties, like `reference::ops::argmax_rows`) and counts a correct
// image into counters[correct_slot + t]. counters[0] holds the number of real images of
// the batch (written by the host before the run); padded images past it are not counted.

struct ReadoutParams {
    batch: u32,
    classes: u32,
    timesteps: u32,
    correct_slot: u32,
}

@group(0) @binding(0) var<uniform> params: ReadoutParams;
@group(0) @binding(1) var<storage, read> values: array<f32>;
// One label per image.
@group(0) @binding(2) var<storage, read> words: array<u32>;
// The output summed over the steps (batch × classes), zeroed before the run.
@group(0) @binding(3) var<storage, read_write> accumulated: array<f32>;
@group(0) @binding(4) var<storage, read_write> counters: array<atomic<u32>>;

const COUNT_SLOT: u32 = 0u;

@compute @workgroup_size(64)
fn readout_timesteps(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let n = (wg.x + wg.z * groups.x) * 64u + local;
    if n >= params.batch || n >= atomicLoad(&counters[COUNT_SLOT]) {
        return;
    }
    let row = n * params.classes;
    for (var t = 0u; t < params.timesteps; t++) {
        let step_row = (t * params.batch + n) * params.classes;
        var best = 0u;
        var best_value = 0.0;
        for (var k = 0u; k < params.classes; k++) {
            let sum = accumulated[row + k] + values[step_row + k];
            accumulated[row + k] = sum;
            if k == 0u || sum > best_value {
                best = k;
                best_value = sum;
            }
        }
        if best == words[n] {
            atomicAdd(&counters[params.correct_slot + t], 1u);
        }
    }
}
