// Direct 2-D convolution over a batch of NCHW f32 activations, with a fused epilogue:
//   y = ((bias[oc] + sum) * scale[oc] + shift[oc]) (+ residual) (then ReLU)
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
// Weights are repacked on the host to [channel block][ky][kx][in channel][8 channels]
// (zero-padded to a multiple of 8 output channels), so the 8 weights one input value meets
// are two consecutive vec4s; each block ends with its epilogue, 6 vec4s:
// [bias 0-3, bias 4-7, scale 0-3, scale 4-7, shift 0-3, shift 4-7].
//
// Every output is summed in one canonical order, the CPU backend's and the reference's
// (src/cpu/conv.rs): starting from the bias, taps in (ky, kx) order, input channels
// innermost, each term one `fma` (which the driver may or may not fuse: over spikes the
// products are exact, so it makes no difference; see `spikes`); the epilogue is
// fma(sum, scale, shift), then the residual. ARCHITECTURE.md, "One arithmetic on every
// backend", says what is bit-identical across backends.
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
    // bit 0: add `residual`; bit 1: apply ReLU; bit 2: the input is spikes (see `spikes`).
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
const FLAG_SPIKES: u32 = 4u;

// A conv over spikes reads each input as 0, 1 or -1 (a signed neuron's negative spike),
// and its weights come packed already multiplied by the threshold of their input
// channel (the spike's magnitude): every
// product is then exact, so the sums are the same whether or not a driver fuses the
// multiply-adds (lavapipe does not, GPUs do), and equal the CPU backend's bit for bit.
// Over other inputs (images, the ANN), a driver that does not fuse rounds each product
// once more than the CPU backend does.
fn spikes(x: vec4<f32>) -> vec4<f32> {
    return select(x, sign(x), (params.flags & FLAG_SPIKES) != 0u);
}

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
// `sum` already holds the bias (the sums start from it).
fn store_pixel(first_oc: u32, e: Epilogue, sum: Pixel, n: u32, oy: u32, ox: u32) {
    let low = fma(sum.low, e.scale_low, e.shift_low);
    let high = fma(sum.high, e.scale_high, e.shift_high);
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
    let image_base = params.input_offset + n * params.in_channels * in_plane;
    // Weights are indexed within the bound window, channels globally.
    let block_start = wg.y * block_length();
    let e = load_epilogue(block_start);
    var w = block_start;
    var sum = Pixel(e.bias_low, e.bias_high);
    for (var ky = 0u; ky < k; ky++) {
        let iy = iy0 + i32(ky);
        let row_inside = iy >= 0 && iy < i32(params.in_height);
        for (var kx = 0u; kx < k; kx++) {
            let ix = ix0 + i32(kx);
            let inside = row_inside && ix >= 0 && ix < i32(params.in_width);
            // Read a valid address either way and zero the padding afterwards: no
            // divergent branch around the load.
            var input_index = image_base + select(0u, u32(iy) * params.in_width + u32(ix), inside);
            for (var ic = 0u; ic < params.in_channels; ic++) {
                let x = spikes(vec4<f32>(select(0.0, load_input(input_index), inside)));
                sum.low = fma(weight[w], x, sum.low);
                sum.high = fma(weight[w + 1u], x, sum.high);
                w += 2u;
                input_index += in_plane;
            }
        }
    }
    let first_oc = (params.first_block + wg.y) * 8u;
    store_pixel(first_oc, e, sum, n, oy, ox);
}

// Accumulator of one tile: pixel p holds channels 0-3 in acc[2p] and 4-7 in acc[2p + 1].
alias Tile = array<vec4<f32>, 8>;

// Adds the products of one kernel tap's 8 weights (`lo`, `hi`) with the inputs of the 4
// pixels of a tile. Constant indices keep the accumulators in registers.
fn tap(acc: ptr<function, Tile>, lo: vec4<f32>, hi: vec4<f32>, x: vec4<f32>) {
    (*acc)[0] = fma(lo, vec4<f32>(x.x), (*acc)[0]); (*acc)[1] = fma(hi, vec4<f32>(x.x), (*acc)[1]);
    (*acc)[2] = fma(lo, vec4<f32>(x.y), (*acc)[2]); (*acc)[3] = fma(hi, vec4<f32>(x.y), (*acc)[3]);
    (*acc)[4] = fma(lo, vec4<f32>(x.z), (*acc)[4]); (*acc)[5] = fma(hi, vec4<f32>(x.z), (*acc)[5]);
    (*acc)[6] = fma(lo, vec4<f32>(x.w), (*acc)[6]); (*acc)[7] = fma(hi, vec4<f32>(x.w), (*acc)[7]);
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

// One kernel tap over every input channel, for the 4 pixels of a tile: `offsets` are their
// input positions within a plane (clamped), `masks` zero those in the padding. `w` is the
// tap's first weight pair.
fn tap_channels(acc: ptr<function, Tile>, image_base: u32, offsets: vec4<u32>, masks: vec4<f32>, w0: u32) {
    let in_plane = params.in_height * params.in_width;
    var plane = image_base;
    var w = w0;
    for (var ic = 0u; ic < params.in_channels; ic++) {
        let x = spikes(vec4<f32>(load_input(plane + offsets.x), load_input(plane + offsets.y),
                                 load_input(plane + offsets.z), load_input(plane + offsets.w)) * masks);
        tap(acc, weight[w], weight[w + 1u], x);
        plane += in_plane;
        w += 2u;
    }
}

// The 9 taps of a 3x3 kernel in (ky, kx) order, over every input channel, for a tile
// whose first pixel reads input column ix0 and whose pixels lie `stride` columns apart.
// Column offsets are clamped into the row and masked to 0 outside it, once per tap.
fn taps_3x3(acc: ptr<function, Tile>, image_base: u32, rows: Rows, ix0: i32, stride: u32, block_start: u32) {
    let tap_len = params.in_channels * 2u;
    let pixels = vec4<i32>(0, 1, 2, 3) * i32(stride);
    let last = i32(params.in_width) - 1;
    var w = block_start;
    for (var ky = 0u; ky < 3u; ky++) {
        for (var kx = 0; kx < 3; kx++) {
            let ix = pixels + vec4<i32>(ix0 + kx);
            let offsets = rows.offset[ky] + vec4<u32>(clamp(ix, vec4<i32>(0), vec4<i32>(last)));
            let masks = rows.mask[ky] * select(vec4<f32>(0.0), vec4<f32>(1.0), ix >= vec4<i32>(0) & ix <= vec4<i32>(last));
            tap_channels(acc, image_base, offsets, masks, w);
            w += tap_len;
        }
    }
}

// A tile's accumulators set to its block's bias.
fn bias_tile(block_start: u32) -> Tile {
    let e = load_epilogue(block_start);
    return Tile(e.bias_low, e.bias_high, e.bias_low, e.bias_high, e.bias_low, e.bias_high, e.bias_low, e.bias_high);
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
// output channels per invocation, so 4 input loads feed 32 FMAs. Padding is handled by
// clamped addresses times 0/1 masks computed once per tap, outside the channel loop.
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
    let rows = tile_rows(i32(place.oy) - i32(params.padding));
    let image_base = params.input_offset + place.n * params.in_channels * params.in_height * params.in_width;
    let block_start = wg.y * block_length();
    var acc = bias_tile(block_start);
    taps_3x3(&acc, image_base, rows, i32(place.ox0) - i32(params.padding), 1u, block_start);
    store_tile(wg.y, acc, place);
}

// 3x3 kernel, stride 2 (the downsampling convs): 4 output pixels x 8 channels per
// invocation, as conv3x3_s1.
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
    let rows = tile_rows(i32(place.oy * 2u) - i32(params.padding));
    let image_base = params.input_offset + place.n * params.in_channels * params.in_height * params.in_width;
    let block_start = wg.y * block_length();
    var acc = bias_tile(block_start);
    taps_3x3(&acc, image_base, rows, i32(place.ox0 * 2u) - i32(params.padding), 2u, block_start);
    store_tile(wg.y, acc, place);
}
