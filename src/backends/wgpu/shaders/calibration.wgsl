// Calibration statistics of the ANN's ReLU activations, batch by batch (the two passes of
// src/convert/stats.rs; CPU references `reference::calibration::observe_range` and
// `observe_histogram`).
//
// Work split: workgroup_id.y is the channel, workgroup_id.x a group of `images_per_group`
// images, so every invocation of a workgroup reads the same channel's range and the
// workgroup's maximum needs one global atomic (llvmpipe runs global atomics lane by lane,
// so reducing in workgroup memory first pays off). The host picks `images_per_group` so a
// workgroup sees about 1024 values even on 8x8 planes.
//
// Only the first `run_info[0]` images (the real ones of a partial batch) are counted.

struct CalibrationParams {
    channels: u32,
    // Values per channel plane (height * width).
    plane: u32,
    images_per_group: u32,
    // Histogram bins per row.
    bins: u32,
}

@group(0) @binding(0) var<uniform> params: CalibrationParams;
// The observed node's value (batch × channels × plane, NCHW; ReLU outputs, so >= 0).
@group(0) @binding(1) var<storage, read> activation: array<f32>;
// histogram: [layer max | channel max × channels] from pass 1; unused by channel_max.
@group(0) @binding(2) var<storage, read> ranges: array<f32>;
// [count]: real images of this batch.
@group(0) @binding(3) var<storage, read> run_info: array<u32>;
// channel_max: one f32 bit pattern per channel (atomicMax on the bits orders non-negative
// floats correctly); histogram: [layer row (bins) | channel rows (channels × bins)].
@group(0) @binding(4) var<storage, read_write> stats: array<atomic<u32>>;

const WORKGROUP: u32 = 256u;
var<workgroup> maxima: array<f32, 256>;

// Values of this workgroup's channel in its image group: the flat index j counts them
// image by image.
fn value_count(group: u32) -> u32 {
    let first_image = group * params.images_per_group;
    let end = min(first_image + params.images_per_group, run_info[0]);
    return select(0u, (end - first_image) * params.plane, end > first_image);
}

fn value_at(group: u32, channel: u32, j: u32) -> f32 {
    let image = group * params.images_per_group + j / params.plane;
    return activation[(image * params.channels + channel) * params.plane + j % params.plane];
}

@compute @workgroup_size(256)
fn channel_max(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) local: u32) {
    let values = value_count(wg.x);
    var largest = 0.0;
    for (var j = local; j < values; j += WORKGROUP) {
        let value = value_at(wg.x, wg.y, j);
        // `>` skips NaN, as the reference's f32::max does.
        if value > largest {
            largest = value;
        }
    }
    maxima[local] = largest;
    workgroupBarrier();
    for (var width = WORKGROUP / 2u; width > 0u; width >>= 1u) {
        if local < width {
            maxima[local] = max(maxima[local], maxima[local + width]);
        }
        workgroupBarrier();
    }
    if local == 0u && maxima[0] > 0.0 {
        atomicMax(&stats[wg.y], bitcast<u32>(maxima[0]));
    }
}

// `min(trunc(value / range * bins), bins - 1)` in f32, in that order (Histogram::bin_of);
// a value at or above the range (or an infinite quotient) lands in the last bin.
fn bin_of(value: f32, range: f32) -> u32 {
    let scaled = value / range * f32(params.bins);
    return select(params.bins - 1u, u32(scaled), scaled < f32(params.bins - 1u));
}

// Counts each positive value once in the layer row and once in its channel's row.
// Global atomics directly: a privatized workgroup histogram would need `bins` (4096 by
// default, a run-time choice) words of workgroup memory per row, and clearing and flushing
// them costs more than the ~1024 values a workgroup sees.
@compute @workgroup_size(256)
fn histogram(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) local: u32) {
    let values = value_count(wg.x);
    let layer_range = ranges[0];
    let channel_range = ranges[1u + wg.y];
    let channel_row = params.bins * (1u + wg.y);
    for (var j = local; j < values; j += WORKGROUP) {
        let value = value_at(wg.x, wg.y, j);
        if value > 0.0 {
            atomicAdd(&stats[bin_of(value, layer_range)], 1u);
            atomicAdd(&stats[channel_row + bin_of(value, channel_range)], 1u);
        }
    }
}
