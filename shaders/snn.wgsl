// Integrate-and-fire (IF) neurons, the spiking replacement of a ReLU layer (semantics in
// src/convert/snn.rs, CPU reference `reference::snn::if_layer_step`):
//   membrane += current; spike = membrane >= threshold;
//   if spike { membrane -= threshold; spike_count += 1 }; output = spike ? threshold : 0
// in f32 and in exactly that order, so spike counts equal the reference's bit for bit.
//
// One invocation per neuron of the batch (NCHW); the flat index is spread over
// workgroup_id.x and .z because one dispatch dimension may hold at most 65535 workgroups.
// The membranes and spike counts live on the GPU for the whole run; if_reset restores them
// at the start of a run, so no host upload is needed between runs.
//
// Both kernels bind the same buffers (one bind group layout): if_reset ignores `current`
// and `output`.

struct IfParams {
    // Neurons of the whole batch.
    total: u32,
    // Channels and channel plane (height * width) of the layer.
    channels: u32,
    plane: u32,
    // Initial membrane as a fraction of the threshold.
    v_init: f32,
}

@group(0) @binding(0) var<uniform> params: IfParams;
// The ReLU's input node value this step (a conv output after bias and residual add).
@group(0) @binding(1) var<storage, read> current: array<f32>;
// One threshold per channel (a per-layer threshold is broadcast on the host).
@group(0) @binding(2) var<storage, read> thresholds: array<f32>;
@group(0) @binding(3) var<storage, read_write> membrane: array<f32>;
@group(0) @binding(4) var<storage, read_write> spike_count: array<u32>;
// The layer's value this step, read by the next layers: threshold where it spiked.
@group(0) @binding(5) var<storage, read_write> output: array<f32>;

const WORKGROUP: u32 = 256u;

fn flat_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return (wg.x + wg.z * groups.x) * WORKGROUP + local;
}

@compute @workgroup_size(256)
fn if_update(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if i >= params.total {
        return;
    }
    let threshold = thresholds[(i / params.plane) % params.channels];
    let integrated = membrane[i] + current[i];
    let spike = integrated >= threshold;
    // select() rather than a branch: llvmpipe runs 8 neurons per SIMD vector, and
    // straight-line code keeps the loads and stores vectorized.
    membrane[i] = select(integrated, integrated - threshold, spike);
    spike_count[i] = spike_count[i] + select(0u, 1u, spike);
    output[i] = select(0.0, threshold, spike);
}

@compute @workgroup_size(256)
fn if_reset(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if i >= params.total {
        return;
    }
    membrane[i] = params.v_init * thresholds[(i / params.plane) % params.channels];
    spike_count[i] = 0u;
}
