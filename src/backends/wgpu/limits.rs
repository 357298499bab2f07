//! The device limits spikeconv's kernels need, requested exactly ([`required_limits`]).
//!
//! Every WebGPU device guarantees `wgpu::Limits::defaults()`; the kernels stay within them
//! except for the size of one storage binding and of one buffer, which are asked for up to
//! what the adapter offers: a batch's activations over T timesteps live in one storage
//! buffer, and bigger buffers mean bigger chunks of images per dispatch. The sizing rules
//! (`GpuContext::max_binding_bytes`) read the granted sizes, so a device at the WebGPU
//! minimum (128 MiB per binding) still runs, in smaller chunks. `tests/shaders.rs` checks
//! the numbers below against what the shaders declare (workgroup sizes and memory,
//! bindings per entry point).

use super::GpuError;

/// Invocations of the largest workgroup (`@workgroup_size(256)`, and `16 × 16` in
/// conv_tiled.wgsl).
pub const WORKGROUP_INVOCATIONS: u32 = 256;
/// The largest workgroup dimensions any kernel declares (x, y, z).
pub const WORKGROUP_SIZE: [u32; 3] = [256, 16, 1];
/// Bytes of workgroup memory of the most demanding kernel (conv_tiled.wgsl's two 1024-float
/// tiles; layerwise.wgsl's 2048-float partial sums).
pub const WORKGROUP_STORAGE_BYTES: u32 = 8192;
/// Storage buffers one kernel binds at most.
pub const STORAGE_BUFFERS_PER_STAGE: u32 = 4;
/// Uniform buffers one kernel binds at most (its parameters, and the 64 KiB weight window of
/// the uniform-window conv kernels).
pub const UNIFORM_BUFFERS_PER_STAGE: u32 = 2;
/// Bytes of the largest uniform binding: the conv kernels' weight window.
pub const UNIFORM_BINDING_BYTES: u64 = super::kernels::CONV_WEIGHT_WINDOW_BYTES;
/// Bind groups per pipeline (every kernel uses group 0 only).
pub const BIND_GROUPS: u32 = 1;
/// Highest binding index + 1 of any kernel's group.
pub const BINDINGS_PER_GROUP: u32 = 5;

/// The limits to request from an adapter offering `adapter`: exactly what the kernels need
/// (above), the largest storage binding and buffer the adapter allows, and its own
/// (finest) offset alignments. An error names every limit the adapter falls short of.
pub fn required_limits(adapter_name: &str, adapter: &wgpu::Limits) -> Result<wgpu::Limits, GpuError> {
    let required = wgpu::Limits {
        max_compute_invocations_per_workgroup: WORKGROUP_INVOCATIONS,
        max_compute_workgroup_size_x: WORKGROUP_SIZE[0],
        max_compute_workgroup_size_y: WORKGROUP_SIZE[1],
        max_compute_workgroup_size_z: WORKGROUP_SIZE[2],
        max_compute_workgroup_storage_size: WORKGROUP_STORAGE_BYTES,
        max_compute_workgroups_per_dimension: super::kernels::MAX_WORKGROUPS_PER_DIMENSION,
        max_storage_buffers_per_shader_stage: STORAGE_BUFFERS_PER_STAGE,
        max_uniform_buffers_per_shader_stage: UNIFORM_BUFFERS_PER_STAGE,
        max_uniform_buffer_binding_size: UNIFORM_BINDING_BYTES,
        max_bind_groups: BIND_GROUPS,
        max_bindings_per_bind_group: BINDINGS_PER_GROUP,
        // Beyond WebGPU's defaults where the adapter allows it: bigger chunks of images.
        max_storage_buffer_binding_size: adapter.max_storage_buffer_binding_size,
        max_buffer_size: adapter.max_buffer_size,
        min_uniform_buffer_offset_alignment: adapter.min_uniform_buffer_offset_alignment,
        min_storage_buffer_offset_alignment: adapter.min_storage_buffer_offset_alignment,
        ..wgpu::Limits::downlevel_webgl2_defaults()
    };
    let mut short = Vec::new();
    required.check_limits_with_fail_fn(adapter, false, |name, needed, offered| {
        short.push(format!("{name} (needs {needed}, offers {offered})"))
    });
    if short.is_empty() {
        Ok(required)
    } else {
        Err(GpuError::RequestDevice {
            adapter: adapter_name.to_string(),
            message: format!("the adapter's limits are below what spikeconv's kernels need: {}", short.join(", ")),
        })
    }
}

/// The names of the limits [`required_limits`] may request beyond WebGPU's defaults
/// (`wgpu::Limits::defaults()`), each for the reason given in the module docs.
pub const BEYOND_WEBGPU_DEFAULTS: [&str; 2] = ["max_storage_buffer_binding_size", "max_buffer_size"];
