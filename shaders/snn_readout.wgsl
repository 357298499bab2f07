// The SNN's small per-run results, computed on the GPU so that a run reads back only a
// few hundred bytes: per-step correct counts (readout) and per-layer spike totals.
//
// `counters` holds, as u32: [0] the number of real images of the batch (`count`, written
// by the host before the run; padded images past it are never counted), [1] the number of
// timesteps done, then two words (low, high) of a 64-bit spike total per IF layer, then
// a ring of `ring` correct counts: step t writes slot t % ring, and the host copies the
// ring out after every `ring` steps (a copy command, no wait), so the buffer and every
// bind group are fixed at compile time whatever the number of timesteps.

struct ReadoutParams {
    // readout: images of the compiled batch and classes of the output node.
    batch: u32,
    classes: u32,
    // spike_totals: neurons per image of the layer.
    neurons: u32,
    // spike_totals: index in `counters` of the layer's low word (the high word follows).
    total_slot: u32,
    // readout: index in `counters` of the first slot of the correct-count ring.
    correct_slot: u32,
    // readout: slots in the ring.
    ring: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: ReadoutParams;
// readout: the output node's value this step (batch × classes); unused by spike_totals.
@group(0) @binding(1) var<storage, read> values: array<f32>;
// readout: one label per image; spike_totals: the layer's per-neuron spike counts.
@group(0) @binding(2) var<storage, read> words: array<u32>;
// readout: the output summed over the steps so far (batch × classes).
@group(0) @binding(3) var<storage, read_write> accumulated: array<f32>;
@group(0) @binding(4) var<storage, read_write> counters: array<atomic<u32>>;

const COUNT_SLOT: u32 = 0u;
const STEP_SLOT: u32 = 1u;

var<workgroup> correct_here: atomic<u32>;

// One workgroup: adds this step's output to the accumulated output, takes the argmax per
// image (first index on ties, like `reference::ops::argmax_rows`) and stores the number of
// correct images as the correct count of step `counters[1]`, then advances that counter.
//
// Why a GPU-side step counter instead of per-step uniform offsets: the steps of a run are
// recorded from one compiled list (the same bind groups every timestep), so nothing on the
// host side changes per step and no dynamic offsets are needed; a single workgroup makes
// the read-then-increment race-free (the barrier orders every invocation's read before invocation 0's write). The
// batch is tiny work (batch × classes adds), so one workgroup costs nothing next to a conv.
@compute @workgroup_size(64)
fn readout(@builtin(local_invocation_index) local: u32) {
    let count = atomicLoad(&counters[COUNT_SLOT]);
    let step = atomicLoad(&counters[STEP_SLOT]);
    for (var n = local; n < params.batch; n += 64u) {
        let row = n * params.classes;
        var best = 0u;
        var best_value = 0.0;
        for (var k = 0u; k < params.classes; k++) {
            let sum = accumulated[row + k] + values[row + k];
            accumulated[row + k] = sum;
            if k == 0u || sum > best_value {
                best = k;
                best_value = sum;
            }
        }
        if n < count && best == words[n] {
            atomicAdd(&correct_here, 1u);
        }
    }
    workgroupBarrier();
    if local == 0u {
        atomicStore(&counters[params.correct_slot + step % params.ring], atomicLoad(&correct_here));
        atomicStore(&counters[STEP_SLOT], step + 1u);
    }
}

const TOTALS_PER_INVOCATION: u32 = 4u;
var<workgroup> partial: array<u32, 256>;

// Sums the spike counts of the first `count` images of one IF layer: each workgroup adds
// 1024 counts (a u32 cannot overflow below 4M timesteps), then one 64-bit atomic add per
// workgroup (low word, and a carry into the high word when the low word wraps).
@compute @workgroup_size(256)
fn spike_totals(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let total = atomicLoad(&counters[COUNT_SLOT]) * params.neurons;
    let base = (wg.x + wg.z * groups.x) * 256u * TOTALS_PER_INVOCATION;
    var sum = 0u;
    for (var j = 0u; j < TOTALS_PER_INVOCATION; j++) {
        let i = base + j * 256u + local;
        if i < total {
            sum += words[i];
        }
    }
    partial[local] = sum;
    workgroupBarrier();
    for (var width = 128u; width > 0u; width >>= 1u) {
        if local < width {
            partial[local] += partial[local + width];
        }
        workgroupBarrier();
    }
    if local == 0u && partial[0] != 0u {
        let added = partial[0];
        let before = atomicAdd(&counters[params.total_slot], added);
        if before + added < before {
            atomicAdd(&counters[params.total_slot + 1u], 1u);
        }
    }
}
