//! Every WGSL module, translated with naga (the compiler wgpu uses) into the shader language
//! of each GPU API — SPIR-V (Vulkan), MSL (Metal), HLSL (DX12) — after validation with the
//! capabilities the device is opened with (none beyond core WGSL: spikeconv requests no
//! shader feature). lavapipe compiles only SPIR-V, so a shader a Mac or Windows GPU would
//! reject is caught here rather than on a user's machine. Then what the shaders declare
//! (workgroup sizes and memory, bindings per entry point) is held to the limits the device
//! is requested with (`backends::wgpu::limits`), and those to WebGPU's guaranteed defaults.

use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use spikeconv::backends::wgpu::kernels::WGSL_MODULES;
use spikeconv::backends::wgpu::limits;

fn parse(name: &str, source: &str) -> (naga::Module, ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: WGSL does not parse: {}", e.emit_to_string(source)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::empty()).validate(&module).unwrap_or_else(|e| {
        panic!("{name}: does not validate without extra capabilities: {}", e.emit_to_string(source))
    });
    (module, info)
}

#[test]
fn every_module_translates_to_spirv_msl_and_hlsl() {
    for (name, source) in WGSL_MODULES {
        let (module, info) = parse(name, source);
        assert!(!module.entry_points.is_empty(), "{name}: no entry point");

        let spirv = naga::back::spv::write_vec(&module, &info, &naga::back::spv::Options::default(), None)
            .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));
        assert_eq!(spirv[0], 0x0723_0203, "{name}: not a SPIR-V module");

        let (msl, msl_info) = naga::back::msl::write_string(
            &module,
            &info,
            &msl_options(&module, &info),
            &naga::back::msl::PipelineOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));
        for (entry, result) in module.entry_points.iter().zip(&msl_info.entry_point_names) {
            if let Err(e) = result {
                panic!("{name}: MSL entry point {}: {e}", entry.name);
            }
        }
        assert!(msl.contains("kernel void"), "{name}: MSL has no compute kernel");

        let mut hlsl = String::new();
        let options = naga::back::hlsl::Options::default();
        let pipeline = naga::back::hlsl::PipelineOptions::default();
        let reflection = naga::back::hlsl::Writer::new(&mut hlsl, &options, &pipeline)
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{name}: HLSL: {e}"));
        for (entry, result) in module.entry_points.iter().zip(&reflection.entry_point_names) {
            if let Err(e) = result {
                panic!("{name}: HLSL entry point {}: {e}", entry.name);
            }
        }
        assert!(hlsl.contains("[numthreads("), "{name}: HLSL has no compute shader");
    }
}

/// MSL options as wgpu's Metal backend builds them: every binding an entry point uses gets
/// a buffer slot, in declaration order, and the runtime-array sizes buffer the next one.
fn msl_options(module: &naga::Module, info: &ModuleInfo) -> naga::back::msl::Options {
    let mut options = naga::back::msl::Options { fake_missing_bindings: false, ..Default::default() };
    for (index, entry) in module.entry_points.iter().enumerate() {
        let used = info.get_entry_point(index);
        let mut resources = naga::back::msl::EntryPointResources::default();
        let mut slot = 0u8;
        for (handle, global) in module.global_variables.iter() {
            let Some(binding) = &global.binding else { continue };
            if used[handle].is_empty() {
                continue;
            }
            let mutable = matches!(global.space, naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE));
            resources
                .resources
                .insert(*binding, naga::back::msl::BindTarget { buffer: Some(slot), mutable, ..Default::default() });
            slot += 1;
        }
        resources.sizes_buffer = Some(slot);
        options.per_entry_point_map.insert(entry.name.clone(), resources);
    }
    options
}

/// What one module's entry points need of the device at most.
#[derive(Debug, Default)]
struct Needs {
    invocations: u32,
    size: [u32; 3],
    workgroup_bytes: u32,
    storage_buffers: u32,
    uniform_buffers: u32,
    uniform_bytes: u64,
    groups: u32,
    bindings: u32,
}

fn needs(name: &str, source: &str) -> Needs {
    let (module, info) = parse(name, source);
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).expect("layouts");
    let mut needs = Needs::default();
    for (index, entry) in module.entry_points.iter().enumerate() {
        let [x, y, z] = entry.workgroup_size;
        needs.invocations = needs.invocations.max(x * y * z);
        for (axis, extent) in [x, y, z].into_iter().enumerate() {
            needs.size[axis] = needs.size[axis].max(extent);
        }
        let used = info.get_entry_point(index);
        let (mut storage, mut uniform, mut workgroup) = (0, 0, 0);
        for (handle, global) in module.global_variables.iter() {
            if used[handle].is_empty() {
                continue;
            }
            let bytes = layouter[global.ty].size;
            match global.space {
                naga::AddressSpace::Storage { .. } => storage += 1,
                naga::AddressSpace::Uniform => {
                    uniform += 1;
                    needs.uniform_bytes = needs.uniform_bytes.max(u64::from(bytes));
                }
                naga::AddressSpace::WorkGroup => workgroup += bytes,
                _ => {}
            }
            if let Some(binding) = &global.binding {
                needs.groups = needs.groups.max(binding.group + 1);
                needs.bindings = needs.bindings.max(binding.binding + 1);
            }
        }
        needs.storage_buffers = needs.storage_buffers.max(storage);
        needs.uniform_buffers = needs.uniform_buffers.max(uniform);
        needs.workgroup_bytes = needs.workgroup_bytes.max(workgroup);
    }
    needs
}

#[test]
fn shaders_fit_the_requested_limits_and_those_fit_webgpu_defaults() {
    let mut most = Needs::default();
    for (name, source) in WGSL_MODULES {
        let n = needs(name, source);
        most.invocations = most.invocations.max(n.invocations);
        for axis in 0..3 {
            most.size[axis] = most.size[axis].max(n.size[axis]);
        }
        most.workgroup_bytes = most.workgroup_bytes.max(n.workgroup_bytes);
        most.storage_buffers = most.storage_buffers.max(n.storage_buffers);
        most.uniform_buffers = most.uniform_buffers.max(n.uniform_buffers);
        most.uniform_bytes = most.uniform_bytes.max(n.uniform_bytes);
        most.groups = most.groups.max(n.groups);
        most.bindings = most.bindings.max(n.bindings);
    }
    // The constants are exactly the shaders' needs: a kernel that needs more fails here,
    // and one that needs less tightens the request.
    assert_eq!(most.invocations, limits::WORKGROUP_INVOCATIONS);
    assert_eq!(most.size, limits::WORKGROUP_SIZE);
    assert_eq!(most.workgroup_bytes, limits::WORKGROUP_STORAGE_BYTES);
    assert_eq!(most.storage_buffers, limits::STORAGE_BUFFERS_PER_STAGE);
    assert_eq!(most.uniform_buffers, limits::UNIFORM_BUFFERS_PER_STAGE);
    assert_eq!(most.uniform_bytes, limits::UNIFORM_BINDING_BYTES);
    assert_eq!(most.groups, limits::BIND_GROUPS);
    assert_eq!(most.bindings, limits::BINDINGS_PER_GROUP);

    // Against an adapter at exactly WebGPU's defaults: granted, and nothing is requested
    // beyond them but the two buffer sizes (here at the default too).
    let webgpu = wgpu::Limits::defaults();
    let required = limits::required_limits("webgpu-defaults", &webgpu).expect("a WebGPU-default adapter suffices");
    let mut beyond = Vec::new();
    required.check_limits_with_fail_fn(&webgpu, false, |name, _, _| beyond.push(name));
    assert!(beyond.is_empty(), "requested beyond WebGPU defaults: {beyond:?}");
    // A bigger adapter: only the buffer sizes grow with it.
    let big = wgpu::Limits { max_storage_buffer_binding_size: 2 << 30, max_buffer_size: 4 << 30, ..webgpu.clone() };
    let required = limits::required_limits("big", &big).unwrap();
    let mut beyond = Vec::new();
    required.check_limits_with_fail_fn(&webgpu, false, |name, _, _| beyond.push(name));
    assert_eq!(beyond, limits::BEYOND_WEBGPU_DEFAULTS);
    // An adapter below the kernels' needs is refused with every shortfall named.
    let small =
        wgpu::Limits { max_compute_workgroup_storage_size: 4096, max_storage_buffers_per_shader_stage: 2, ..webgpu };
    let message = limits::required_limits("tiny-gpu", &small).unwrap_err().to_string();
    assert!(
        message.contains("tiny-gpu")
            && message.contains("max_compute_workgroup_storage_size (needs 8192, offers 4096)")
            && message.contains("max_storage_buffers_per_shader_stage (needs 4, offers 2)"),
        "{message}"
    );
}

/// The device the GPU tests run on (lavapipe here) is opened with exactly these limits.
#[test]
fn the_device_is_opened_with_the_required_limits() {
    let Some(common::GpuBackend { ctx, .. }) = common::gpu() else { return };
    assert_eq!(ctx.device.limits().max_compute_workgroup_storage_size, limits::WORKGROUP_STORAGE_BYTES);
    assert_eq!(ctx.device.limits().max_storage_buffers_per_shader_stage, limits::STORAGE_BUFFERS_PER_STAGE);
    assert_eq!(ctx.limits.max_uniform_buffer_binding_size, limits::UNIFORM_BINDING_BYTES);
}

mod common;
