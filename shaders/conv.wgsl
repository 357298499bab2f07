// Direct 2-D convolution over a batch of NCHW f32 activations, with a fused epilogue:
//   y = ((sum + bias[oc]) * scale[oc] + shift[oc]) (+ residual) (then ReLU)
// which covers conv -> BatchNorm -> add -> ReLU in one pass (scale = 1, shift = 0 when the
// conv has no BatchNorm behind it, which leaves the sum bit-exact).
//
// Work split, chosen for software rasterizers (llvmpipe runs each invocation as one lane
// of an 8-wide SIMD vector) as much as for GPUs:
//   * workgroup_id.y picks a block of 8 output channels, the same for every invocation of
//     the workgroup, so all lanes read the same weights (one scalar load, broadcast);
//   * invocations of a workgroup take different output pixels, so each input value loaded
//     feeds 8 output channels (register blocking over channels);
//   * workgroup_id.x (+ .z, to stay under 65535 workgroups per dimension) walks the pixels.
//
// Weights are repacked on the host to [channel block][in channel][ky][kx][8 channels]
// (zero-padded to a multiple of 8 output channels), so the 8 weights one input value meets
// are two consecutive vec4s; each block ends with its epilogue, 6 vec4s:
// [bias 0-3, bias 4-7, scale 0-3, scale 4-7, shift 0-3, shift 4-7].
//
// Two headers are prepended (see kernels.rs): one declares `weight` (binding 2: a 64 KiB
// uniform window, or a storage buffer for blocks over 64 KiB), one declares the input
// (binding 1) and `load_input` (a storage buffer, or a 64 KiB uniform window of images).

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
    // conv3x3_s1 / conv3x3_s2: 4-pixel tiles per output row.
    tiles_per_row: u32,
    // Work items of this dispatch: output pixels (conv2d) or pixel tiles (conv3x3_*).
    items: u32,
    // Index (in floats) of this dispatch's first image within the bound input: 0 for a
    // storage input, its place in the window for a uniform window.
    input_offset: u32,
    // Channel block of workgroup_id.y == 0: a layer whose weights exceed one 64 KiB
    // uniform window runs as several dispatches, each binding the window of its blocks.
    first_block: u32,
    // Image of the batch that this dispatch's image 0 is (a dispatch per input window).
    first_image: u32,
}

@group(0) @binding(0) var<uniform> params: ConvParams;
// Same shape as the output; a 1-value placeholder when flags bit 0 is clear.
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

const WORKGROUP: u32 = 64u;
const FLAG_RESIDUAL: u32 = 1u;
const FLAG_RELU: u32 = 2u;

fn item_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return (wg.x + wg.z * groups.x) * WORKGROUP + local;
}

// vec4s of one 8-channel block: the weights, then the epilogue.
fn block_length() -> u32 {
    return params.in_channels * params.kernel * params.kernel * 2u + 6u;
}

// The 8 accumulators of one output pixel, channels 0-3 and 4-7.
struct Pixel {
    low: vec4<f32>,
    high: vec4<f32>,
}

// Bias, scale and shift of one block, read once per invocation (uniform loads when the
// weights are a uniform window).
struct Epilogue {
    bias_low: vec4<f32>,
    bias_high: vec4<f32>,
    scale_low: vec4<f32>,
    scale_high: vec4<f32>,
    shift_low: vec4<f32>,
    shift_high: vec4<f32>,
}

fn load_epilogue(block_start: u32) -> Epilogue {
    let e = block_start + params.in_channels * params.kernel * params.kernel * 2u;
    return Epilogue(weight[e], weight[e + 1u], weight[e + 2u], weight[e + 3u], weight[e + 4u], weight[e + 5u]);
}

// Stores 8 channels of one output pixel through the epilogue; channels past out_channels
// are the zero padding of the last block and are dropped. `n` counts images within the
// dispatch.
fn store_pixel(first_oc: u32, e: Epilogue, sum: Pixel, n: u32, oy: u32, ox: u32) {
    let low = (sum.low + e.bias_low) * e.scale_low + e.shift_low;
    let high = (sum.high + e.bias_high) * e.scale_high + e.shift_high;
    let plane = params.out_height * params.out_width;
    let pixel_index = (params.first_image + n) * params.out_channels * plane + oy * params.out_width + ox;
    for (var j = 0u; j < 8u; j++) {
        let oc = first_oc + j;
        if oc < params.out_channels {
            let index = pixel_index + oc * plane;
            var value = select(high[j & 3u], low[j & 3u], j < 4u);
            if (params.flags & FLAG_RESIDUAL) != 0u {
                value += residual[index];
            }
            if (params.flags & FLAG_RELU) != 0u {
                value = max(value, 0.0);
            }
            output[index] = value;
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
    var plane_base = params.input_offset + n * params.in_channels * in_plane;
    // Weights are indexed within the bound window, channels globally.
    let block_start = wg.y * block_length();
    var w = block_start;
    var sum = Pixel(vec4<f32>(0.0), vec4<f32>(0.0));
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
                let x = select(0.0, load_input(plane_base + offset), inside);
                sum.low += weight[w] * x;
                sum.high += weight[w + 1u] * x;
                w += 2u;
            }
        }
        plane_base += in_plane;
    }
    let first_oc = (params.first_block + wg.y) * 8u;
    store_pixel(first_oc, load_epilogue(block_start), sum, n, oy, ox);
}

// Accumulator of one tile: pixel p holds channels 0-3 in acc[2p] and 4-7 in acc[2p + 1].
alias Tile = array<vec4<f32>, 8>;

// Adds the products of one kernel tap's 8 weights (`lo`, `hi`) with the inputs of the 4
// pixels of a tile. Constant indices keep the accumulators in registers.
fn tap(acc: ptr<function, Tile>, lo: vec4<f32>, hi: vec4<f32>, x0: f32, x1: f32, x2: f32, x3: f32) {
    (*acc)[0] += lo * x0; (*acc)[1] += hi * x0;
    (*acc)[2] += lo * x1; (*acc)[3] += hi * x1;
    (*acc)[4] += lo * x2; (*acc)[5] += hi * x2;
    (*acc)[6] += lo * x3; (*acc)[7] += hi * x3;
}

// Clamped input column offsets and 0/1 padding masks of the up to 9 columns a tile reads.
struct Columns {
    offset: array<u32, 9>,
    mask: array<f32, 9>,
}

fn column(ix: i32) -> u32 {
    return u32(clamp(ix, 0, i32(params.in_width) - 1));
}

fn inside(ix: i32) -> f32 {
    return select(0.0, 1.0, ix >= 0 && ix < i32(params.in_width));
}

// Written out rather than looped: constant indices keep the arrays in registers.
fn tile_columns(ix0: i32) -> Columns {
    return Columns(
        array<u32, 9>(column(ix0), column(ix0 + 1), column(ix0 + 2), column(ix0 + 3), column(ix0 + 4),
                      column(ix0 + 5), column(ix0 + 6), column(ix0 + 7), column(ix0 + 8)),
        array<f32, 9>(inside(ix0), inside(ix0 + 1), inside(ix0 + 2), inside(ix0 + 3), inside(ix0 + 4),
                      inside(ix0 + 5), inside(ix0 + 6), inside(ix0 + 7), inside(ix0 + 8)),
    );
}

// Clamped offsets and masks of the 3 input rows of one output row.
struct Rows {
    offset: vec3<u32>,
    mask: vec3<f32>,
}

fn tile_rows(iy0: i32) -> Rows {
    let last = i32(params.in_height) - 1;
    let iy = vec3<i32>(iy0, iy0 + 1, iy0 + 2);
    let w = params.in_width;
    return Rows(vec3<u32>(clamp(iy, vec3<i32>(0), vec3<i32>(last))) * w,
                select(vec3<f32>(0.0), vec3<f32>(1.0), iy >= vec3<i32>(0) & iy <= vec3<i32>(last)));
}

// One kernel row (3 taps) against one input row, 4 pixels at stride 1: columns 0..5.
fn row_s1(acc: ptr<function, Tile>, row: u32, row_mask: f32, cols: Columns, w: u32) {
    let x0 = load_input(row + cols.offset[0]) * (cols.mask[0] * row_mask);
    let x1 = load_input(row + cols.offset[1]) * (cols.mask[1] * row_mask);
    let x2 = load_input(row + cols.offset[2]) * (cols.mask[2] * row_mask);
    let x3 = load_input(row + cols.offset[3]) * (cols.mask[3] * row_mask);
    let x4 = load_input(row + cols.offset[4]) * (cols.mask[4] * row_mask);
    let x5 = load_input(row + cols.offset[5]) * (cols.mask[5] * row_mask);
    tap(acc, weight[w], weight[w + 1u], x0, x1, x2, x3);
    tap(acc, weight[w + 2u], weight[w + 3u], x1, x2, x3, x4);
    tap(acc, weight[w + 4u], weight[w + 5u], x2, x3, x4, x5);
}

// One kernel row against one input row, 4 pixels at stride 2: columns 0..8.
fn row_s2(acc: ptr<function, Tile>, row: u32, row_mask: f32, cols: Columns, w: u32) {
    let x0 = load_input(row + cols.offset[0]) * (cols.mask[0] * row_mask);
    let x1 = load_input(row + cols.offset[1]) * (cols.mask[1] * row_mask);
    let x2 = load_input(row + cols.offset[2]) * (cols.mask[2] * row_mask);
    let x3 = load_input(row + cols.offset[3]) * (cols.mask[3] * row_mask);
    let x4 = load_input(row + cols.offset[4]) * (cols.mask[4] * row_mask);
    let x5 = load_input(row + cols.offset[5]) * (cols.mask[5] * row_mask);
    let x6 = load_input(row + cols.offset[6]) * (cols.mask[6] * row_mask);
    let x7 = load_input(row + cols.offset[7]) * (cols.mask[7] * row_mask);
    let x8 = load_input(row + cols.offset[8]) * (cols.mask[8] * row_mask);
    tap(acc, weight[w], weight[w + 1u], x0, x2, x4, x6);
    tap(acc, weight[w + 2u], weight[w + 3u], x1, x3, x5, x7);
    tap(acc, weight[w + 4u], weight[w + 5u], x2, x4, x6, x8);
}

// Where a tile sits: image within the dispatch, output row, first output column.
struct TilePlace {
    n: u32,
    oy: u32,
    ox0: u32,
}

fn tile_place(tile: u32) -> TilePlace {
    let row = tile / params.tiles_per_row;
    return TilePlace(row / params.out_height, row % params.out_height, (tile % params.tiles_per_row) * 4u);
}

// Stores the 4 pixels of a tile; the last tile of a row may hang over its end.
fn store_tile(block: u32, acc: Tile, place: TilePlace) {
    let first_oc = (params.first_block + block) * 8u;
    let e = load_epilogue(block * block_length());
    store_pixel(first_oc, e, Pixel(acc[0], acc[1]), place.n, place.oy, place.ox0);
    if place.ox0 + 1u < params.out_width {
        store_pixel(first_oc, e, Pixel(acc[2], acc[3]), place.n, place.oy, place.ox0 + 1u);
    }
    if place.ox0 + 2u < params.out_width {
        store_pixel(first_oc, e, Pixel(acc[4], acc[5]), place.n, place.oy, place.ox0 + 2u);
    }
    if place.ox0 + 3u < params.out_width {
        store_pixel(first_oc, e, Pixel(acc[6], acc[7]), place.n, place.oy, place.ox0 + 3u);
    }
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
    let place = tile_place(tile);
    let cols = tile_columns(i32(place.ox0) - i32(params.padding));
    let rows = tile_rows(i32(place.oy) - i32(params.padding));
    let in_plane = params.in_height * params.in_width;
    var plane_base = params.input_offset + place.n * params.in_channels * in_plane;
    // 18 vec4s (9 taps x 8 channels) per input channel.
    var w = wg.y * block_length();
    var acc: Tile;
    for (var ic = 0u; ic < params.in_channels; ic++) {
        row_s1(&acc, plane_base + rows.offset.x, rows.mask.x, cols, w);
        row_s1(&acc, plane_base + rows.offset.y, rows.mask.y, cols, w + 6u);
        row_s1(&acc, plane_base + rows.offset.z, rows.mask.z, cols, w + 12u);
        plane_base += in_plane;
        w += 18u;
    }
    store_tile(wg.y, acc, place);
}

// 3x3 kernel, stride 2 (the downsampling convs): 4 adjacent output pixels x 8 channels
// per invocation, 9 input loads per kernel row feeding 96 FMAs.
@compute @workgroup_size(64)
fn conv3x3_s2(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let tile = item_index(wg, groups, local);
    if tile >= params.items {
        return;
    }
    let place = tile_place(tile);
    let cols = tile_columns(i32(place.ox0 * 2u) - i32(params.padding));
    let rows = tile_rows(i32(place.oy * 2u) - i32(params.padding));
    let in_plane = params.in_height * params.in_width;
    var plane_base = params.input_offset + place.n * params.in_channels * in_plane;
    var w = wg.y * block_length();
    var acc: Tile;
    for (var ic = 0u; ic < params.in_channels; ic++) {
        row_s2(&acc, plane_base + rows.offset.x, rows.mask.x, cols, w);
        row_s2(&acc, plane_base + rows.offset.y, rows.mask.y, cols, w + 6u);
        row_s2(&acc, plane_base + rows.offset.z, rows.mask.z, cols, w + 12u);
        plane_base += in_plane;
        w += 18u;
    }
    store_tile(wg.y, acc, place);
}
