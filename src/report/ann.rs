//! The result of evaluating an ANN on a dataset.

use serde::Serialize;

/// Accuracy of an ANN on a dataset, as printed by `spikeconv ann`.
#[derive(Clone, Debug, Serialize)]
pub struct AnnReport {
    /// Path of the checkpoint.
    pub model: String,
    /// Path of the dataset.
    pub data: String,
    /// Backend that ran the network: `cpu` or `gpu`.
    pub backend: String,
    /// The device that ran it, e.g. `cpu (2 threads, AVX-512 16-lane f32)` or
    /// `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`.
    pub adapter: String,
    /// The architecture read from the checkpoint's tensors, e.g. `vgg16`, `resnet110`.
    pub arch: String,
    /// The same in words, e.g. `ResNet-110 (restructured blocks)`.
    pub network: String,
    /// Depth read from the checkpoint's tensors.
    pub depth: usize,
    pub num_classes: usize,
    /// Images evaluated.
    pub images: usize,
    /// Images whose arg-max logit equals the label.
    pub correct: usize,
    /// `correct / images`, in [0, 1].
    pub accuracy: f64,
    /// Images per batch.
    pub batch: usize,
    /// Wall-clock seconds of the evaluation (loading and compilation excluded).
    pub seconds: f64,
    pub images_per_second: f64,
}

impl AnnReport {
    /// Human-readable summary for stdout.
    pub fn to_text(&self) -> String {
        format!(
            "model     {}\ndata      {}\nbackend   {}: {}\nnetwork   {} ({} classes)\naccuracy  {}/{} = {:.2} %\ntime      {:.1} s ({:.1} images/s, batch {})",
            self.model,
            self.data,
            self.backend,
            self.adapter,
            self.network,
            self.num_classes,
            self.correct,
            self.images,
            100.0 * self.accuracy,
            self.seconds,
            self.images_per_second,
            self.batch
        )
    }
}
