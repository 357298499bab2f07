// Conv weights as a 64 KiB uniform window (prepended to conv.wgsl).
//
// Why uniform and not storage: llvmpipe (Mesa's CPU Vulkan driver) loads a storage value
// with a per-lane loop (extract address, bounds check, branch, insert), while a uniform
// load is a straight-line gather, or one scalar load when the index is a constant; with
// 9 weights per 8 channels per input value, weight loads decide a conv's speed there.
// A window holds whole 8-channel blocks: the host binds each dispatch's window at the
// offset of its first block (blocks are multiples of 32 bytes, the offset alignment) and
// pads the buffer so that every window is a full 64 KiB, as the fixed-size array requires.
@group(0) @binding(2) var<uniform> weight: array<vec4<f32>, 4096>;
