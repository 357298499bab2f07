//! What `bench` measured: the SNN's and the ANN's throughput on one backend, with the work
//! behind it (dense-equivalent MACs, synaptic operations, firing rate, how convolutions ran).

use std::fmt::Write;

use serde::Serialize;

use super::profile::{kernel_table, KernelTime};

/// What one benchmark run measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub model: String,
    pub backend: String,
    pub device: String,
    pub threshold_method: String,
    pub timesteps: usize,
    pub images: usize,
    pub batch: usize,
    /// Convolutions, linear layers and IF layers of the network.
    pub layers: usize,
    pub seconds: f64,
    pub image_timesteps_per_second: f64,
    /// Dense-equivalent multiply-accumulates per second: the ANN's MACs per image times
    /// the image-timesteps simulated, over the time taken.
    pub gmac_per_second: f64,
    /// With a peak given (`--peak-tflops`): 2 × GMAC/s over the peak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraction_of_peak: Option<f64>,
    /// The peak given, in TFLOP/s (not in the JSON: `fraction_of_peak` is).
    #[serde(skip)]
    pub peak_tflops: Option<f64>,
    /// Synaptic operations (spikes times fan-out) per image and timestep.
    pub synops_per_image_timestep: f64,
    /// Mean firing rate over all IF neurons and steps.
    pub firing_rate: f64,
    /// Estimated energy per image of the SNN over T steps and of the ANN, in µJ
    /// (docs/METHOD.md, "Energy").
    pub snn_energy_uj_per_image: f64,
    pub ann_energy_uj_per_image: f64,
    /// CPU backend: per-timestep convolutions that ran event-driven and dense, summed over
    /// chunks, and the mean input density they saw.
    pub event_convolutions: Option<usize>,
    /// wgpu backend: GPU dispatches per chunk of `batch` images (all timesteps).
    pub dispatches_per_chunk: Option<usize>,
    pub dense_convolutions: Option<usize>,
    pub mean_input_density: Option<f64>,
    pub correct_at_t: usize,
    pub ann_batch: usize,
    pub ann_images_per_second: f64,
    pub ann_correct: usize,
    /// `--profile`: GPU time of one chunk per kernel combination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Vec<KernelTime>>,
}

impl BenchReport {
    /// The summary `bench` prints.
    pub fn to_text(&self) -> String {
        let (images, batch, timesteps) = (self.images, self.batch, self.timesteps);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} on {} ({}), {}, T = {timesteps}, {images} images, batch {batch}\n\
             SNN  {:.1} image-timesteps/s ({:.1} GMAC/s dense-equivalent, {:.2} M synops per image-timestep, firing rate {:.2} %), {}/{images} correct at T\n\
             ANN  {:.1} images/s (batch {}), {}/{images} correct",
            self.model,
            self.backend,
            self.device,
            self.threshold_method,
            self.image_timesteps_per_second,
            self.gmac_per_second,
            self.synops_per_image_timestep / 1e6,
            100.0 * self.firing_rate,
            self.correct_at_t,
            self.ann_images_per_second,
            self.ann_batch,
            self.ann_correct,
        );
        let _ = writeln!(
            out,
            "     estimated energy per image: SNN {:.2} µJ over T, ANN {:.2} µJ (memory traffic not counted)",
            self.snn_energy_uj_per_image, self.ann_energy_uj_per_image
        );
        if let (Some(event), Some(dense), Some(density)) =
            (self.event_convolutions, self.dense_convolutions, self.mean_input_density)
        {
            let _ = writeln!(
                out,
                "     convolutions over spikes: {event} event-driven, {dense} dense; mean input density {density:.3}"
            );
        }
        if let (Some(fraction), Some(peak)) = (self.fraction_of_peak, self.peak_tflops) {
            let _ = writeln!(
                out,
                "     {:.2} % of the given {peak} TFLOP/s peak (2 FLOPs per dense-equivalent MAC)",
                100.0 * fraction
            );
        }
        if let Some(dispatches) = self.dispatches_per_chunk {
            let _ =
                writeln!(out, "     {dispatches} GPU dispatches per chunk of {batch} images ({} layers)", self.layers);
        }
        if let Some(profile) = &self.profile {
            let title = format!("GPU time of one chunk of {batch} images × {timesteps} steps, by kernel");
            out.push_str(&kernel_table(&title, profile));
        }
        out
    }
}
