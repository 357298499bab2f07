//! `spikeconv devices`: list the adapters wgpu finds, in the order adapter choice ranks them.

use spikeconv::gpu::list_adapters;

pub fn run() -> anyhow::Result<()> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        anyhow::bail!(
            "no GPU adapter found; install a Vulkan driver (on Debian: scripts/setup.sh installs Mesa's \
             software driver) or check WGPU_BACKEND"
        );
    }
    println!("{:<48} {:<8} {:<14} driver", "name", "backend", "type");
    for adapter in adapters {
        println!("{:<48} {:<8} {:<14} {}", adapter.name, adapter.backend, adapter.device_type, adapter.driver);
    }
    Ok(())
}
