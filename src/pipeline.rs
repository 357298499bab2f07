//! The conversion pipeline: BN folding → calibration on training images → thresholds per
//! method → (ttrbr) threshold tuning or (baselines) bias correction → named spiking
//! networks, on any [`Backend`]. Commands map their flags onto [`ConversionOptions`] and
//! watch it through a [`Progress`]; the library never prints.

use crate::backends::cpu::constant_current::ConstantCurrentTwin;
use crate::backends::Backend;
use crate::convert::bias_correction::BIAS_CORRECTION_ROUNDS;
use crate::convert::fold_batch_norm;
use crate::convert::neuron::Neuron;
use crate::convert::pooling::{self, MaxPoolStrategy};
use crate::convert::snn::{convert_from, validate_v_init, SpikingNetwork, DEFAULT_V_INIT};
use crate::convert::stats::DEFAULT_BINS;
use crate::convert::threshold::{method_name, ThresholdMethod};
use crate::data::cifar::Dataset;
use crate::engine::{AnnAccuracy, EvaluationSet, Walker};
use crate::model::Network;
use crate::report::{TuningReport, TuningRun};
use crate::tuning::tune::{correct_bias, tune, TuneOptions};
use crate::Error;

/// Default number of calibration images.
pub const DEFAULT_CALIB_IMAGES: usize = 2048;
/// Default number of calibration images threshold tuning runs on.
pub const DEFAULT_TUNE_IMAGES: usize = 128;
/// Largest calibration batch on a GPU when none is asked for: enough to fill a GPU, small
/// enough that progress shows on a software adapter.
pub const DEFAULT_MAX_GPU_BATCH: usize = 256;

/// How a checkpoint is converted.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversionOptions {
    /// Threshold methods, one network each (per tuning T for the tuned ones).
    pub methods: Vec<ThresholdMethod>,
    /// Initial membrane as a fraction of the threshold, in [0, 1].
    pub v_init: f32,
    /// Calibration images taken from the start of the calibration set.
    pub calib_images: usize,
    /// Histogram bins of the calibration statistics.
    pub bins: usize,
    /// Images per ANN batch during calibration (`None`: the backend's choice).
    pub batch: Option<usize>,
    /// Timesteps the tuned methods (and bias correction) tune for, one network each.
    pub tune_timesteps: Vec<usize>,
    /// Calibration images tuning and bias correction run on (fewer when they do not fit).
    pub tune_images: usize,
    /// Tuning also chooses each layer's initial membrane fraction.
    pub tune_v_init: bool,
    /// Give each IF layer a bias current cancelling its channels' mean error; baseline
    /// methods then give their plain and their corrected network.
    pub bias_correction: bool,
    /// With bias correction and a tuned method: search thresholds again under the bias.
    pub refit_thresholds: bool,
    /// Rounds of each layer's bias correction.
    pub bias_rounds: usize,
    /// What the network's max pools become ([`crate::convert::pooling`]).
    pub max_pooling: MaxPoolStrategy,
    /// The neuron of every IF layer ([`crate::convert::neuron`]); tuning and bias
    /// correction measure the same neuron.
    pub neuron: Neuron,
}

impl Default for ConversionOptions {
    fn default() -> Self {
        Self {
            methods: vec![ThresholdMethod::Percentile(99.9)],
            v_init: DEFAULT_V_INIT,
            calib_images: DEFAULT_CALIB_IMAGES,
            bins: DEFAULT_BINS,
            batch: None,
            tune_timesteps: Vec::new(),
            tune_images: DEFAULT_TUNE_IMAGES,
            tune_v_init: false,
            bias_correction: false,
            refit_thresholds: false,
            bias_rounds: BIAS_CORRECTION_ROUNDS,
            max_pooling: MaxPoolStrategy::default(),
            neuron: Neuron::default(),
        }
    }
}

impl ConversionOptions {
    /// Checks the combination: options that need a tuned method have one, tuning has a T,
    /// `v_init` is a fraction, counts are positive. Messages name the command-line flags.
    pub fn validate(&self) -> Result<(), Error> {
        let usage = |message: String| Err(Error::Usage(message));
        let tuned = self.methods.iter().any(|m| m.is_tuned());
        if self.methods.is_empty() {
            return usage("--threshold: no threshold method given".into());
        }
        for (asked, flag) in [(self.tune_v_init, "--tune-v-init"), (self.refit_thresholds, "--refit-thresholds")] {
            if asked && !tuned {
                return usage(format!("{flag}: no tuned method (ttrbr, channel-ttrbr) among the threshold methods"));
            }
        }
        if self.refit_thresholds && !self.bias_correction {
            return usage("--refit-thresholds needs --bias-correction".into());
        }
        if (self.bias_correction || tuned) && self.tune_timesteps.is_empty() {
            return usage("tuned methods and --bias-correction need --tune-timesteps T".into());
        }
        if self.tune_timesteps.contains(&0) {
            return usage("--tune-timesteps: at least one timestep".into());
        }
        if self.bias_correction && self.bias_rounds == 0 {
            return usage("--bias-rounds: at least one round".into());
        }
        if self.calib_images == 0 || self.tune_images == 0 || self.bins == 0 {
            return usage("--calib-images, --tune-images and the histogram bins must be at least 1".into());
        }
        validate_v_init(self.v_init).map_err(|e| Error::Usage(format!("--v-init: {e} (a fraction of the threshold)")))
    }

    fn tune_options(&self, method: ThresholdMethod) -> TuneOptions {
        TuneOptions {
            per_channel_thresholds: method.is_per_channel(),
            tune_v_init: self.tune_v_init,
            correct_bias: self.bias_correction,
            refit_thresholds: self.refit_thresholds,
            bias_rounds: self.bias_rounds,
        }
    }
}

/// How the pipeline reports what it is doing; a command draws progress bars from it.
pub trait Progress {
    /// A stage begins that will count to `total` (`unit` says what is counted).
    fn start(&mut self, unit: &str, total: u64);
    /// The stage has done `done` of its total.
    fn advance(&mut self, done: u64);
    /// The stage is over.
    fn finish(&mut self);
    /// Something the user should know (e.g. fewer tuning images than asked for).
    fn note(&mut self, message: &str);
}

/// A [`Progress`] that ignores everything (tests, library callers without a terminal).
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
    fn note(&mut self, _: &str) {}
}

/// What the pipeline produced: every network, in method order (a baseline's corrected
/// networks right after it), and what tuning and bias correction did to every layer.
#[derive(Clone, Debug)]
pub struct Conversion {
    pub networks: Vec<SpikingNetwork>,
    pub tuning: TuningReport,
}

/// A network's name with its neuron where that is not the plain IF neuron
/// (`channel-ttrbr+bias+signed`): tables, CSV columns, plots and paired comparisons then
/// tell the two neurons' networks apart.
fn with_neuron(name: String, neuron: Neuron) -> String {
    match neuron {
        Neuron::If => name,
        signed => format!("{name}+{signed}"),
    }
}

/// Converts `network` with every method of `options`, calibrating on the first
/// `options.calib_images` images of `calib` (which must hold that many) on `backend`.
pub fn convert(
    backend: &Backend,
    network: &Network,
    calib: &Dataset,
    options: &ConversionOptions,
    progress: &mut dyn Progress,
) -> Result<Conversion, Error> {
    options.validate()?;
    if let Some(method) = options.methods.iter().find(|m| m.uses_trained()) {
        if network.trained.is_none() {
            return Err(Error::Usage(format!(
                "{}: --threshold {method} needs a quantization-aware checkpoint (*.lambda tensors beside its ReLUs, \
                 e.g. from python/finetune_restructured.py --activation qcfs:L); this one has none",
                network.path.display()
            )));
        }
    }
    if calib.len() < options.calib_images {
        let files: Vec<String> = calib.files.iter().map(|f| f.display().to_string()).collect();
        return Err(Error::Usage(format!(
            "{}: holds {} images, fewer than --calib-images {}",
            files.join(", "),
            calib.len(),
            options.calib_images
        )));
    }
    let images = options.calib_images;
    let (folded, max_pooling) = pooling::apply(&fold_batch_norm(&network.graph), options.max_pooling);
    if let Some(strategy) = max_pooling {
        progress.note(&strategy.describe(pooling::max_pools(&network.graph)));
    }
    if options.neuron != Neuron::If {
        progress.note(options.neuron.describe());
    }
    let batch = backend.ann_batch(&folded, options.batch, DEFAULT_MAX_GPU_BATCH, images)?;
    progress.start("calibration images (2 passes)", 2 * images as u64);
    let stats = backend
        .calibrate(&folded, EvaluationSet::new(calib, &network.normalization, images), batch, options.bins, |done| {
            progress.advance(done as u64)
        })
        .map_err(|e| e.during(format!("calibrating thresholds on the {} backend", backend.name())))?;
    progress.finish();

    let walker = backend.walker();
    let mut networks = Vec::with_capacity(options.methods.len());
    let mut tuning = TuningReport::default();
    for &method in &options.methods {
        let mut snn = convert_from(&folded, method, &stats, network.trained.as_ref(), options.v_init)?;
        snn.max_pooling = max_pooling;
        snn.neuron = options.neuron;
        snn.threshold_method = with_neuron(snn.threshold_method, options.neuron);
        let tuned = method.is_tuned();
        if !tuned && !options.bias_correction {
            networks.push(snn);
            continue;
        }
        let name = with_neuron(
            method_name(
                method,
                options.tune_v_init && tuned,
                options.bias_correction.then_some(options.bias_rounds),
                options.refit_thresholds && tuned,
            ),
            options.neuron,
        );
        let mut derived = Vec::new();
        for &timesteps in &options.tune_timesteps {
            let wanted = options.tune_images.min(options.calib_images);
            let (images, count) = tuning_images(
                walker,
                &snn,
                EvaluationSet::new(calib, &network.normalization, wanted),
                timesteps,
                progress,
            )?;
            let stage = format!(
                "{} ({name}, T = {timesteps}) on the {} backend",
                if tuned { "tuning thresholds" } else { "bias correction" },
                backend.name()
            );
            progress.start(
                &format!("layers {} ({name}, T = {timesteps})", if tuned { "tuned" } else { "corrected" }),
                snn.layers.len() as u64,
            );
            let advance = |done: usize| progress.advance(done as u64);
            let result = if tuned {
                tune(walker, &snn, &images, count, timesteps, options.tune_options(method), advance)
            } else {
                correct_bias(walker, &snn, &images, count, timesteps, options.bias_rounds, advance)
            };
            let (mut network, layers) = result.map_err(|e| Error::from(e).during(stage))?;
            progress.finish();
            network.threshold_method = name.clone();
            tuning.runs.push(TuningRun { method: name.clone(), timesteps, layers });
            derived.push(network);
        }
        if !tuned {
            networks.push(snn);
        }
        networks.extend(derived);
    }
    Ok(Conversion { networks, tuning })
}

/// The first `wanted` calibration images, normalized, as many as one layer-major walk over
/// `timesteps` fits (with a note when that is fewer).
fn tuning_images(
    walker: &dyn Walker,
    snn: &SpikingNetwork,
    set: EvaluationSet<'_>,
    timesteps: usize,
    progress: &mut dyn Progress,
) -> Result<(Vec<f32>, usize), Error> {
    let fits = walker.max_images(snn, timesteps);
    let mut count = set.images();
    if count > fits {
        progress.note(&format!(
            "tuning on {fits} images instead of {count}: their values for {timesteps} timesteps fill the walk's memory"
        ));
        count = fits;
    }
    if count == 0 {
        return Err(Error::Usage(format!(
            "tuning for {timesteps} timesteps: not even one image fits the walk's memory"
        )));
    }
    let mut images = Vec::new();
    set.batch(0, count, &mut images);
    Ok((images, count))
}

/// The accuracy of a quantization-aware network's ANN with the activation it was trained
/// with (QCFS with L levels: `λ · clip(⌊x·L/λ + ½⌋, 0, L) / L` at every ReLU), on the first
/// `images` of `dataset`; `None` for a network without trained λ or without a level count.
///
/// It is computed as what it equals exactly: the constant-current twin, read after L steps,
/// of the network converted with `trained` thresholds (θ = λ) and initial membranes θ/2
/// (an IF neuron fed a constant x for L steps fires `clip(⌊x·L/λ + ½⌋, 0, L)` times), on the
/// CPU kernels. Returns the activation's name (`qcfs:L`) and the accuracy.
pub fn quantized_ann_accuracy(
    network: &Network,
    dataset: &Dataset,
    images: usize,
    batch: usize,
) -> Result<Option<(String, AnnAccuracy)>, Error> {
    let Some(trained) = &network.trained else { return Ok(None) };
    let Some(levels) = trained.levels else { return Ok(None) };
    let folded = fold_batch_norm(&network.graph);
    let snn = convert_from(&folded, ThresholdMethod::Trained, &[], Some(trained), DEFAULT_V_INIT)?;
    let twin = ConstantCurrentTwin::new(&snn, levels)?;
    Ok(Some((
        trained.describe(),
        twin.evaluate(EvaluationSet::new(dataset, &network.normalization, images), batch.max(1)),
    )))
}
