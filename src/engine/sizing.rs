//! How many images a plan takes at once, and whether they fit the memory budget
//! ([`crate::memory::budget`]: half the available memory, or `--memory-limit`). The wgpu
//! backend sizes its plans by the adapter's limits (`backends::wgpu`); these are the rules
//! of the host-memory side.

use crate::memory;

/// Bytes of the largest value of a chunk of images the CPU backend simulates together (a
/// node's values for every image and timestep of the chunk). Chunks this size keep a
/// layer's output in cache for the next layer: on the 2-core development machine
/// (docs/PERFORMANCE.md) ResNet-20 at T = 32 ran at 2500–2700 image-timesteps/s with
/// 2–8 images per chunk (4–16 MiB) and at 1100–1200 with 16–32.
pub const CPU_CHUNK_BYTES: usize = 8 << 20;
/// Images per ANN batch on the CPU backend.
pub const CPU_ANN_BATCH: usize = 64;
/// Bytes of values a walk on the CPU may hold: a few values of every timestep at once.
pub const CPU_WALK_BYTES: usize = 8 << 30;
/// Values a CPU run holds at once at its peak: a node's inputs, its output and a residual.
pub const LIVE_VALUES: usize = 4;

/// Images per chunk of a CPU simulation whose largest value takes `per_image` bytes per
/// image (every timestep): a chunk of [`CPU_CHUNK_BYTES`], at least one image per thread,
/// never more than the budget holds (at least one image: [`check_fits`] then refuses it if
/// even that does not fit).
pub fn cpu_snn_chunk(per_image: usize, threads: usize) -> usize {
    let natural = (CPU_CHUNK_BYTES / per_image.max(1)).max(threads);
    match memory::budget() {
        Some(budget) => natural.min(((budget / (LIVE_VALUES * per_image.max(1)) as u64) as usize).max(1)),
        None => natural,
    }
}

/// The most images a CPU walk holds whose largest value takes `per_image` bytes per image
/// (every timestep): a few such values within [`CPU_WALK_BYTES`] and the budget.
pub fn cpu_walk_images(per_image: usize) -> usize {
    let budget = memory::budget().map_or(CPU_WALK_BYTES, |b| (b as usize).min(CPU_WALK_BYTES));
    budget / (LIVE_VALUES * per_image.max(1))
}

/// Checks that `batch` images of `bytes_per_image` fit the memory budget; unchecked where
/// none is known. The message says how many images fit, or that not even one does, and
/// names `--batch` only where the user gave it (`requested`).
pub fn check_fits(batch: usize, requested: Option<usize>, bytes_per_image: usize, what: &str) -> Result<(), String> {
    let Some(budget) = memory::budget() else { return Ok(()) };
    let needed = (batch as u64).saturating_mul(bytes_per_image as u64);
    if needed <= budget {
        return Ok(());
    }
    let fits = budget / bytes_per_image.max(1) as u64;
    let advice = if fits == 0 {
        "not even one image fits: lower --timesteps (or raise --memory-limit if memory allows)".to_string()
    } else {
        format!("at most {fits} images fit: use --batch {fits} or less")
    };
    let flag = requested.map(|b| format!("--batch {b}: ")).unwrap_or_default();
    Err(format!(
        "{flag}{what} of {batch} image(s) needs {}, more than the memory budget of {} (available memory or --memory-limit); {advice}",
        memory::gib(needed),
        memory::gib(budget)
    ))
}
