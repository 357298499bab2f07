//! spikeconv from Python: the library's jobs (load, convert, sweep, the ANN) as functions
//! over paths or numpy arrays, results as numpy arrays and plain dicts, errors as
//! `spikeconv.SpikeconvError` with the library's one-line message. The Python package
//! (`python/package/spikeconv`) wraps these with keyword arguments, torch `state_dict`s and
//! progress callbacks; this module stays close to the library's types.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use spikeconv::backends::{Backend, BackendChoice};
use spikeconv::convert::snn::SpikingNetwork as LibSnn;
use spikeconv::convert::snn_file::{read_snn, write_snn, InputNormalization, SnnFile};
use spikeconv::convert::threshold::parse_methods;
use spikeconv::data::cifar::{CifarFormat, Dataset, IMAGE_BYTES};
use spikeconv::jobs::{ann as ann_job, sweep as sweep_job, AnnJob, SweepJob};
use spikeconv::model::{self, BlockForm, LoadOptions, Normalization, NormalizePreset};
use spikeconv::pipeline::{self, ConversionOptions, Progress};

pyo3::create_exception!(_spikeconv, SpikeconvError, PyValueError, "An error of spikeconv: its one-line message.");

fn error(e: impl std::fmt::Display) -> PyErr {
    SpikeconvError::new_err(e.to_string().replace('\n', " "))
}

fn open_backend(name: &str) -> PyResult<Backend> {
    let choice: BackendChoice = name.parse().map_err(error)?;
    Backend::open(choice, None).map_err(error)
}

/// The keyword-only arguments of a call, received as one `**options` dict and taken by
/// name with their defaults, so that a function of many options keeps a short Rust
/// signature while Python sees the same keywords (each function's `text_signature` lists
/// them). [`Keywords::finish`] raises what pyo3 raises for declared arguments: first a
/// keyword nothing took, else the first value of the wrong type, with the note
/// `while processing '<name>'`.
struct Keywords<'py> {
    /// The function as Python's messages name it, e.g. `sweep()`.
    function: &'static str,
    /// The keywords not taken yet (pyo3 builds a fresh dict for each call).
    given: Option<Bound<'py, PyDict>>,
    /// The first error met while taking one.
    failed: Option<PyErr>,
}

impl<'py> Keywords<'py> {
    fn new(function: &'static str, given: Option<&Bound<'py, PyDict>>) -> Self {
        Keywords { function, given: given.cloned(), failed: None }
    }

    /// The keyword argument `name`, or `default` where the call does not give it (or gives
    /// a value of the wrong type: [`Keywords::finish`] then fails).
    fn take<T: FromPyObjectOwned<'py>>(&mut self, name: &str, default: T) -> T {
        match self.extract(name) {
            Ok(value) => value.unwrap_or(default),
            Err(e) => {
                self.failed.get_or_insert(e);
                default
            }
        }
    }

    fn extract<T: FromPyObjectOwned<'py>>(&self, name: &str) -> PyResult<Option<T>> {
        let Some(given) = &self.given else { return Ok(None) };
        let Some(value) = given.get_item(name)? else { return Ok(None) };
        given.del_item(name)?;
        value.extract::<T>().map(Some).map_err(|e| {
            let e: PyErr = e.into();
            // As pyo3 does for a declared argument (`add_note` exists from Python 3.11 on).
            let _ = e.value(value.py()).call_method1("add_note", (format!("while processing '{name}'"),));
            e
        })
    }

    /// Checks that every keyword given was taken, and taken without error.
    fn finish(self) -> PyResult<()> {
        if let Some(name) = self.given.and_then(|given| given.keys().into_iter().next()) {
            return Err(PyTypeError::new_err(format!("{} got an unexpected keyword argument '{name}'", self.function)));
        }
        self.failed.map_or(Ok(()), Err)
    }
}

/// A loaded ANN checkpoint.
#[pyclass(module = "spikeconv._spikeconv", frozen)]
struct Network {
    inner: model::Network,
}

#[pymethods]
impl Network {
    /// Weighted layers: 20, 56, 110, ...
    #[getter]
    fn depth(&self) -> usize {
        self.inner.info.depth()
    }
    #[getter]
    fn num_classes(&self) -> usize {
        self.inner.info.num_classes()
    }
    /// `resnet20`, `resnet18`, `vgg16`, ...: the architecture the tensors form.
    #[getter]
    fn arch(&self) -> String {
        self.inner.info.name()
    }
    /// `standard`, `restructured` or `preact`; `none` for a network without residual blocks.
    #[getter]
    fn block(&self) -> &'static str {
        self.inner.info.block().map_or("none", |block| block.name())
    }
    /// The trained activation of a quantization-aware network (`qcfs:4`), else None.
    #[getter]
    fn activation(&self) -> Option<String> {
        self.inner.trained.as_ref().map(|t| t.describe())
    }
    #[getter]
    fn path(&self) -> String {
        self.inner.path.display().to_string()
    }
    /// The file's `__metadata__`.
    #[getter]
    fn metadata(&self) -> HashMap<String, String> {
        self.inner.metadata.clone().into_iter().collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Network({}, {} classes, {})",
            self.inner.info.describe(),
            self.inner.info.num_classes(),
            self.inner.path.display()
        )
    }

    /// Converts with every method (comma-separated names, as `--threshold`), calibrating on
    /// the first `calib_images` images of the CIFAR file `calib`; returns the networks in
    /// the CLI's order. `progress(stage, done, total)` is called as stages advance.
    #[pyo3(signature = (calib, methods, **options),
        text_signature = "($self, calib, methods, *, calib_images=2048, tune_timesteps=..., tune_images=128, \
            bias_correction=False, tune_v_init=False, v_init=0.5, maxpool=\"gated\", neuron=\"if\", backend=\"auto\", \
            progress=None)")]
    fn convert(
        &self,
        py: Python<'_>,
        calib: PathBuf,
        methods: &str,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<SpikingNetwork>> {
        let mut keywords = Keywords::new("Network.convert()", options);
        let calib_images: usize = keywords.take("calib_images", 2048);
        let tune_timesteps: Vec<usize> = keywords.take("tune_timesteps", Vec::new());
        let tune_images: usize = keywords.take("tune_images", 128);
        let bias_correction: bool = keywords.take("bias_correction", false);
        let tune_v_init: bool = keywords.take("tune_v_init", false);
        let v_init: f32 = keywords.take("v_init", 0.5);
        let maxpool: String = keywords.take("maxpool", "gated".to_string());
        let neuron: String = keywords.take("neuron", "if".to_string());
        let backend: String = keywords.take("backend", "auto".to_string());
        let progress: Option<Py<PyAny>> = keywords.take("progress", None);
        keywords.finish()?;
        let options = ConversionOptions {
            max_pooling: maxpool.parse().map_err(error)?,
            neuron: neuron.parse().map_err(error)?,
            methods: parse_methods(methods).map_err(error)?,
            v_init,
            calib_images,
            tune_timesteps,
            tune_images,
            tune_v_init,
            bias_correction,
            ..ConversionOptions::default()
        };
        let backend = open_backend(&backend)?;
        let calib = Dataset::open_first(&calib, None, Some(calib_images)).map_err(error)?;
        let mut observer = Callback { py, callback: progress, stage: String::new(), total: 0, failed: None };
        let conversion = pipeline::convert(&backend, &self.inner, &calib, &options, &mut observer);
        if let Some(e) = observer.failed {
            return Err(e);
        }
        let conversion = conversion.map_err(error)?;
        Ok(conversion
            .networks
            .into_iter()
            .map(|inner| SpikingNetwork {
                inner,
                normalization: self.inner.normalization,
                source: self.inner.path.display().to_string(),
            })
            .collect())
    }
}

/// The pipeline's progress as calls of a Python callable `(stage, done, total)`.
struct Callback<'py> {
    py: Python<'py>,
    callback: Option<Py<PyAny>>,
    stage: String,
    total: u64,
    failed: Option<PyErr>,
}

impl Callback<'_> {
    fn call(&mut self, done: u64) {
        if let (Some(callback), None) = (&self.callback, &self.failed) {
            if let Err(e) = callback.call1(self.py, (self.stage.as_str(), done, self.total)) {
                self.failed = Some(e);
            }
        }
    }
}

impl Progress for Callback<'_> {
    fn start(&mut self, unit: &str, total: u64) {
        self.stage = unit.to_string();
        self.total = total;
        self.call(0);
    }
    fn advance(&mut self, done: u64) {
        self.call(done);
    }
    fn finish(&mut self) {
        let total = self.total;
        self.call(total);
    }
    fn note(&mut self, _: &str) {}
}

/// A converted spiking network.
#[pyclass(module = "spikeconv._spikeconv", frozen)]
struct SpikingNetwork {
    inner: LibSnn,
    normalization: Normalization,
    source: String,
}

#[pymethods]
impl SpikingNetwork {
    /// The method's name, e.g. `channel-ttrbr+bias`.
    #[getter]
    fn method(&self) -> String {
        self.inner.threshold_method.clone()
    }
    #[getter]
    fn tuned_for_timesteps(&self) -> Option<usize> {
        self.inner.tuned_for_timesteps
    }
    /// The IF layers' neuron, `if` or `signed`.
    #[getter]
    fn neuron(&self) -> &'static str {
        self.inner.neuron.name()
    }
    /// IF layer names, in order.
    #[getter]
    fn layers(&self) -> Vec<String> {
        self.inner.layers.iter().map(|l| l.name.clone()).collect()
    }
    /// Each IF layer's thresholds (one value, or one per channel).
    fn thresholds<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyArray1<f32>>> {
        self.inner.layers.iter().map(|l| PyArray1::from_slice(py, l.thresholds.values())).collect()
    }
    /// Writes the converted-SNN file (what `spikeconv convert -o` writes).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        let file = SnnFile {
            snn: self.inner.clone(),
            normalization: InputNormalization::rgb(self.normalization.mean, self.normalization.std),
            source_model: self.source.clone(),
        };
        write_snn(&path, &file).map_err(error)
    }
    fn __repr__(&self) -> String {
        match self.inner.tuned_for_timesteps {
            Some(t) => format!(
                "SpikingNetwork({}, tuned for T = {t}, {} IF layers)",
                self.inner.threshold_method,
                self.inner.layers.len()
            ),
            None => format!("SpikingNetwork({}, {} IF layers)", self.inner.threshold_method, self.inner.layers.len()),
        }
    }
}

/// Loads a checkpoint file; the options are those of the command line's loader.
#[pyfunction]
#[pyo3(signature = (path, *, mean=None, std=None, normalize=None, block=None))]
fn load_checkpoint(
    path: PathBuf,
    mean: Option<[f32; 3]>,
    std: Option<[f32; 3]>,
    normalize: Option<&str>,
    block: Option<&str>,
) -> PyResult<Network> {
    let options = load_options(mean, std, normalize, block)?;
    Ok(Network { inner: model::load(&path, &options).map_err(error)? })
}

fn load_options(
    mean: Option<[f32; 3]>,
    std: Option<[f32; 3]>,
    normalize: Option<&str>,
    block: Option<&str>,
) -> PyResult<LoadOptions> {
    let preset = match normalize {
        None => None,
        Some("cifar10") => Some(NormalizePreset::Cifar10),
        Some("imagenet") => Some(NormalizePreset::Imagenet),
        Some(other) => return Err(error(format!("normalize={other:?}: expected cifar10 or imagenet"))),
    };
    let block = block.map(|b| b.parse::<BlockForm>()).transpose().map_err(error)?;
    Ok(LoadOptions { mean, std, preset, block, arch: None })
}

/// Loads a checkpoint from tensors (name → float32 array, a `state_dict`), with metadata as
/// a file's `__metadata__` would hold; `name` stands for the file in messages.
#[pyfunction]
#[pyo3(signature = (names, arrays, metadata, name, **options),
    text_signature = "(names, arrays, metadata, name, *, mean=None, std=None, normalize=None, block=None)")]
fn load_tensors(
    names: Vec<String>,
    arrays: Vec<PyReadonlyArrayDyn<'_, f32>>,
    metadata: HashMap<String, String>,
    name: String,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Network> {
    let mut keywords = Keywords::new("load_tensors()", options);
    let mean: Option<[f32; 3]> = keywords.take("mean", None);
    let std: Option<[f32; 3]> = keywords.take("std", None);
    let normalize: Option<String> = keywords.take("normalize", None);
    let block: Option<String> = keywords.take("block", None);
    keywords.finish()?;
    if names.len() != arrays.len() {
        return Err(error(format!("{} names for {} arrays", names.len(), arrays.len())));
    }
    let mut raw = Vec::with_capacity(arrays.len());
    for (tensor, array) in names.iter().zip(&arrays) {
        let values = array.as_slice().map_err(|_| error(format!("{name}: tensor {tensor} is not contiguous")))?;
        raw.push((
            tensor.clone(),
            array.shape().to_vec(),
            values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        ));
    }
    let views = raw
        .iter()
        .map(|(tensor, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|view| (tensor.clone(), view))
                .map_err(|e| error(format!("{name}: tensor {tensor}: {e}")))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| error(format!("{name}: {e}")))?;
    let options = load_options(mean, std, normalize.as_deref(), block.as_deref())?;
    Ok(Network { inner: model::load_bytes(name, bytes, &options).map_err(error)? })
}

/// Reads a converted-SNN file.
#[pyfunction]
fn load_snn(path: PathBuf) -> PyResult<SpikingNetwork> {
    let file = read_snn(&path).map_err(error)?;
    let rgb = |values: &[f32], what: &str| -> PyResult<[f32; 3]> {
        values
            .try_into()
            .map_err(|_| error(format!("{}: normalization {what} has {} channels", path.display(), values.len())))
    };
    let normalization =
        Normalization::new(rgb(&file.normalization.mean, "mean")?, rgb(&file.normalization.std, "std")?)
            .map_err(error)?;
    Ok(SpikingNetwork { inner: file.snn, normalization, source: path.display().to_string() })
}

/// The images a job runs on, given as the keyword arguments `data=None, images=None,
/// labels=None, limit=None`: a CIFAR file (its first `limit`), or uint8 `N×3×32×32` images
/// and their labels.
struct ImageSource<'py> {
    data: Option<PathBuf>,
    images: Option<PyReadonlyArrayDyn<'py, u8>>,
    labels: Option<PyReadonlyArray1<'py, i64>>,
    limit: Option<usize>,
}

impl<'py> ImageSource<'py> {
    /// Takes `data`, `images`, `labels` and `limit`, in that order.
    fn take(keywords: &mut Keywords<'py>) -> Self {
        ImageSource {
            data: keywords.take("data", None),
            images: keywords.take("images", None),
            labels: keywords.take("labels", None),
            limit: keywords.take("limit", None),
        }
    }

    /// The images, for a network of `num_classes` classes, and their name in reports.
    fn open(self, num_classes: usize) -> PyResult<(Dataset, String)> {
        let ImageSource { data, images, labels, limit } = self;
        match (data, images, labels) {
            (Some(path), None, None) => {
                let dataset = Dataset::open_first(&path, None, limit).map_err(error)?;
                Ok((dataset, path.display().to_string()))
            }
            (None, Some(images), Some(labels)) => {
                let shape = images.shape().to_vec();
                if shape.len() != 4 || shape[1..] != [3, 32, 32] {
                    return Err(error(format!("images: shape {shape:?}, expected N×3×32×32 (uint8, RGB planes)")));
                }
                let pixels = images.as_slice().map_err(|_| error("images: not a contiguous array"))?;
                let labels = labels.as_slice().map_err(|_| error("labels: not a contiguous array"))?;
                if labels.len() != shape[0] {
                    return Err(error(format!("{} labels for {} images", labels.len(), shape[0])));
                }
                if let Some((index, label)) =
                    labels.iter().enumerate().find(|(_, &l)| l < 0 || l as usize >= num_classes)
                {
                    return Err(error(format!(
                        "labels[{index}] = {label} is not a class of a {num_classes}-class network"
                    )));
                }
                let count = limit.unwrap_or(shape[0]).min(shape[0]);
                let format = if num_classes == 100 { CifarFormat::Cifar100 } else { CifarFormat::Cifar10 };
                let dataset = Dataset {
                    labels: labels[..count].iter().map(|&l| l as u16).collect(),
                    pixels: pixels[..count * IMAGE_BYTES].to_vec(),
                    num_classes,
                    format,
                    files: vec![PathBuf::from("<numpy images>")],
                };
                Ok((dataset, "<numpy images>".to_string()))
            }
            _ => Err(error("give data=PATH, or images= and labels= (numpy arrays), not both")),
        }
    }
}

/// Every network's accuracy after each of `timesteps` steps on the same images, beside the
/// ANN's; returns a dict of numpy arrays and plain values.
#[pyfunction]
#[pyo3(signature = (networks, timesteps, **options),
    text_signature = "(networks, timesteps, *, data=None, images=None, labels=None, limit=None, backend=\"auto\", \
        batch=None, constant_currents=False, source=None, progress=None, e_mac_pj=4.6, e_ac_pj=0.9)")]
fn sweep<'py>(
    py: Python<'py>,
    networks: Vec<PyRef<'py, SpikingNetwork>>,
    timesteps: usize,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut keywords = Keywords::new("sweep()", options);
    let images = ImageSource::take(&mut keywords);
    let backend: String = keywords.take("backend", "auto".to_string());
    let batch: Option<usize> = keywords.take("batch", None);
    let constant_currents: bool = keywords.take("constant_currents", false);
    let source: Option<PyRef<'py, Network>> = keywords.take("source", None);
    let progress: Option<Py<PyAny>> = keywords.take("progress", None);
    let e_mac_pj: f64 = keywords.take("e_mac_pj", spikeconv::convert::energy::E_MAC_PJ);
    let e_ac_pj: f64 = keywords.take("e_ac_pj", spikeconv::convert::energy::E_AC_PJ);
    keywords.finish()?;
    let energy = spikeconv::convert::energy::EnergyModel::new(e_mac_pj, e_ac_pj).map_err(error)?;
    let Some(first) = networks.first() else { return Err(error("sweep: no network given")) };
    if timesteps == 0 {
        return Err(error("sweep: timesteps must be at least 1"));
    }
    let normalization = first.normalization;
    let (dataset, data_name) = images.open(first.inner.graph.num_classes())?;
    let backend = open_backend(&backend)?;
    let snns: Vec<LibSnn> = networks.iter().map(|n| n.inner.clone()).collect();
    let total = (dataset.len() * snns.len()) as u64;
    let failed: RefCell<Option<PyErr>> = RefCell::new(None);
    let job = SweepJob {
        networks: &snns,
        normalization: &normalization,
        source: source.as_ref().map(|s| &s.inner),
        model: first.source.clone(),
        data: data_name,
        dataset: &dataset,
        timesteps,
        batch,
        constant_currents,
        energy,
    };
    let outcome = sweep_job(&backend, &job, |done, method| {
        if let (Some(callback), true) = (&progress, failed.borrow().is_none()) {
            if let Err(e) = callback.call1(py, (method, done as u64, total)) {
                *failed.borrow_mut() = Some(e);
            }
        }
    });
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    let outcome = outcome.map_err(error)?;
    let report = &outcome.report;
    let out = PyDict::new(py);
    out.set_item("images", report.images)?;
    out.set_item("timesteps", timesteps)?;
    out.set_item("backend", &report.backend)?;
    out.set_item("device", &report.adapter)?;
    out.set_item("ann_correct", report.ann_correct)?;
    out.set_item("ann_accuracy", report.ann_correct as f64 / report.images.max(1) as f64)?;
    if let Some(q) = &report.quantized_ann {
        out.set_item("quantized_ann_correct", q.correct)?;
        out.set_item("quantized_ann_activation", &q.activation)?;
    }
    let methods: Vec<String> = report.curves.iter().map(|c| c.label()).collect();
    out.set_item("methods", methods)?;
    let correct: Vec<Vec<i64>> = report.curves.iter().map(|c| c.correct.iter().map(|&v| v as i64).collect()).collect();
    let accuracy: Vec<Vec<f64>> = report
        .curves
        .iter()
        .map(|c| c.correct.iter().map(|&v| v as f64 / report.images.max(1) as f64).collect())
        .collect();
    out.set_item("correct", PyArray2::from_vec2(py, &correct).map_err(error)?)?;
    out.set_item("accuracy", PyArray2::from_vec2(py, &accuracy).map_err(error)?)?;
    let firing: Vec<Bound<'py, PyArray1<f64>>> = report
        .curves
        .iter()
        .map(|c| PyArray1::from_vec(py, c.layers.iter().map(|l| l.firing_rate).collect()))
        .collect();
    out.set_item("firing_rates", firing)?;
    let synops: Vec<f64> = report.curves.iter().map(|c| c.synops_per_image()).collect();
    out.set_item("synops_per_image", PyArray1::from_vec(py, synops))?;
    // Estimated energy per image after T steps, in µJ (docs/METHOD.md, "Energy").
    let snn_energy: Vec<f64> = (report.curves.iter())
        .map(|c| c.operations.map_or(f64::NAN, |o| report.energy_model.microjoules(&o)))
        .collect();
    out.set_item("energy_uj_per_image", PyArray1::from_vec(py, snn_energy))?;
    let ann_energy = report.ann_operations.map_or(f64::NAN, |o| report.energy_model.microjoules(&o));
    out.set_item("ann_energy_uj_per_image", ann_energy)?;
    if constant_currents {
        let twins: Vec<Option<usize>> = report.curves.iter().map(|c| c.constant_current_correct).collect();
        out.set_item("constant_current_correct", twins)?;
    }
    out.set_item("labels", PyArray1::from_vec(py, outcome.predictions.labels.iter().map(|&l| l as i64).collect()))?;
    out.set_item(
        "ann_predictions",
        PyArray1::from_vec(py, outcome.predictions.ann.iter().map(|&p| p as i64).collect()),
    )?;
    let predictions: Vec<Vec<i64>> =
        outcome.predictions.networks.iter().map(|(_, p)| p.iter().map(|&v| v as i64).collect()).collect();
    out.set_item("predictions", PyArray2::from_vec2(py, &predictions).map_err(error)?)?;
    out.set_item("seconds", report.seconds)?;
    Ok(out)
}

/// The ANN's accuracy on the images; a dict.
#[pyfunction]
#[pyo3(signature = (network, **options),
    text_signature = "(network, *, data=None, images=None, labels=None, limit=None, backend=\"auto\", batch=None)")]
fn ann<'py>(
    py: Python<'py>,
    network: PyRef<'py, Network>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut keywords = Keywords::new("ann()", options);
    let images = ImageSource::take(&mut keywords);
    let backend: String = keywords.take("backend", "auto".to_string());
    let batch: Option<usize> = keywords.take("batch", None);
    keywords.finish()?;
    let (dataset, data) = images.open(network.inner.graph.num_classes())?;
    let backend = open_backend(&backend)?;
    // The same job as `spikeconv ann`: the BN-folded network, the backend's batch.
    let job = AnnJob { network: &network.inner, dataset: &dataset, data, batch };
    let outcome = ann_job(&backend, &job, |_| {}).map_err(error)?;
    let report = &outcome.report;
    let out = PyDict::new(py);
    out.set_item("images", report.images)?;
    out.set_item("correct", report.correct)?;
    out.set_item("accuracy", report.accuracy)?;
    out.set_item("predictions", PyArray1::from_vec(py, outcome.predictions.iter().map(|&p| p as i64).collect()))?;
    out.set_item("backend", &report.backend)?;
    out.set_item("device", &report.adapter)?;
    Ok(out)
}

/// The backends and adapters this machine offers, as `spikeconv devices` lists them.
#[pyfunction]
fn devices() -> Vec<String> {
    let mut list = vec![Backend::open(BackendChoice::Cpu, None).map(|b| b.describe()).unwrap_or_default()];
    list.extend(
        spikeconv::backends::wgpu::list_adapters()
            .into_iter()
            .map(|a| format!("{} ({}, {})", a.name, a.backend, a.device_type)),
    );
    list
}

#[pymodule]
fn _spikeconv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SpikeconvError", m.py().get_type::<SpikeconvError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Network>()?;
    m.add_class::<SpikingNetwork>()?;
    m.add_function(wrap_pyfunction!(load_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(load_tensors, m)?)?;
    m.add_function(wrap_pyfunction!(load_snn, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(ann, m)?)?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    Ok(())
}
