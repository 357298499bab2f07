// Integrate-and-fire (IF) neurons, the spiking replacement of a ReLU layer (semantics in
// src/convert/snn.rs, CPU reference `reference::snn::if_layer_step`):
//   membrane += current + bias_current; spike = membrane >= threshold;
//   if spike { membrane -= threshold; spike_count += 1 }; output = spike ? threshold : 0
// in f32 and in exactly that order, so spike counts equal the reference's bit for bit.
//
// One invocation per 4 consecutive neurons of the batch (NCHW), as vec4s: llvmpipe runs
// each invocation as one lane of an 8-wide SIMD vector and loads storage values lane by
// lane, so one 16-byte load per lane instead of four 4-byte ones makes this memory-bound
// kernel several times faster there (each vec4 component does the scalar f32 operations,
// so results stay bit-exact). Buffers are therefore padded to a multiple of 4 values; the
// padding neurons are updated too and never read. The flat index is spread over
// workgroup_id.x and .z because one dispatch dimension may hold at most 65535 workgroups.
// The membranes and spike counts live on the GPU for the whole run; if_reset restores them
// at the start of a run, so no host upload is needed between runs.
//
// Both kernels bind the same buffers (one bind group layout): if_reset ignores `current`,
// `bias_current` and `output`.

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
@group(0) @binding(1) var<storage, read> current: array<vec4<f32>>;
// One threshold per channel (a per-layer threshold is broadcast on the host).
@group(0) @binding(2) var<storage, read> thresholds: array<f32>;
// One constant input current per channel, added to the current every step (0 for a layer
// without one).
@group(0) @binding(3) var<storage, read> bias_current: array<f32>;
@group(0) @binding(4) var<storage, read_write> membrane: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> spike_count: array<vec4<u32>>;
// The layer's value this step, read by the next layers: threshold where it spiked.
@group(0) @binding(6) var<storage, read_write> output: array<vec4<f32>>;

const WORKGROUP: u32 = 256u;

fn flat_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return (wg.x + wg.z * groups.x) * WORKGROUP + local;
}

fn channel_of(neuron: u32) -> u32 {
    return (neuron / params.plane) % params.channels;
}

// Thresholds of neurons first..first+3: one load when the 4 share a channel (the plane is
// a multiple of 4, as in every CIFAR ResNet; a uniform branch).
fn thresholds_from(first: u32) -> vec4<f32> {
    if params.plane % 4u == 0u {
        return vec4<f32>(thresholds[channel_of(first)]);
    }
    return vec4<f32>(
        thresholds[channel_of(first)],
        thresholds[channel_of(first + 1u)],
        thresholds[channel_of(first + 2u)],
        thresholds[channel_of(first + 3u)],
    );
}

// Bias currents of neurons first..first+3, loaded like the thresholds.
fn bias_currents_from(first: u32) -> vec4<f32> {
    if params.plane % 4u == 0u {
        return vec4<f32>(bias_current[channel_of(first)]);
    }
    return vec4<f32>(
        bias_current[channel_of(first)],
        bias_current[channel_of(first + 1u)],
        bias_current[channel_of(first + 2u)],
        bias_current[channel_of(first + 3u)],
    );
}

@compute @workgroup_size(256)
fn if_update(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if 4u * i >= params.total {
        return;
    }
    let threshold = thresholds_from(4u * i);
    let integrated = membrane[i] + (current[i] + bias_currents_from(4u * i));
    let spike = integrated >= threshold;
    // select() rather than a branch: straight-line code keeps llvmpipe's lanes vectorized.
    membrane[i] = select(integrated, integrated - threshold, spike);
    spike_count[i] = spike_count[i] + select(vec4<u32>(0u), vec4<u32>(1u), spike);
    output[i] = select(vec4<f32>(0.0), threshold, spike);
}

@compute @workgroup_size(256)
fn if_reset(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(wg, groups, local);
    if 4u * i >= params.total {
        return;
    }
    membrane[i] = params.v_init * thresholds_from(4u * i);
    spike_count[i] = vec4<u32>(0u);
}
