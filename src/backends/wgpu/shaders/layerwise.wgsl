// Layer-major IF kernels: one IF layer over all T timesteps at once, for the error analysis
// and the threshold tuning of TTRBR (src/backends/wgpu/layerwise.rs; CPU reference
// `reference::layerwise`). Values of a layer for every timestep are stored one batch after
// the other: index (t * images + b) * neurons + n, so the convolutions between IF layers
// run on `timesteps × images` "images" and only these kernels know about time.
//
// Each invocation owns one neuron and runs its T steps in order, in f32, with the update of
// the reference (`neuron_step` below), so spike counts equal the reference's bit for bit.
//
// Work split (all three kernels): one workgroup of 64 neurons inside one channel plane of
// one image; the flat workgroup index g = x + z * groups.x counts (image, channel, chunk)
// with the chunk fastest. Keeping a workgroup inside one channel lets the reductions below
// produce per-channel partial sums without atomics: the host adds the partials of each
// channel in a fixed order, so results are deterministic.

struct ScanParams {
    images: u32,
    channels: u32,
    plane: u32,
    timesteps: u32,
    // Values between one timestep's current and the next: images * channels * plane, or 0
    // when the current is the same every step (a layer fed by the direct input).
    time_stride: u32,
    // Candidate thresholds per channel (threshold_search), else 1.
    candidates: u32,
    // Initial membrane as a fraction of the threshold.
    v_init: f32,
    // 1: signed neurons (they also fire -1, see neuron_step), 0: plain IF neurons.
    signed: u32,
}

@group(0) @binding(0) var<uniform> params: ScanParams;
// The IF layer's input current for every step (see time_stride).
@group(0) @binding(1) var<storage, read> current: array<f32>;
// if_scan, error_analysis: one threshold per channel; threshold_search: `candidates`
// thresholds per channel, channel-major.
@group(0) @binding(2) var<storage, read> thresholds: array<f32>;
// The ANN's activation of the same neuron (images × channels × plane); unused by if_scan.
@group(0) @binding(3) var<storage, read> reference: array<f32>;
// if_scan: the layer's value every step (the spike times the threshold: θ, -θ or 0);
// error_analysis: STATS partial sums per workgroup; threshold_search: `candidates` partial
// sums of squared errors per workgroup.
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

const WORKGROUP: u32 = 64u;
const STATS: u32 = 10u;
const MAX_CANDIDATES: u32 = 32u;

var<workgroup> partial: array<f32, 2048>; // WORKGROUP * MAX_CANDIDATES

struct Neuron {
    // Flat workgroup index; false for the padding workgroups of the last z row.
    group: u32,
    live_group: bool,
    // Whether this invocation has a neuron (the last chunk of a plane may be partial).
    valid: bool,
    channel: u32,
    // Index of the neuron in the first timestep's batch (and in `reference`).
    index: u32,
}

fn locate(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> Neuron {
    let chunks = (params.plane + WORKGROUP - 1u) / WORKGROUP;
    let group = wg.x + wg.z * groups.x;
    let chunk = group % chunks;
    let image_channel = group / chunks;
    let channel = image_channel % params.channels;
    let pixel = chunk * WORKGROUP + local;
    let live_group = image_channel < params.images * params.channels;
    var neuron: Neuron;
    neuron.group = group;
    neuron.live_group = live_group;
    neuron.valid = live_group && pixel < params.plane;
    neuron.channel = channel;
    neuron.index = image_channel * params.plane + pixel;
    return neuron;
}

fn current_at(neuron: Neuron, t: u32) -> f32 {
    return current[t * params.time_stride + neuron.index];
}

struct Update {
    membrane: f32,
    // 1, -1 or 0.
    spike: i32,
}

// One neuron update (reference::snn::neuron_step): membrane += current; at the threshold a
// spike of 1 and membrane -= threshold; else, for a signed neuron whose membrane is below 0
// while its net count (positive minus negative spikes so far) is positive, a spike of -1
// and membrane += threshold.
fn neuron_step(membrane: f32, net: i32, current: f32, threshold: f32) -> Update {
    let potential = membrane + current;
    if potential >= threshold {
        return Update(potential - threshold, 1);
    }
    if params.signed != 0u && potential < 0.0 && net > 0 {
        return Update(potential + threshold, -1);
    }
    return Update(potential, 0);
}

@compute @workgroup_size(64)
fn if_scan(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let neuron = locate(wg, groups, local);
    if !neuron.valid {
        return;
    }
    let threshold = thresholds[neuron.channel];
    let step_values = params.images * params.channels * params.plane;
    var membrane = params.v_init * threshold;
    var net = 0;
    for (var t = 0u; t < params.timesteps; t++) {
        let update = neuron_step(membrane, net, current_at(neuron, t), threshold);
        membrane = update.membrane;
        net += update.spike;
        output[t * step_values + neuron.index] = f32(update.spike) * threshold;
    }
}

// if_scan, and the layer's spikes counted: each workgroup writes the number of spikes (of
// either sign) of its
// 64 neurons over all steps, as f32 (exact below 2^24, i.e. T < 262144), to
// output[timesteps * images * channels * plane + group], after the values of every step.
// The simulation (src/backends/wgpu/snn.rs) sums them per layer on the host: spike totals, firing
// rates and synaptic operations without a pass over the spikes.
@compute @workgroup_size(64)
fn if_scan_counted(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let neuron = locate(wg, groups, local);
    let step_values = params.images * params.channels * params.plane;
    var spikes = 0u;
    if neuron.valid {
        let threshold = thresholds[neuron.channel];
        var membrane = params.v_init * threshold;
        var net = 0;
        for (var t = 0u; t < params.timesteps; t++) {
            let update = neuron_step(membrane, net, current_at(neuron, t), threshold);
            membrane = update.membrane;
            net += update.spike;
            spikes += u32(abs(update.spike));
            output[t * step_values + neuron.index] = f32(update.spike) * threshold;
        }
    }
    partial[local] = f32(spikes);
    reduce_workgroup(local, 1u);
    if local == 0u && neuron.live_group {
        output[params.timesteps * step_values + neuron.group] = partial[0];
    }
}

// Sums `per_invocation` values per invocation (stored at partial[local * per_invocation + k])
// over the workgroup in a fixed tree order; the sums end up in partial[0..per_invocation].
fn reduce_workgroup(local: u32, per_invocation: u32) {
    for (var stride = WORKGROUP / 2u; stride > 0u; stride = stride / 2u) {
        workgroupBarrier();
        if local < stride {
            for (var k = 0u; k < per_invocation; k++) {
                partial[local * per_invocation + k] += partial[(local + stride) * per_invocation + k];
            }
        }
    }
    workgroupBarrier();
}

// Per neuron, with a = ANN activation, theta = threshold, n = net spikes in T steps,
// mu = mean current, m = spikes a constant current mu would give in T steps:
//   value = n theta / T, constant = m theta / T, clipped = clamp(a, 0, theta)
//   quantization q = constant - clipped, deviation d = value - constant, error e = value - a,
// the input current's variance over time and the tracking error of threshold_search with
// the neuron's own threshold. Partial sums per workgroup:
//   [|q|, |d|, |e|, e^2, variance, spikes (of either sign), d, q, tracking, e]
// (A constant current makes a signed neuron fire as a plain one: m is the same for both.)
@compute @workgroup_size(64)
fn error_analysis(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let neuron = locate(wg, groups, local);
    var stats: array<f32, 10>;
    if neuron.valid {
        let threshold = thresholds[neuron.channel];
        let steps = f32(params.timesteps);
        var membrane = params.v_init * threshold;
        var spikes = 0u;
        var net = 0;
        // Sums of the current shifted by its first value, for a stable variance.
        let first = current_at(neuron, 0u);
        var shifted_sum = 0.0;
        var shifted_squares = 0.0;
        var tracking = 0.0;
        let activation = reference[neuron.index];
        for (var t = 0u; t < params.timesteps; t++) {
            let input = current_at(neuron, t);
            shifted_sum += input - first;
            shifted_squares += (input - first) * (input - first);
            let update = neuron_step(membrane, net, input, threshold);
            membrane = update.membrane;
            net += update.spike;
            spikes += u32(abs(update.spike));
            let lag = f32(net) * threshold - f32(t + 1u) * activation;
            tracking += lag * lag;
        }
        var mean = first + shifted_sum / steps;
        var variance = max(shifted_squares / steps - (shifted_sum / steps) * (shifted_sum / steps), 0.0);
        if params.time_stride == 0u {
            mean = first;
            variance = 0.0;
        }
        var constant_membrane = params.v_init * threshold;
        var constant_spikes = 0u;
        for (var t = 0u; t < params.timesteps; t++) {
            constant_membrane = constant_membrane + mean;
            let spike = constant_membrane >= threshold;
            constant_membrane = select(constant_membrane, constant_membrane - threshold, spike);
            constant_spikes += select(0u, 1u, spike);
        }
        let value = f32(net) * threshold / steps;
        let constant = f32(constant_spikes) * threshold / steps;
        let quantization = constant - clamp(activation, 0.0, threshold);
        let deviation = value - constant;
        let error = value - activation;
        stats = array<f32, 10>(
            abs(quantization),
            abs(deviation),
            abs(error),
            error * error,
            variance,
            f32(spikes),
            deviation,
            quantization,
            tracking / (steps * steps * steps),
            error,
        );
    }
    for (var k = 0u; k < STATS; k++) {
        partial[local * STATS + k] = stats[k];
    }
    reduce_workgroup(local, STATS);
    if local == 0u && neuron.live_group {
        for (var k = 0u; k < STATS; k++) {
            output[neuron.group * STATS + k] = partial[k];
        }
    }
}

// For each of the channel's `candidates` thresholds theta_k, the neuron's T steps with that
// threshold on the same current, scored by the tracking error of its cumulative output
// against the ANN activation a: J_k = (1/T) sum_{t=1..T} ((S_t theta_k - t a) / T)^2, with
// S_t the net spikes up to step t (see tracking_error). Partial sums per workgroup: one per
// candidate.
@compute @workgroup_size(64)
fn threshold_search(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let neuron = locate(wg, groups, local);
    let count = min(params.candidates, MAX_CANDIDATES);
    var candidates: array<f32, 32>;
    var membranes: array<f32, 32>;
    var spikes: array<i32, 32>;
    var tracking: array<f32, 32>;
    if neuron.valid {
        let first = neuron.channel * params.candidates;
        for (var k = 0u; k < count; k++) {
            candidates[k] = thresholds[first + k];
            membranes[k] = params.v_init * candidates[k];
            spikes[k] = 0;
            tracking[k] = 0.0;
        }
        let activation = reference[neuron.index];
        for (var t = 0u; t < params.timesteps; t++) {
            let input = current_at(neuron, t);
            let steady = f32(t + 1u) * activation;
            for (var k = 0u; k < count; k++) {
                let threshold = candidates[k];
                let update = neuron_step(membranes[k], spikes[k], input, threshold);
                membranes[k] = update.membrane;
                spikes[k] += update.spike;
                let lag = f32(spikes[k]) * threshold - steady;
                tracking[k] += lag * lag;
            }
        }
        let steps = f32(params.timesteps);
        for (var k = 0u; k < count; k++) {
            partial[local * count + k] = tracking[k] / (steps * steps * steps);
        }
    } else {
        for (var k = 0u; k < count; k++) {
            partial[local * count + k] = 0.0;
        }
    }
    reduce_workgroup(local, count);
    if local == 0u && neuron.live_group {
        for (var k = 0u; k < count; k++) {
            output[neuron.group * count + k] = partial[k];
        }
    }
}
