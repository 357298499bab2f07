//! Where a job runs: the wgpu kernels on a GPU adapter, or the native CPU backend
//! ([`crate::cpu`]). [`Backend`] gives the jobs every command needs — the ANN's accuracy,
//! calibration statistics, the SNN's accuracy after every step — on either, with the same
//! result types, so commands and reports do not care which ran.
//!
//! Choice (`--backend`): `auto` takes a real GPU adapter when wgpu finds one (discrete,
//! integrated or virtual), else the CPU backend; `gpu` takes the best adapter of any kind,
//! software rasterizers (lavapipe) included; `cpu` the CPU backend.

use std::fmt;
use std::str::FromStr;

use crate::convert::snn::SpikingNetwork;
use crate::convert::stats::LayerStats;
use crate::cpu::{self, ConvStats, CpuDevice, CpuGraph, CpuSnn};
use crate::data::cifar::Dataset;
use crate::gpu::{GpuContext, GpuError, Kernels};
use crate::model::graph::Graph;
use crate::model::normalize::Normalization;
use crate::sim::layerwise::WalkDevice;
use crate::sim::{self, AnnAccuracy, AnnPlan, SnnAccuracy, SnnPlan};
use crate::Error;

/// `--backend`: which backend a job asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// A real GPU if there is one, else the CPU backend.
    #[default]
    Auto,
    Cpu,
    /// The best wgpu adapter of any kind, software ones included.
    Gpu,
}

impl FromStr for BackendChoice {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            other => Err(format!("unknown backend `{other}`: expected auto, cpu or gpu")),
        }
    }
}

/// Bytes of the largest value of a chunk of images the CPU backend simulates together (a
/// node's values for every image and timestep of the chunk). Chunks this size keep a
/// layer's output in cache for the next layer: on the 2-core development machine
/// (docs/PERFORMANCE.md) ResNet-20 at T = 32 ran at 2500–2700 image-timesteps/s with
/// 2–8 images per chunk (4–16 MiB) and at 1100–1200 with 16–32.
const CPU_CHUNK_BYTES: usize = 8 << 20;
/// Images per ANN batch on the CPU backend.
const CPU_ANN_BATCH: usize = 64;

/// An open backend. (One per process: the size difference between the variants costs nothing.)
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    Cpu(CpuDevice),
    Gpu { ctx: GpuContext, kernels: Kernels },
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Backend {
    /// Opens the backend `choice` names; `adapter` (a name substring, or
    /// `WGPU_ADAPTER_NAME`) makes `auto` a GPU choice.
    pub fn open(choice: BackendChoice, adapter: Option<&str>) -> Result<Backend, Error> {
        let gpu = |ctx: GpuContext| -> Result<Backend, Error> {
            let kernels = Kernels::new(&ctx)?;
            Ok(Backend::Gpu { ctx, kernels })
        };
        match choice {
            BackendChoice::Cpu => Ok(Backend::Cpu(CpuDevice::detect())),
            BackendChoice::Gpu => gpu(GpuContext::new(adapter)?),
            BackendChoice::Auto if adapter.is_some() => gpu(GpuContext::new(adapter)?),
            BackendChoice::Auto => match GpuContext::new_hardware()? {
                Some(ctx) => gpu(ctx),
                None => Ok(Backend::Cpu(CpuDevice::detect())),
            },
        }
    }

    /// `cpu` or `gpu`, for reports and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Cpu(_) => "cpu",
            Backend::Gpu { .. } => "gpu",
        }
    }

    /// The device in one line: the CPU's threads and SIMD, or the adapter.
    pub fn describe(&self) -> String {
        match self {
            Backend::Cpu(device) => device.describe(),
            Backend::Gpu { ctx, .. } => ctx.describe(),
        }
    }

    /// Where layer-major walks (tuning, bias correction, analysis) run on this backend.
    pub fn walk_device(&self) -> WalkDevice<'_> {
        match self {
            Backend::Gpu { ctx, kernels } => WalkDevice::Gpu(ctx, kernels),
            Backend::Cpu(_) => WalkDevice::Cpu,
        }
    }

    /// Images per ANN batch: `requested`, else what the backend runs well (on a GPU the
    /// largest the adapter's limits allow, at most `default_max`); never more than `images`.
    pub fn ann_batch(
        &self,
        graph: &Graph,
        requested: Option<usize>,
        default_max: usize,
        images: usize,
    ) -> Result<usize, Error> {
        let natural = match self {
            Backend::Cpu(_) => CPU_ANN_BATCH,
            Backend::Gpu { ctx, .. } => AnnPlan::max_batch(ctx, graph).min(default_max),
        };
        let batch = requested.unwrap_or(natural).min(images.max(1)).max(1);
        if matches!(self, Backend::Cpu(_)) {
            check_fits(batch, requested, LIVE_VALUES * 4 * graph.largest_value(), "a batch of the ANN")?;
        }
        Ok(batch)
    }

    /// Images simulated together: `requested`, else on the CPU a chunk whose largest value
    /// fits [`CPU_CHUNK_BYTES`] (at least one image per thread), on a GPU the largest batch
    /// the adapter allows (at most `default_max`); never more than `images`.
    pub fn snn_batch(
        &self,
        snn: &SpikingNetwork,
        timesteps: usize,
        requested: Option<usize>,
        default_max: usize,
        images: usize,
    ) -> Result<usize, Error> {
        let batch = match self {
            Backend::Cpu(device) => {
                // The largest node's values at every step, per image of the chunk.
                let per_image = 4 * snn.graph.largest_value() * timesteps.max(1);
                let natural = (CPU_CHUNK_BYTES / per_image).max(device.threads);
                // Never more than the memory budget holds (at least one image: check_fits
                // then refuses it if even that does not fit).
                let natural = match crate::memory::budget() {
                    Some(budget) => natural.min(((budget / (LIVE_VALUES * per_image) as u64) as usize).max(1)),
                    None => natural,
                };
                let batch = requested.unwrap_or(natural).min(images.max(1)).max(1);
                check_fits(
                    batch,
                    requested,
                    LIVE_VALUES * per_image,
                    &format!("a chunk of the SNN over {timesteps} timesteps"),
                )?;
                batch
            }
            Backend::Gpu { ctx, .. } => {
                let natural = SnnPlan::max_batch(ctx, snn, timesteps).min(default_max);
                requested.unwrap_or(natural).min(images.max(1)).max(1)
            }
        };
        Ok(batch)
    }

    /// The ANN's accuracy over the first `limit` images, `batch` at a time.
    pub fn evaluate_ann(
        &self,
        graph: &Graph,
        dataset: &Dataset,
        normalization: &Normalization,
        limit: usize,
        batch: usize,
        progress: impl FnMut(usize),
    ) -> Result<AnnAccuracy, Error> {
        check_images(graph, dataset)?;
        match self {
            Backend::Cpu(_) => {
                Ok(cpu::evaluate::evaluate_ann(&CpuGraph::new(graph), dataset, normalization, limit, batch, progress))
            }
            Backend::Gpu { ctx, kernels } => {
                let plan = compile_with_fallback(batch, |b| AnnPlan::compile(ctx, kernels, graph, b))?;
                Ok(sim::evaluate_ann(ctx, &plan, dataset, normalization, limit, progress)?)
            }
        }
    }

    /// Calibration statistics of every ReLU node of the BN-folded `graph` over the first
    /// `images` images of `dataset` (two passes; `progress` counts both).
    #[allow(clippy::too_many_arguments)]
    pub fn calibrate(
        &self,
        graph: &Graph,
        dataset: &Dataset,
        normalization: &Normalization,
        images: usize,
        batch: usize,
        bins: usize,
        progress: impl FnMut(usize),
    ) -> Result<Vec<LayerStats>, Error> {
        check_image_shape(graph, dataset)?;
        match self {
            Backend::Cpu(_) => Ok(cpu::calibrate::calibrate(
                &CpuGraph::new(graph).rounding_each_product(),
                dataset,
                normalization,
                images,
                batch,
                bins,
                progress,
            )?),
            Backend::Gpu { ctx, kernels } => {
                Ok(sim::calibrate(ctx, kernels, graph, dataset, normalization, images, batch, bins, progress)?)
            }
        }
    }

    /// The SNN's accuracy after every step over the first `limit` images, `batch` images
    /// simulated together.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate_snn(
        &self,
        snn: &SpikingNetwork,
        dataset: &Dataset,
        normalization: &Normalization,
        limit: usize,
        timesteps: usize,
        batch: usize,
        progress: impl FnMut(usize),
    ) -> Result<SnnAccuracy, Error> {
        self.evaluate_snn_with_stats(snn, dataset, normalization, limit, timesteps, batch, progress)
            .map(|(accuracy, _)| accuracy)
    }

    /// [`Self::evaluate_snn`], also saying how the engine ran (see [`EngineStats`]).
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate_snn_with_stats(
        &self,
        snn: &SpikingNetwork,
        dataset: &Dataset,
        normalization: &Normalization,
        limit: usize,
        timesteps: usize,
        batch: usize,
        progress: impl FnMut(usize),
    ) -> Result<(SnnAccuracy, EngineStats), Error> {
        check_images(&snn.graph, dataset)?;
        match self {
            Backend::Cpu(_) => {
                let cpu = CpuSnn::new(snn)?;
                let (accuracy, stats) =
                    cpu::evaluate::evaluate_snn(&cpu, dataset, normalization, limit, timesteps, batch, progress)?;
                Ok((accuracy, EngineStats { batch, convolutions: Some(stats), dispatches_per_chunk: None }))
            }
            Backend::Gpu { ctx, kernels } => {
                let plan = compile_with_fallback(batch, |b| SnnPlan::compile(ctx, kernels, snn, b, timesteps))?;
                let accuracy = sim::evaluate_snn(ctx, &plan, dataset, normalization, limit, timesteps, progress)?;
                let stats = EngineStats {
                    batch: plan.batch(),
                    convolutions: None,
                    dispatches_per_chunk: Some(plan.dispatches_per_chunk()),
                };
                Ok((accuracy, stats))
            }
        }
    }
}

/// The dataset's images must be what the network's input expects (3×32×32 CIFAR images
/// into a graph declared for another shape would index past its buffers), and, where they
/// are scored, its classes the network's outputs.
pub fn check_images(graph: &Graph, dataset: &Dataset) -> Result<(), Error> {
    check_image_shape(graph, dataset)?;
    if graph.num_classes() != dataset.num_classes {
        return Err(Error::Usage(format!(
            "the network has {} classes but the dataset {} has {}",
            graph.num_classes(),
            dataset_files(dataset),
            dataset.num_classes
        )));
    }
    Ok(())
}

fn dataset_files(dataset: &Dataset) -> String {
    dataset.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// [`check_images`] without the classes (calibration reads no labels).
pub fn check_image_shape(graph: &Graph, dataset: &Dataset) -> Result<(), Error> {
    let input = graph.input_shape();
    let files = || dataset_files(dataset);
    if input != crate::data::cifar::IMAGE_SHAPE {
        return Err(Error::Usage(format!(
            "the network's input is {}×{}×{} but the images of {} are 3×32×32 (CIFAR)",
            input.channels,
            input.height,
            input.width,
            files()
        )));
    }
    Ok(())
}

impl Backend {
    /// Whether this backend can time GPU passes (`--profile`).
    pub fn has_gpu_timestamps(&self) -> bool {
        matches!(self, Backend::Gpu { ctx, .. } if ctx.has_timestamps())
    }

    /// The GPU time of every node's pass over the first chunk of `batch` images of
    /// `dataset` ([`SnnPlan::profile`]); only on the wgpu backend with timestamp queries.
    pub fn profile_snn(
        &self,
        snn: &SpikingNetwork,
        dataset: &Dataset,
        normalization: &Normalization,
        timesteps: usize,
        batch: usize,
    ) -> Result<Vec<sim::PassTime>, Error> {
        let Backend::Gpu { ctx, kernels } = self else {
            return Err(Error::Usage("--profile times GPU passes: it needs --backend gpu (or auto on a GPU)".into()));
        };
        let plan = compile_with_fallback(batch, |b| SnnPlan::compile(ctx, kernels, snn, b, timesteps))?;
        let mut images = Vec::new();
        let count = dataset.normalized_batch(0, plan.batch(), normalization, &mut images);
        let labels: Vec<u32> = dataset.labels[..count].iter().map(|&l| u32::from(l)).collect();
        Ok(plan.profile(ctx, &images, &labels, count, timesteps)?)
    }
}

/// How a simulation ran.
#[derive(Clone, Debug)]
pub struct EngineStats {
    /// Images per chunk (on a GPU, after any halving for memory).
    pub batch: usize,
    /// CPU backend: how the convolutions ran (event-driven or dense).
    pub convolutions: Option<ConvStats>,
    /// wgpu backend: dispatches recorded per chunk of images.
    pub dispatches_per_chunk: Option<usize>,
}

/// Values a CPU run holds at once at its peak: a node's inputs, its output and a residual.
const LIVE_VALUES: usize = 4;

/// Checks that `batch` images of `bytes_per_image` fit the memory budget
/// ([`crate::memory::budget`]: what is available, or `--memory-limit`); unchecked where
/// neither is known. The message says how many images fit, or that not even one does.
fn check_fits(batch: usize, requested: Option<usize>, bytes_per_image: usize, what: &str) -> Result<(), Error> {
    let Some(budget) = crate::memory::budget() else { return Ok(()) };
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
    // Name the flag where the user gave the batch; else the batch is the tool's own choice.
    let flag = requested.map(|b| format!("--batch {b}: ")).unwrap_or_default();
    Err(Error::Usage(format!(
        "{flag}{what} of {batch} image(s) needs {}, more than the memory budget of {} (available memory or --memory-limit); {advice}",
        crate::memory::gib(needed),
        crate::memory::gib(budget)
    )))
}

/// Compiles a GPU plan for `batch` images, halving the batch while the device runs out of
/// memory or a buffer exceeds the adapter's limits (a smaller batch, the same results).
fn compile_with_fallback<P>(
    batch: usize,
    mut compile: impl FnMut(usize) -> Result<P, GpuError>,
) -> Result<P, GpuError> {
    let mut batch = batch.max(1);
    loop {
        match compile(batch) {
            Err(GpuError::OutOfMemory { .. } | GpuError::TooLarge { .. }) if batch > 1 => batch /= 2,
            result => return result,
        }
    }
}
