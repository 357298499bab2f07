//! Where a job runs: the wgpu kernels on a GPU adapter ([`wgpu`]), or the native CPU
//! backend ([`cpu`]). Each backend is a leaf: it imports the model, conversion and engine
//! layers, never the other backend nor this dispatcher. [`Backend`] gives the jobs every
//! command needs — the ANN's accuracy, calibration statistics, the SNN's accuracy after
//! every step, the layer-major walk — on either, with the engine's result types
//! ([`crate::engine`]), so jobs and reports do not care which ran.
//!
//! Choice (`--backend`): `auto` takes a real GPU adapter when wgpu finds one (discrete,
//! integrated or virtual), else the CPU backend; `gpu` takes the best adapter of any kind,
//! software rasterizers (lavapipe) included; `cpu` the CPU backend.

use std::fmt;
use std::str::FromStr;

pub mod cpu;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use crate::convert::snn::SpikingNetwork;
use crate::convert::stats::LayerStats;
use crate::data::cifar::Dataset;
use crate::engine::sizing::{check_fits, cpu_snn_chunk, CPU_ANN_BATCH, LIVE_VALUES};
use crate::engine::{AnnAccuracy, EngineStats, EvaluationSet, PassTime, SnnAccuracy, Walker};
use crate::model::graph::Graph;
use crate::Error;

use self::cpu::{CpuDevice, CpuGraph, CpuSnn};
#[cfg(feature = "wgpu")]
use self::wgpu::{AnnPlan, GpuBackend, GpuContext, GpuError, SnnPlan};

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

/// An open backend. (One per process: the size difference between the variants costs nothing.)
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    Cpu(CpuDevice),
    #[cfg(feature = "wgpu")]
    Gpu(GpuBackend),
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Backend {
    /// Opens the backend `choice` names; `adapter` (a name substring, or
    /// `WGPU_ADAPTER_NAME`) makes `auto` a GPU choice.
    #[cfg(feature = "wgpu")]
    pub fn open(choice: BackendChoice, adapter: Option<&str>) -> Result<Backend, Error> {
        let gpu = |ctx: GpuContext| -> Result<Backend, Error> { Ok(Backend::Gpu(GpuBackend::new(ctx)?)) };
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

    /// Opens the backend `choice` names: a build without the `wgpu` feature has the CPU
    /// backend only (`auto` is the CPU; `gpu` or an adapter name is an error).
    #[cfg(not(feature = "wgpu"))]
    pub fn open(choice: BackendChoice, adapter: Option<&str>) -> Result<Backend, Error> {
        match (choice, adapter) {
            (BackendChoice::Cpu, _) | (BackendChoice::Auto, None) => Ok(Backend::Cpu(CpuDevice::detect())),
            _ => Err(Error::Usage("this spikeconv was built without the `wgpu` feature: only --backend cpu".into())),
        }
    }

    /// `cpu` or `gpu`, for reports and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Cpu(_) => "cpu",
            #[cfg(feature = "wgpu")]
            Backend::Gpu(_) => "gpu",
        }
    }

    /// The device in one line: the CPU's threads and SIMD, or the adapter.
    pub fn describe(&self) -> String {
        match self {
            Backend::Cpu(device) => device.describe(),
            #[cfg(feature = "wgpu")]
            Backend::Gpu(gpu) => gpu.ctx.describe(),
        }
    }

    /// Where layer-major walks (tuning, bias correction, analysis) run on this backend.
    pub fn walker(&self) -> &dyn Walker {
        match self {
            Backend::Cpu(device) => device,
            #[cfg(feature = "wgpu")]
            Backend::Gpu(gpu) => gpu,
        }
    }

    /// Images per ANN batch: `requested`, else what the backend runs well (on a GPU the
    /// largest the adapter's limits allow, at most `default_max`); never more than `images`.
    #[cfg_attr(not(feature = "wgpu"), allow(unused_variables))]
    pub fn ann_batch(
        &self,
        graph: &Graph,
        requested: Option<usize>,
        default_max: usize,
        images: usize,
    ) -> Result<usize, Error> {
        let natural = match self {
            Backend::Cpu(_) => CPU_ANN_BATCH,
            #[cfg(feature = "wgpu")]
            Backend::Gpu(gpu) => AnnPlan::max_batch(&gpu.ctx, graph).min(default_max),
        };
        let batch = requested.unwrap_or(natural).min(images.max(1)).max(1);
        if matches!(self, Backend::Cpu(_)) {
            check_fits(batch, requested, LIVE_VALUES * 4 * graph.largest_value(), "a batch of the ANN")
                .map_err(Error::Usage)?;
        }
        Ok(batch)
    }

    /// Images simulated together: `requested`, else on the CPU a chunk sized by
    /// [`cpu_snn_chunk`], on a GPU the largest batch the adapter allows (at most
    /// `default_max`); never more than `images`.
    #[cfg_attr(not(feature = "wgpu"), allow(unused_variables))]
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
                let natural = cpu_snn_chunk(per_image, device.threads);
                let batch = requested.unwrap_or(natural).min(images.max(1)).max(1);
                let what = format!("a chunk of the SNN over {timesteps} timesteps");
                check_fits(batch, requested, LIVE_VALUES * per_image, &what).map_err(Error::Usage)?;
                batch
            }
            #[cfg(feature = "wgpu")]
            Backend::Gpu(gpu) => {
                let natural = SnnPlan::max_batch(&gpu.ctx, snn, timesteps).min(default_max);
                requested.unwrap_or(natural).min(images.max(1)).max(1)
            }
        };
        Ok(batch)
    }

    /// The ANN's accuracy over `set`, `batch` images at a time.
    pub fn evaluate_ann(
        &self,
        graph: &Graph,
        set: EvaluationSet<'_>,
        batch: usize,
        progress: impl FnMut(usize),
    ) -> Result<AnnAccuracy, Error> {
        check_images(graph, set.dataset)?;
        match self {
            Backend::Cpu(_) => Ok(cpu::evaluate::evaluate_ann(&CpuGraph::new(graph), set, batch, progress)),
            #[cfg(feature = "wgpu")]
            Backend::Gpu(GpuBackend { ctx, kernels }) => {
                let plan = compile_with_fallback(batch, |b| AnnPlan::compile(ctx, kernels, graph, b))?;
                Ok(wgpu::evaluate_ann(ctx, &plan, set, progress)?)
            }
        }
    }

    /// Calibration statistics of every ReLU node of the BN-folded `graph` over the images
    /// of `set` (two passes; `progress` counts both), `batch` at a time, with `bins`-bin
    /// histograms.
    pub fn calibrate(
        &self,
        graph: &Graph,
        set: EvaluationSet<'_>,
        batch: usize,
        bins: usize,
        progress: impl FnMut(usize),
    ) -> Result<Vec<LayerStats>, Error> {
        check_image_shape(graph, set.dataset)?;
        match self {
            Backend::Cpu(_) => {
                let graph = CpuGraph::new(graph).rounding_each_product();
                Ok(cpu::calibrate::calibrate(&graph, set, batch, bins, progress)?)
            }
            #[cfg(feature = "wgpu")]
            Backend::Gpu(GpuBackend { ctx, kernels }) => {
                Ok(wgpu::calibrate(ctx, kernels, graph, set, batch, bins, progress)?)
            }
        }
    }

    /// The SNN's accuracy after every step over `set`, `batch` images simulated together.
    pub fn evaluate_snn(
        &self,
        snn: &SpikingNetwork,
        set: EvaluationSet<'_>,
        timesteps: usize,
        batch: usize,
        progress: impl FnMut(usize),
    ) -> Result<SnnAccuracy, Error> {
        self.evaluate_snn_with_stats(snn, set, timesteps, batch, progress).map(|(accuracy, _)| accuracy)
    }

    /// [`Self::evaluate_snn`], also saying how the engine ran (see [`EngineStats`]).
    pub fn evaluate_snn_with_stats(
        &self,
        snn: &SpikingNetwork,
        set: EvaluationSet<'_>,
        timesteps: usize,
        batch: usize,
        progress: impl FnMut(usize),
    ) -> Result<(SnnAccuracy, EngineStats), Error> {
        check_images(&snn.graph, set.dataset)?;
        match self {
            Backend::Cpu(_) => {
                let cpu = CpuSnn::new(snn)?;
                let (accuracy, stats) = cpu::evaluate::evaluate_snn(&cpu, set, timesteps, batch, progress)?;
                Ok((accuracy, EngineStats { batch, convolutions: Some(stats), dispatches_per_chunk: None }))
            }
            #[cfg(feature = "wgpu")]
            Backend::Gpu(GpuBackend { ctx, kernels }) => {
                let plan = compile_with_fallback(batch, |b| SnnPlan::compile(ctx, kernels, snn, b, timesteps))?;
                let accuracy = wgpu::evaluate_snn(ctx, &plan, set, timesteps, progress)?;
                let stats = EngineStats {
                    batch: plan.batch(),
                    convolutions: None,
                    dispatches_per_chunk: Some(plan.dispatches_per_chunk()),
                };
                Ok((accuracy, stats))
            }
        }
    }

    /// Whether this backend can time GPU passes (`--profile`).
    pub fn has_gpu_timestamps(&self) -> bool {
        #[cfg(feature = "wgpu")]
        if let Backend::Gpu(gpu) = self {
            return gpu.ctx.has_timestamps();
        }
        false
    }

    /// The GPU time of every node's pass over the first chunk of `batch` images of `set`
    /// ([`SnnPlan::profile`]); only on the wgpu backend with timestamp queries.
    pub fn profile_snn(
        &self,
        snn: &SpikingNetwork,
        set: EvaluationSet<'_>,
        timesteps: usize,
        batch: usize,
    ) -> Result<Vec<PassTime>, Error> {
        #[cfg(feature = "wgpu")]
        if let Backend::Gpu(GpuBackend { ctx, kernels }) = self {
            let plan = compile_with_fallback(batch, |b| SnnPlan::compile(ctx, kernels, snn, b, timesteps))?;
            let mut images = Vec::new();
            let count = set.batch(0, plan.batch(), &mut images);
            return Ok(plan.profile(ctx, &images, &set.labels(0, count), count, timesteps)?);
        }
        let _ = (snn, set, timesteps, batch);
        Err(Error::Usage("--profile times GPU passes: it needs --backend gpu (or auto on a GPU)".into()))
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
    if input != crate::data::cifar::IMAGE_SHAPE {
        return Err(Error::Usage(format!(
            "the network's input is {}×{}×{} but the images of {} are 3×32×32 (CIFAR)",
            input.channels,
            input.height,
            input.width,
            dataset_files(dataset)
        )));
    }
    Ok(())
}

#[cfg(feature = "wgpu")]
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
