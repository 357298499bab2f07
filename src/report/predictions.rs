//! Every image's predicted class under every network of a sweep: what `sweep --predictions`
//! writes. Accuracy totals hide which images changed; with predictions side by side two
//! methods can be compared on the same images (a paired comparison: images one gets right
//! and the other wrong), and each against the ANN.

use std::fmt::Write;

use super::sweep::csv_field;

/// Predicted classes of the same images, in dataset order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PredictionTable {
    /// Timesteps the networks' predictions were read after.
    pub timesteps: usize,
    pub labels: Vec<usize>,
    pub ann: Vec<usize>,
    /// One column per network: its name (e.g. `channel-ttrbr (T=16)`) and its predictions.
    pub networks: Vec<(String, Vec<usize>)>,
}

impl PredictionTable {
    /// One row per image: `image,label,ann,` then one column per network, named
    /// `<network> t=<timesteps>`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("image,label,ann");
        for (name, _) in &self.networks {
            let _ = write!(out, ",{}", csv_field(&format!("{name} t={}", self.timesteps)));
        }
        out.push('\n');
        for (image, (label, ann)) in self.labels.iter().zip(&self.ann).enumerate() {
            let _ = write!(out, "{image},{label},{ann}");
            for (_, predictions) in &self.networks {
                let _ = write!(out, ",{}", predictions[image]);
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_row_per_image_and_a_column_per_network() {
        let table = PredictionTable {
            timesteps: 8,
            labels: vec![3, 1],
            ann: vec![3, 2],
            networks: vec![("ttrbr (T=8)".into(), vec![3, 1]), ("max".into(), vec![0, 2])],
        };
        assert_eq!(table.to_csv(), "image,label,ann,ttrbr (T=8) t=8,max t=8\n0,3,3,3,0\n1,1,2,1,2\n");
    }
}
