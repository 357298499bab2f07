//! Every image's predicted class under every network of a sweep: what `sweep --predictions`
//! writes. Accuracy totals hide which images changed; with predictions side by side two
//! methods can be compared on the same images (a paired comparison: images one gets right
//! and the other wrong), and each against the ANN.

use std::fmt::Write;

use super::sweep::csv_field;

/// Two prediction columns on the same images: how many images each gets right that the
/// other gets wrong, and the exact McNemar test of "they are equally accurate".
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PairedComparison {
    pub a: String,
    pub b: String,
    pub both_right: usize,
    pub only_a_right: usize,
    pub only_b_right: usize,
    pub both_wrong: usize,
    /// Two-sided exact McNemar p-value ([`mcnemar_exact`]).
    pub p_value: f64,
}

/// Two-sided exact McNemar test: of the `only_a + only_b` images on which two classifiers
/// disagree in correctness, under "equally accurate" each is equally likely to favour
/// either, so the smaller count is binomial(n, 1/2); p = 2 P(X <= min), at most 1. This is
/// the comparison that fits two methods run on the same images: the images both get right
/// or both get wrong say nothing about which is better.
pub fn mcnemar_exact(only_a: usize, only_b: usize) -> f64 {
    let n = only_a + only_b;
    let k = only_a.min(only_b);
    // ln C(n, i) − n ln 2, summed as probabilities (no overflow for large n).
    let mut ln_choose = 0.0f64;
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose - ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// Predicted classes of the same images, in dataset order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PredictionTable {
    /// Timesteps the networks' predictions were read after.
    pub timesteps: usize,
    pub labels: Vec<usize>,
    pub ann: Vec<usize>,
    /// One column per network: its name (e.g. `channel-ttrbr (T=16)`) and its predictions,
    /// one per label (as for `ann`).
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

    /// Reads what [`PredictionTable::to_csv`] writes; `Err` says what is wrong (the caller
    /// names the file).
    pub fn from_csv(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
        let (_, header) = lines.next().ok_or("empty file: expected a header `image,label,ann,...`")?;
        let names = split_csv_line(header).map_err(|e| format!("header: {e}"))?;
        if names.len() < 3 || names[..3] != ["image", "label", "ann"] {
            return Err(format!("header must start with `image,label,ann`, found `{header}`"));
        }
        let mut timesteps = None;
        let mut networks = Vec::new();
        for column in &names[3..] {
            let (name, t) = column
                .rsplit_once(" t=")
                .and_then(|(name, t)| Some((name, t.parse::<usize>().ok()?)))
                .ok_or_else(|| format!("column `{column}` is not `<network> t=<timesteps>`"))?;
            if *timesteps.get_or_insert(t) != t {
                return Err(format!("column `{column}`: networks read after different timesteps"));
            }
            networks.push((name.to_string(), Vec::new()));
        }
        let (mut labels, mut ann) = (Vec::new(), Vec::new());
        for (index, line) in lines {
            let row = index + 1;
            let fields = split_csv_line(line).map_err(|e| format!("line {row}: {e}"))?;
            if fields.len() != names.len() {
                return Err(format!("line {row}: {} fields, the header has {}", fields.len(), names.len()));
            }
            let values = fields
                .iter()
                .map(|field| field.parse::<usize>().map_err(|_| format!("line {row}: `{field}` is not a class index")))
                .collect::<Result<Vec<usize>, String>>()?;
            if values[0] != labels.len() {
                return Err(format!("line {row}: image {} out of order (expected {})", values[0], labels.len()));
            }
            labels.push(values[1]);
            ann.push(values[2]);
            for ((_, column), &value) in networks.iter_mut().zip(&values[3..]) {
                column.push(value);
            }
        }
        Ok(Self { timesteps: timesteps.unwrap_or(0), labels, ann, networks })
    }

    /// The networks of `other` appended to these: both must hold the same images (labels
    /// and ANN predictions equal) read after the same timestep, as the prediction files of
    /// two sweeps over one dataset do. `Err` says what differs.
    pub fn merge(&mut self, other: PredictionTable) -> Result<(), String> {
        if other.labels.len() != self.labels.len() {
            return Err(format!("{} images, the first file has {}", other.labels.len(), self.labels.len()));
        }
        if other.timesteps != self.timesteps {
            return Err(format!(
                "predictions after t = {}, the first file's after t = {}",
                other.timesteps, self.timesteps
            ));
        }
        if let Some(image) = (0..self.labels.len()).find(|&i| other.labels[i] != self.labels[i]) {
            return Err(format!("image {image} has another label than in the first file: not the same images"));
        }
        if let Some(image) = (0..self.ann.len()).find(|&i| other.ann[i] != self.ann[i]) {
            return Err(format!("image {image}: the ANN's class differs from the first file's: not the same ANN"));
        }
        for (name, predictions) in other.networks {
            if self.networks.iter().any(|(existing, _)| *existing == name) {
                return Err(format!("network `{name}` is also in an earlier file"));
            }
            self.networks.push((name, predictions));
        }
        Ok(())
    }

    /// Every pair of columns (the ANN first, then the networks in order) compared on the
    /// same images.
    pub fn paired(&self) -> Vec<PairedComparison> {
        let mut columns: Vec<(&str, &[usize])> = vec![("ann", &self.ann)];
        columns.extend(self.networks.iter().map(|(name, predictions)| (name.as_str(), predictions.as_slice())));
        let mut pairs = Vec::new();
        for (i, (a, pa)) in columns.iter().enumerate() {
            for (b, pb) in &columns[i + 1..] {
                let mut counts = [0usize; 4];
                for ((&label, &x), &y) in self.labels.iter().zip(pa.iter()).zip(pb.iter()) {
                    counts[usize::from(x == label) * 2 + usize::from(y == label)] += 1;
                }
                let [both_wrong, only_b_right, only_a_right, both_right] = counts;
                pairs.push(PairedComparison {
                    a: a.to_string(),
                    b: b.to_string(),
                    both_right,
                    only_a_right,
                    only_b_right,
                    both_wrong,
                    p_value: mcnemar_exact(only_a_right, only_b_right),
                });
            }
        }
        pairs
    }

    /// [`PredictionTable::paired`] as a text table: accuracy of each column, then every pair.
    pub fn paired_table(&self) -> String {
        let images = self.labels.len();
        let mut out = format!("{images} images, predictions after t = {}\n", self.timesteps);
        let width = self.networks.iter().map(|(name, _)| name.len()).chain([3]).max().unwrap_or(3);
        let _ = writeln!(
            out,
            "{:<width$}  {:<width$}  {:>8}  {:>8}  {:>6}  {:>6}  {:>9}",
            "a", "b", "a right", "b right", "only a", "only b", "McNemar p"
        );
        for pair in self.paired() {
            let _ = writeln!(
                out,
                "{:<width$}  {:<width$}  {:>8}  {:>8}  {:>6}  {:>6}  {:>9}",
                pair.a,
                pair.b,
                pair.both_right + pair.only_a_right,
                pair.both_right + pair.only_b_right,
                pair.only_a_right,
                pair.only_b_right,
                format_p(pair.p_value),
            );
        }
        out
    }
}

/// A p-value to three decimals, in scientific notation below 0.001, a bound below f64.
fn format_p(p: f64) -> String {
    if p == 0.0 {
        // Below the smallest f64 the sum of binomial terms can hold.
        "<1e-300".to_string()
    } else if p >= 1e-3 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

/// Fields of one CSV line; quoted fields may hold commas and doubled quotes.
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err("text after a quoted field".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field.trim().to_string());
        if chars.next().is_none() {
            return Ok(fields);
        }
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
        assert_eq!(PredictionTable::from_csv(&table.to_csv()), Ok(table));
    }

    #[test]
    fn merge_appends_networks_of_the_same_images_only() {
        let table = |names: &[&str], labels: Vec<usize>, t| PredictionTable {
            timesteps: t,
            ann: labels.clone(),
            networks: names.iter().map(|name| (name.to_string(), labels.clone())).collect(),
            labels,
        };
        let mut merged = table(&["a"], vec![1, 2], 8);
        merged.merge(table(&["b", "c"], vec![1, 2], 8)).unwrap();
        let names: Vec<&str> = merged.networks.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(merged.paired().len(), 6);
        assert!(merged.clone().merge(table(&["d"], vec![1, 2], 16)).unwrap_err().contains("t = 16"));
        assert!(merged.clone().merge(table(&["d"], vec![1, 3], 8)).unwrap_err().contains("image 1"));
        assert!(merged.clone().merge(table(&["d"], vec![1], 8)).unwrap_err().contains("1 images"));
        assert!(merged.clone().merge(table(&["b"], vec![1, 2], 8)).unwrap_err().contains("`b`"));
    }

    #[test]
    fn exact_mcnemar_matches_hand_computed_binomial_tails() {
        // n = 5, k = 0: 2 × 1/32.
        assert_eq!(mcnemar_exact(0, 5), 0.0625);
        // n = 10, k = 1: 2 × (1 + 10) / 1024.
        assert!((mcnemar_exact(9, 1) - 22.0 / 1024.0).abs() < 1e-12);
        // Equal counts and no disagreement: no evidence, p = 1.
        assert_eq!(mcnemar_exact(7, 7), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // Large n stays finite: 600 against 400 is far beyond chance.
        let p = mcnemar_exact(600, 400);
        assert!(p > 0.0 && p < 1e-9, "{p}");
    }

    #[test]
    fn pairs_count_images_each_side_gets_right() {
        let table = PredictionTable {
            timesteps: 4,
            labels: vec![0, 1, 2, 3, 4],
            ann: vec![0, 1, 2, 3, 0],
            networks: vec![("a".into(), vec![0, 1, 0, 0, 4]), ("b".into(), vec![0, 0, 2, 0, 0])],
        };
        let pairs = table.paired();
        assert_eq!(pairs.len(), 3);
        let ab = &pairs[2];
        assert_eq!((ab.a.as_str(), ab.b.as_str()), ("a", "b"));
        // Image 0 both; 1 and 4 only a; 2 only b; 3 neither.
        assert_eq!((ab.both_right, ab.only_a_right, ab.only_b_right, ab.both_wrong), (1, 2, 1, 1));
        assert_eq!(ab.p_value, 1.0);
        let text = table.paired_table();
        assert!(text.starts_with("5 images, predictions after t = 4\n"), "{text}");
        let last: Vec<&str> = text.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(last, ["a", "b", "3", "2", "2", "1", "1.000"]);
        let ann_a = &pairs[0];
        assert_eq!((ann_a.both_right, ann_a.only_a_right, ann_a.only_b_right, ann_a.both_wrong), (2, 2, 1, 0));
    }

    #[test]
    fn bad_csv_says_what_is_wrong() {
        let error = |text: &str| PredictionTable::from_csv(text).unwrap_err();
        assert!(error("").contains("empty"));
        assert!(error("image,label\n").contains("image,label,ann"));
        assert!(error("image,label,ann,max\n").contains("`max`"));
        assert!(error("image,label,ann,max t=8,p t=16\n").contains("different timesteps"));
        assert!(error("image,label,ann,max t=8\n0,1,1\n").contains("line 2: 3 fields"));
        assert!(error("image,label,ann,max t=8\n0,1,x,1\n").contains("`x`"));
        assert!(error("image,label,ann,max t=8\n1,1,1,1\n").contains("out of order"));
        assert!(error("image,label,ann,\"max t=8\n").contains("unterminated"));
        let quoted = PredictionTable::from_csv("image,label,ann,\"a,\"\"b\"\" t=2\"\n0,1,1,0\n").unwrap();
        assert_eq!(quoted.networks[0].0, "a,\"b\"");
    }
}
