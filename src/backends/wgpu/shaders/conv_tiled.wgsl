// Convolution as an implicit GEMM with workgroup-shared tiles, for GPUs (appended to the
// storage-weight conv family: conv_weights_storage.wgsl + conv_input_storage.wgsl +
// conv.wgsl, whose parameters, bindings and packed weights it shares).
//
//   out[m][n] = sum_k A[m][k] * B[k][n],  m: output channel, n: (image, output pixel),
//   k: (ky, kx, input channel); A = the packed weights, B = the input gathered on the fly.
//
// Each output starts from its bias and adds its K terms in ascending k with `fma`, the
// canonical order of conv.wgsl and the CPU backend (over spikes, bit for bit).
//
// A workgroup of 16 x 16 invocations computes a 64 x 64 tile of `out` (64 output channels
// x 64 output pixels of the batch, which for the layer-major SNN runs over T x images
// "images"); each invocation a 4 x 4 micro-tile held in registers. K advances 16 at a
// time: the workgroup stages a 64 x 16 slice of A and a 16 x 64 slice of B in shared
// memory (each invocation loads 4 + 4 values), then every invocation does 16 x 16
// multiply-adds from it. The epilogue of conv.wgsl follows (scale, shift, residual, ReLU). workgroup_id.y picks the 64-channel tile, x (+ z past 65535) the 64-pixel tile.

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;

var<workgroup> tile_a: array<f32, 1024>; // [k][m], TILE_K x TILE_M
var<workgroup> tile_b: array<f32, 1024>; // [k][n], TILE_K x TILE_N

// A[m][k] from the packed layout [block of 8][ky][kx][in channel][8 lanes] (+ epilogue).
fn weight_at(m: u32, k: u32) -> f32 {
    let block_floats = params.in_channels * params.kernel * params.kernel * 8u + 24u;
    let index = (m / 8u) * block_floats + k * 8u + (m % 8u);
    return weight[index / 4u][index % 4u];
}

// B[k][n]: the input value under tap k of output pixel n (0 in the padding).
fn input_at(k: u32, n: u32) -> f32 {
    let ic = k % params.in_channels;
    let tap = k / params.in_channels;
    let out_plane = params.out_height * params.out_width;
    let image = n / out_plane;
    let pixel = n % out_plane;
    let iy = i32((pixel / params.out_width) * params.stride + tap / params.kernel) - i32(params.padding);
    let ix = i32((pixel % params.out_width) * params.stride + tap % params.kernel) - i32(params.padding);
    if iy < 0 || ix < 0 || iy >= i32(params.in_height) || ix >= i32(params.in_width) {
        return 0.0;
    }
    return spikes(vec4<f32>(input[((image * params.in_channels + ic) * params.in_height + u32(iy)) * params.in_width + u32(ix)])).x;
}

@compute @workgroup_size(16, 16)
fn conv_tiled(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let depth = params.in_channels * params.kernel * params.kernel;
    let columns = params.batch * params.out_height * params.out_width;
    let tile = wg.x + wg.z * groups.x;
    // Padding workgroups of the last z row still take part in the barriers.
    let live = tile < params.items;
    let m0 = wg.y * TILE_M;
    let n0 = tile * TILE_N;
    let block_floats = depth * 8u + 24u;
    // acc[i][j]: channel m0 + 4 ty + i, pixel n0 + 4 tx + j; it starts from the bias.
    var acc: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + lid.y * 4u + i;
        if live && m < params.out_channels {
            let bias = (m / 8u) * block_floats + depth * 8u + (m % 8u);
            acc[i] = vec4<f32>(weight[bias / 4u][bias % 4u]);
        }
    }
    for (var k0 = 0u; k0 < depth; k0 += TILE_K) {
        for (var r = 0u; r < 4u; r++) {
            let slot = local + r * 256u;
            let kk = slot / TILE_M;
            let m = m0 + slot % TILE_M;
            let n = n0 + slot % TILE_N;
            let k = k0 + kk;
            var a = 0.0;
            var b = 0.0;
            if live && k < depth {
                if m < params.out_channels {
                    a = weight_at(m, k);
                }
                if n < columns {
                    b = input_at(k, n);
                }
            }
            tile_a[slot] = a;
            tile_b[slot] = b;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let a = vec4<f32>(
                tile_a[kk * TILE_M + lid.y * 4u],
                tile_a[kk * TILE_M + lid.y * 4u + 1u],
                tile_a[kk * TILE_M + lid.y * 4u + 2u],
                tile_a[kk * TILE_M + lid.y * 4u + 3u],
            );
            let b = vec4<f32>(
                tile_b[kk * TILE_N + lid.x * 4u],
                tile_b[kk * TILE_N + lid.x * 4u + 1u],
                tile_b[kk * TILE_N + lid.x * 4u + 2u],
                tile_b[kk * TILE_N + lid.x * 4u + 3u],
            );
            acc[0] = fma(vec4<f32>(a.x), b, acc[0]);
            acc[1] = fma(vec4<f32>(a.y), b, acc[1]);
            acc[2] = fma(vec4<f32>(a.z), b, acc[2]);
            acc[3] = fma(vec4<f32>(a.w), b, acc[3]);
        }
        workgroupBarrier();
    }
    if !live {
        return;
    }
    let out_plane = params.out_height * params.out_width;
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + lid.y * 4u + i;
        if m >= params.out_channels {
            continue;
        }
        let epilogue = (m / 8u) * block_floats + depth * 8u + (m % 8u);
        let scale = weight[(epilogue + 8u) / 4u][(epilogue + 8u) % 4u];
        let shift = weight[(epilogue + 16u) / 4u][(epilogue + 16u) % 4u];
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + lid.x * 4u + j;
            if n >= columns {
                continue;
            }
            let index = ((n / out_plane) * params.out_channels + m) * out_plane + n % out_plane;
            var value = fma(acc[i][j], scale, shift);
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
