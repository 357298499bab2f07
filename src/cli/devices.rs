//! `spikeconv devices`: the CPU backend, then the adapters wgpu finds, in the order adapter
//! choice ranks them.

use spikeconv::backends::cpu::CpuDevice;
#[cfg(feature = "wgpu")]
use spikeconv::backends::wgpu::list_adapters;

pub fn run() -> anyhow::Result<()> {
    let cpu = CpuDevice::detect();
    println!("{:<48} {:<8} {:<14} driver", "name", "backend", "type");
    println!(
        "{:<48} {:<8} {:<14} {} threads, {} ({} f32 lanes)",
        "spikeconv CPU backend", "native", "Cpu", cpu.threads, cpu.simd, cpu.lanes
    );
    #[cfg(not(feature = "wgpu"))]
    eprintln!("note: this spikeconv was built without the `wgpu` feature: the CPU backend only");
    #[cfg(feature = "wgpu")]
    list_gpu_adapters();
    Ok(())
}

/// The adapters wgpu finds, in the order adapter choice ranks them.
#[cfg(feature = "wgpu")]
fn list_gpu_adapters() {
    let adapters = list_adapters();
    for adapter in &adapters {
        println!("{:<48} {:<8} {:<14} {}", adapter.name, adapter.backend, adapter.device_type, adapter.driver);
    }
    if adapters.is_empty() {
        eprintln!(
            "note: no wgpu adapter found; --backend auto and cpu run on the CPU backend. For the wgpu kernels \
             without a GPU install a Vulkan driver (on Debian: scripts/setup.sh installs Mesa's software driver) \
             or check WGPU_BACKEND"
        );
    }
}
