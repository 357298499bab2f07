//! The analysis job: every IF layer's quantization and deviation errors, input variance and
//! firing rate for each converted network, measured layer by layer on calibration images
//! that tuning did not see ([`crate::tuning::analyze`]).

use crate::backends::Backend;
use crate::convert::snn::SpikingNetwork;
use crate::data::cifar::Dataset;
use crate::model::BlockForm;
use crate::model::Network;
use crate::pipeline::Progress;
use crate::report::analysis::{AnalysisReport, NetworkErrors};
use crate::tuning::analyze::analyze as analyze_layers;
use crate::Error;

/// What to analyse: converted networks of one checkpoint on the calibration images after
/// the first `first` (those tuning used).
pub struct AnalyzeJob<'a> {
    pub networks: &'a [SpikingNetwork],
    /// The checkpoint they were converted from (its normalization and block form).
    pub network: &'a Network,
    /// The calibration images; `calib_name` names them in the report.
    pub calib: &'a Dataset,
    pub calib_name: String,
    /// Images skipped at the start of `calib` (the tuning images).
    pub first: usize,
    /// Images to analyse (fewer when their values for every timestep do not fit one walk,
    /// with a note).
    pub images: usize,
    pub timesteps: usize,
}

/// How many images after `first` one walk of `networks` can analyse on `backend`, at most
/// `wanted`: what to read of the calibration file.
pub fn analysable_images(backend: &Backend, networks: &[SpikingNetwork], timesteps: usize, wanted: usize) -> usize {
    networks.first().map_or(0, |snn| wanted.min(backend.walker().max_images(snn, timesteps)))
}

/// Runs the analysis on `backend`; `progress` counts layers over all networks and gets a
/// note when fewer images are analysed than asked for.
pub fn analyze(backend: &Backend, job: &AnalyzeJob<'_>, progress: &mut dyn Progress) -> Result<AnalysisReport, Error> {
    let AnalyzeJob { networks, network, calib, first, timesteps, .. } = *job;
    let Some(snn) = networks.first() else { return Err(Error::Usage("analyze: no network to analyse".into())) };
    if calib.len() <= first {
        return Err(Error::Usage(format!(
            "{}: holds {} images; analysis takes those after the first --tune-images {first}",
            job.calib_name,
            calib.len()
        )));
    }
    let walker = backend.walker();
    let fits = walker.max_images(snn, timesteps);
    let mut count = job.images.min(calib.len() - first);
    if count > fits {
        progress.note(&format!(
            "analysing {fits} images instead of {}: their values for {timesteps} timesteps fill the walk's memory",
            job.images
        ));
        count = fits;
    }
    if count == 0 {
        return Err(Error::Usage(format!(
            "analysing {timesteps} timesteps: not even one image fits the walk's memory"
        )));
    }
    let mut images = Vec::new();
    calib.normalized_batch(first, count, &network.normalization, &mut images);

    let layers: usize = networks.iter().map(|n| n.layers.len()).sum();
    progress.start("layers analysed", layers as u64);
    let mut results = Vec::with_capacity(networks.len());
    let mut done_before = 0;
    for snn in networks {
        let rows = analyze_layers(walker, snn, &images, count, timesteps, |done| {
            progress.advance((done_before + done) as u64)
        })
        .map_err(|e| {
            Error::from(e).during(format!("analysing {} on the {} backend", snn.threshold_method, backend.name()))
        })?;
        done_before += snn.layers.len();
        results.push(NetworkErrors {
            threshold_method: snn.threshold_method.clone(),
            tuned_for_timesteps: snn.tuned_for_timesteps,
            v_init: snn.v_init,
            block: network.info.block().map_or("none", BlockForm::name).into(),
            layers: rows,
        });
    }
    progress.finish();
    Ok(AnalysisReport {
        model: network.path.display().to_string(),
        calib: job.calib_name.clone(),
        backend: backend.name().to_string(),
        adapter: backend.describe(),
        first_image: first,
        images: count,
        timesteps,
        networks: results,
    })
}
