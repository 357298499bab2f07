//! Adapter choice and device creation: the [`GpuContext`] every plan and kernel runs on.
//!
//! The backend set comes from `WGPU_BACKEND` (as in every wgpu program); the adapter is
//! chosen by an explicit name, else `WGPU_ADAPTER_NAME`, else the most capable device type.

use std::sync::{Arc, Mutex};

use super::GpuError;

/// One adapter as seen by `spikeconv devices`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AdapterSummary {
    pub name: String,
    /// Backend API, e.g. `Vulkan`.
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` or `Other`.
    pub device_type: String,
    /// Driver name and version as the driver reports them.
    pub driver: String,
}

impl AdapterSummary {
    fn from_info(info: &wgpu::AdapterInfo) -> Self {
        let driver = match (info.driver.is_empty(), info.driver_info.is_empty()) {
            (false, false) => format!("{} {}", info.driver, info.driver_info),
            (false, true) => info.driver.clone(),
            (true, _) => info.driver_info.clone(),
        };
        Self {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver,
        }
    }
}

/// The convolution kernels a device runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKernels {
    /// Register-blocked direct kernels reading their weights through 64 KiB uniform windows
    /// (one dispatch per window of output channels): CPU adapters (llvmpipe), where
    /// uniform loads compile to plain loads and extra dispatches cost little.
    UniformWindows,
    /// The same direct kernels with the weights in one storage buffer: one dispatch per conv.
    Direct,
    /// An implicit GEMM with 64 x 64 tiles staged in workgroup memory (conv_tiled.wgsl),
    /// weights in one storage buffer: one dispatch per conv.
    Tiled,
}

impl std::str::FromStr for ConvKernels {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "windows" => Ok(Self::UniformWindows),
            "direct" => Ok(Self::Direct),
            "tiled" => Ok(Self::Tiled),
            other => Err(format!("SPIKECONV_CONV={other}: expected windows, direct or tiled")),
        }
    }
}

/// How the kernels of an adapter are chosen: decided once, from the adapter's type, when the
/// device opens (see ARCHITECTURE.md, "GPU kernel variants").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelStrategy {
    pub conv: ConvKernels,
}

impl KernelStrategy {
    /// The strategy for an adapter of `device_type`: uniform weight windows on a CPU
    /// adapter, the tiled implicit GEMM on every GPU.
    pub fn for_device_type(device_type: wgpu::DeviceType) -> Self {
        let conv = if device_type == wgpu::DeviceType::Cpu { ConvKernels::UniformWindows } else { ConvKernels::Tiled };
        Self { conv }
    }

    /// [`KernelStrategy::for_device_type`], with the conv kernels taken from
    /// `SPIKECONV_CONV` (`windows`, `direct` or `tiled`) when it is set: for comparing the
    /// variants on one device.
    pub fn for_adapter(device_type: wgpu::DeviceType) -> Result<Self, GpuError> {
        let mut strategy = Self::for_device_type(device_type);
        if let Some(text) = std::env::var("SPIKECONV_CONV").ok().filter(|t| !t.is_empty()) {
            strategy.conv = text.parse().map_err(GpuError::InvalidInput)?;
        }
        Ok(strategy)
    }
}

/// Errors wgpu reports outside an error scope (or after the device is lost); collected
/// here instead of wgpu's default handler, which panics, and turned into [`GpuError`]s.
type ErrorLog = Arc<Mutex<Vec<String>>>;

/// An open device with its queue, the adapter's description and the limits it granted.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_info: wgpu::AdapterInfo,
    /// The limits requested for the device: what the kernels need, and the adapter's
    /// largest storage binding and buffer ([`super::limits::required_limits`]).
    pub limits: wgpu::Limits,
    /// The kernel variants this adapter runs.
    pub strategy: KernelStrategy,
    uncaptured: ErrorLog,
    lost: ErrorLog,
}

fn instance() -> wgpu::Instance {
    // `with_env` applies WGPU_BACKEND, WGPU_DEBUG/WGPU_VALIDATION and backend options.
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle().with_env())
}

fn backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all())
}

/// Every adapter of the enabled backends (`WGPU_BACKEND` selects them).
pub fn list_adapters() -> Vec<AdapterSummary> {
    let adapters = pollster::block_on(instance().enumerate_adapters(backends()));
    adapters.iter().map(|a| AdapterSummary::from_info(&a.get_info())).collect()
}

/// Lower is preferred: real GPUs before software rasterizers.
fn type_rank(device_type: wgpu::DeviceType) -> u8 {
    match device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

impl GpuContext {
    /// Opens a device. `adapter` (else `WGPU_ADAPTER_NAME`) picks the first adapter whose
    /// name contains it, ignoring case; without a name the most capable device type wins
    /// (discrete, integrated, virtual, CPU).
    pub fn new(adapter: Option<&str>) -> Result<GpuContext, GpuError> {
        let instance = instance();
        let backends = backends();
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        if adapters.is_empty() {
            return Err(GpuError::NoAdapter { backends: format!("{backends:?}") });
        }
        let wanted = adapter
            .map(str::to_owned)
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok().filter(|name| !name.is_empty()));
        let chosen = match &wanted {
            Some(name) => {
                let needle = name.to_lowercase();
                adapters.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&needle)).ok_or_else(|| {
                    let available = list_adapters()
                        .iter()
                        .map(|a| format!("`{}` ({}, {})", a.name, a.backend, a.device_type))
                        .collect::<Vec<_>>()
                        .join(", ");
                    GpuError::AdapterNotFound { wanted: name.clone(), available }
                })?
            }
            None => adapters
                .into_iter()
                .min_by_key(|a| type_rank(a.get_info().device_type))
                .expect("checked non-empty above"),
        };
        Self::open(&chosen)
    }

    /// Opens the most capable real GPU (discrete, integrated or virtual), or `None` when
    /// the enabled backends offer only software adapters (lavapipe, llvmpipe) or none:
    /// what `--backend auto` asks before it settles on the CPU backend.
    pub fn new_hardware() -> Result<Option<GpuContext>, GpuError> {
        let adapters = pollster::block_on(instance().enumerate_adapters(backends()));
        let best = adapters
            .into_iter()
            .filter(|a| type_rank(a.get_info().device_type) < type_rank(wgpu::DeviceType::Cpu))
            .min_by_key(|a| type_rank(a.get_info().device_type));
        best.map(|adapter| Self::open(&adapter)).transpose()
    }

    fn open(adapter: &wgpu::Adapter) -> Result<GpuContext, GpuError> {
        let adapter_info = adapter.get_info();
        let limits = super::limits::required_limits(&adapter_info.name, &adapter.limits())?;
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("spikeconv"),
            // Timestamps where offered: `bench --profile` times each node's pass with them.
            required_features: adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&descriptor))
            .map_err(|e| GpuError::RequestDevice { adapter: adapter_info.name.clone(), message: e.to_string() })?;

        let uncaptured = ErrorLog::default();
        let log = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            if let Ok(mut log) = log.lock() {
                log.push(error.to_string());
            }
        }));
        let lost = ErrorLog::default();
        let log = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut log) = log.lock() {
                log.push(format!("{reason:?}: {message}"));
            }
        });
        let strategy = KernelStrategy::for_adapter(adapter_info.device_type)?;
        Ok(GpuContext { device, queue, adapter_info, limits, strategy, uncaptured, lost })
    }

    /// One line naming the adapter, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`.
    pub fn describe(&self) -> String {
        format!("{} ({:?}, {:?})", self.adapter_info.name, self.adapter_info.backend, self.adapter_info.device_type)
    }

    /// Whether the device can time compute passes (`wgpu::Features::TIMESTAMP_QUERY`).
    pub fn has_timestamps(&self) -> bool {
        self.device.features().contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// The largest buffer that one storage binding may cover, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// Runs `work` inside validation and out-of-memory error scopes and turns whatever
    /// wgpu reports (there, or earlier through the uncaptured handler, or a lost device)
    /// into a [`GpuError`] naming `context`.
    pub fn checked<T>(&self, context: &str, work: impl FnOnce() -> Result<T, GpuError>) -> Result<T, GpuError> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let result = work();
        // Scopes pop in reverse order of their pushes.
        let validation = pollster::block_on(validation.pop());
        let oom = pollster::block_on(oom.pop());
        self.check_lost()?;
        if let Some(error) = validation {
            return Err(GpuError::Validation { context: context.into(), message: error.to_string() });
        }
        if let Some(error) = oom {
            return Err(GpuError::OutOfMemory { context: context.into(), message: error.to_string() });
        }
        if let Some(message) = self.take_uncaptured_error() {
            return Err(GpuError::Validation { context: format!("{context} (reported earlier)"), message });
        }
        result
    }

    /// The oldest error wgpu reported outside any error scope, if any (removing it).
    pub fn take_uncaptured_error(&self) -> Option<String> {
        self.uncaptured.lock().ok().and_then(|mut log| (!log.is_empty()).then(|| log.remove(0)))
    }

    /// Fails when the device has been lost.
    pub fn check_lost(&self) -> Result<(), GpuError> {
        match self.lost.lock().ok().and_then(|log| log.first().cloned()) {
            Some(message) => Err(GpuError::DeviceLost(message)),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.describe()).finish_non_exhaustive()
    }
}
