// Direct 2-D convolution over a batch of NCHW f32 activations, with a fused epilogue:
//   y = ((sum + bias[oc]) * scale[oc] + shift[oc]) (+ residual) (then ReLU)
// which covers conv -> BatchNorm -> add -> ReLU in one pass (scale = 1, shift = 0 when the
// conv has no BatchNorm behind it, which leaves the sum bit-exact).
//
// Work split, chosen for software rasterizers (llvmpipe runs each invocation as one lane
// of an 8-wide SIMD vector) as much as for GPUs:
//   * workgroup_id.y picks a block of 8 output channels, the same for every invocation of
//     the workgroup, so all lanes read the same weights;
//   * invocations of a workgroup take different output pixels, so each input value loaded
//     feeds 8 output channels (register blocking over channels);
//   * workgroup_id.x (+ .z, to stay under 65535 workgroups per dimension) walks the pixels.
//
// Weights are repacked on the host to [channel block][in channel][ky][kx][8 channels]
// (zero-padded to a multiple of 8 output channels), so the 8 weights one input value meets
// are two consecutive vec4s.

struct ConvParams {
    batch: u32,
    in_channels: u32,
    in_height: u32,
    in_width: u32,
    out_channels: u32,
    out_height: u32,
    out_width: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
    // bit 0: add `residual`; bit 1: apply ReLU.
    flags: u32,
    // conv3x3_s1 only: 4-pixel tiles per output row.
    tiles_per_row: u32,
    // Work items of this dispatch: output pixels (conv2d) or pixel tiles (conv3x3_s1).
    items: u32,
    // Output channels rounded up to a multiple of 8: the stride of the epilogue arrays.
    padded_channels: u32,
    // Channel block of workgroup_id.y == 0: a layer whose weights exceed one 64 KiB
    // uniform window runs as several dispatches, each binding the window of its blocks.
    first_block: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
// Binding 2, `weight`, is declared by the header this file is compiled behind:
// conv_weights_uniform.wgsl (a 64 KiB uniform window, the fast path) or
// conv_weights_storage.wgsl (a storage buffer, for blocks larger than 64 KiB).
// [bias | scale | shift], each `padded_channels` long.
@group(0) @binding(3) var<storage, read> epilogue: array<f32>;
// Same shape as the output; a 1-value placeholder when flags bit 0 is clear.
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;

const WORKGROUP: u32 = 64u;
const FLAG_RESIDUAL: u32 = 1u;
const FLAG_RELU: u32 = 2u;

fn item_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return (wg.x + wg.z * groups.x) * WORKGROUP + local;
}

// Applies the epilogue to output channel `oc` and stores it at `index`.
fn finish(oc: u32, sum: f32, index: u32) {
    let stride = params.padded_channels;
    var value = (sum + epilogue[oc]) * epilogue[stride + oc] + epilogue[2u * stride + oc];
    if (params.flags & FLAG_RESIDUAL) != 0u {
        value += residual[index];
    }
    if (params.flags & FLAG_RELU) != 0u {
        value = max(value, 0.0);
    }
    output[index] = value;
}

// Stores 8 channels (two vec4s) of one output pixel; channels past out_channels are the
// zero padding of the last block and are dropped.
fn store_block(first_oc: u32, low: vec4<f32>, high: vec4<f32>, pixel_index: u32) {
    let plane = params.out_height * params.out_width;
    for (var j = 0u; j < 4u; j++) {
        let oc = first_oc + j;
        if oc < params.out_channels {
            finish(oc, low[j], pixel_index + oc * plane);
        }
        let oc_high = first_oc + 4u + j;
        if oc_high < params.out_channels {
            finish(oc_high, high[j], pixel_index + oc_high * plane);
        }
    }
}

// Any kernel size, stride and padding: one output pixel x 8 output channels per invocation.
@compute @workgroup_size(64)
fn conv2d(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let pixel = item_index(wg, groups, local);
    // No barriers below, so lanes past the end may leave early.
    if pixel >= params.items {
        return;
    }
    let ox = pixel % params.out_width;
    let row = pixel / params.out_width;
    let oy = row % params.out_height;
    let n = row / params.out_height;

    let k = params.kernel;
    let in_plane = params.in_height * params.in_width;
    let iy0 = i32(oy * params.stride) - i32(params.padding);
    let ix0 = i32(ox * params.stride) - i32(params.padding);
    var plane_base = n * params.in_channels * in_plane;
    // Weights are indexed within the bound window, channels globally.
    var w = wg.y * params.in_channels * k * k * 2u;
    var low = vec4<f32>(0.0);
    var high = vec4<f32>(0.0);
    for (var ic = 0u; ic < params.in_channels; ic++) {
        for (var ky = 0u; ky < k; ky++) {
            let iy = iy0 + i32(ky);
            let row_inside = iy >= 0 && iy < i32(params.in_height);
            for (var kx = 0u; kx < k; kx++) {
                let ix = ix0 + i32(kx);
                let inside = row_inside && ix >= 0 && ix < i32(params.in_width);
                // Read a valid address either way and zero the padding afterwards: no
                // divergent branch around the load.
                let offset = select(0u, u32(iy) * params.in_width + u32(ix), inside);
                let x = select(0.0, input[plane_base + offset], inside);
                low += weight[w] * x;
                high += weight[w + 1u] * x;
                w += 2u;
            }
        }
        plane_base += in_plane;
    }
    let out_plane = params.out_height * params.out_width;
    let first_oc = (params.first_block + wg.y) * 8u;
    store_block(first_oc, low, high, n * params.out_channels * out_plane + oy * params.out_width + ox);
}

// Column offsets (clamped into the row) and 0/1 masks for the 6 input columns that a tile
// of 4 output pixels reads through a 3-wide kernel at stride 1.
struct Columns {
    offset_a: vec3<u32>,
    offset_b: vec3<u32>,
    mask_a: vec3<f32>,
    mask_b: vec3<f32>,
}

// Accumulator of one tile: pixel p holds channels 0-3 in acc[2p] and 4-7 in acc[2p + 1].
alias Tile = array<vec4<f32>, 8>;

// One kernel row (3 taps) against one input row for the 4 pixels of a tile.
// Written out by hand: constant indices keep the accumulators in registers.
fn accumulate_row(acc: ptr<function, Tile>, row: u32, row_mask: f32, cols: Columns, w: u32) {
    let x0 = input[row + cols.offset_a.x] * (cols.mask_a.x * row_mask);
    let x1 = input[row + cols.offset_a.y] * (cols.mask_a.y * row_mask);
    let x2 = input[row + cols.offset_a.z] * (cols.mask_a.z * row_mask);
    let x3 = input[row + cols.offset_b.x] * (cols.mask_b.x * row_mask);
    let x4 = input[row + cols.offset_b.y] * (cols.mask_b.y * row_mask);
    let x5 = input[row + cols.offset_b.z] * (cols.mask_b.z * row_mask);

    // kx = 0: pixels 0..3 read columns 0..3.
    var lo = weight[w];
    var hi = weight[w + 1u];
    (*acc)[0] += lo * x0; (*acc)[1] += hi * x0;
    (*acc)[2] += lo * x1; (*acc)[3] += hi * x1;
    (*acc)[4] += lo * x2; (*acc)[5] += hi * x2;
    (*acc)[6] += lo * x3; (*acc)[7] += hi * x3;
    // kx = 1: columns 1..4.
    lo = weight[w + 2u];
    hi = weight[w + 3u];
    (*acc)[0] += lo * x1; (*acc)[1] += hi * x1;
    (*acc)[2] += lo * x2; (*acc)[3] += hi * x2;
    (*acc)[4] += lo * x3; (*acc)[5] += hi * x3;
    (*acc)[6] += lo * x4; (*acc)[7] += hi * x4;
    // kx = 2: columns 2..5.
    lo = weight[w + 4u];
    hi = weight[w + 5u];
    (*acc)[0] += lo * x2; (*acc)[1] += hi * x2;
    (*acc)[2] += lo * x3; (*acc)[3] += hi * x3;
    (*acc)[4] += lo * x4; (*acc)[5] += hi * x4;
    (*acc)[6] += lo * x5; (*acc)[7] += hi * x5;
}

fn column(ix: i32) -> u32 {
    return u32(clamp(ix, 0, i32(params.in_width) - 1));
}

fn inside(i: i32, size: u32) -> f32 {
    return select(0.0, 1.0, i >= 0 && i < i32(size));
}

// 3x3 kernel, stride 1, any padding: a tile of 4 horizontally adjacent output pixels x 8
// output channels per invocation, so 6 input loads per kernel row feed 96 FMAs. Padding
// is handled by clamped addresses times 0/1 masks computed once, outside the channel loop.
@compute @workgroup_size(64)
fn conv3x3_s1(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let tile = item_index(wg, groups, local);
    if tile >= params.items {
        return;
    }
    let tx = tile % params.tiles_per_row;
    let row = tile / params.tiles_per_row;
    let oy = row % params.out_height;
    let n = row / params.out_height;
    let ox0 = tx * 4u;

    let ix0 = i32(ox0) - i32(params.padding);
    var cols: Columns;
    cols.offset_a = vec3<u32>(column(ix0), column(ix0 + 1), column(ix0 + 2));
    cols.offset_b = vec3<u32>(column(ix0 + 3), column(ix0 + 4), column(ix0 + 5));
    let w_in = params.in_width;
    cols.mask_a = vec3<f32>(inside(ix0, w_in), inside(ix0 + 1, w_in), inside(ix0 + 2, w_in));
    cols.mask_b = vec3<f32>(inside(ix0 + 3, w_in), inside(ix0 + 4, w_in), inside(ix0 + 5, w_in));

    let iy0 = i32(oy) - i32(params.padding);
    let last_row = i32(params.in_height) - 1;
    let row0 = u32(clamp(iy0, 0, last_row)) * w_in;
    let row1 = u32(clamp(iy0 + 1, 0, last_row)) * w_in;
    let row2 = u32(clamp(iy0 + 2, 0, last_row)) * w_in;
    let mask0 = inside(iy0, params.in_height);
    let mask1 = inside(iy0 + 1, params.in_height);
    let mask2 = inside(iy0 + 2, params.in_height);

    let in_plane = params.in_height * w_in;
    var plane_base = n * params.in_channels * in_plane;
    // 18 vec4s (9 taps x 8 channels) per input channel.
    var w = wg.y * params.in_channels * 18u;
    var acc: Tile;
    for (var ic = 0u; ic < params.in_channels; ic++) {
        accumulate_row(&acc, plane_base + row0, mask0, cols, w);
        accumulate_row(&acc, plane_base + row1, mask1, cols, w + 6u);
        accumulate_row(&acc, plane_base + row2, mask2, cols, w + 12u);
        plane_base += in_plane;
        w += 18u;
    }

    let out_plane = params.out_height * params.out_width;
    let first_oc = (params.first_block + wg.y) * 8u;
    let pixel_index = n * params.out_channels * out_plane + oy * params.out_width + ox0;
    // The last tile of a row may hang over its end.
    store_block(first_oc, acc[0], acc[1], pixel_index);
    if ox0 + 1u < params.out_width {
        store_block(first_oc, acc[2], acc[3], pixel_index + 1u);
    }
    if ox0 + 2u < params.out_width {
        store_block(first_oc, acc[4], acc[5], pixel_index + 2u);
    }
    if ox0 + 3u < params.out_width {
        store_block(first_oc, acc[6], acc[7], pixel_index + 3u);
    }
}
