//! GPU time per kernel from a profiled chunk ([`crate::backends::wgpu::SnnPlan::profile`]): what
//! `bench --profile` and `sweep --profile` print.

use std::fmt::Write;

use crate::engine::PassTime;

/// The GPU time of the passes that ran one combination of kernels.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct KernelTime {
    /// The kernels of the passes, joined by `+` (e.g. `Affine+IfScanCounted`).
    pub kernels: String,
    pub passes: usize,
    pub milliseconds: f64,
}

/// Passes grouped by their kernels, the most time first.
pub fn kernel_times(passes: &[PassTime]) -> Vec<KernelTime> {
    let mut groups: Vec<KernelTime> = Vec::new();
    for pass in passes {
        let name = pass.kernels.join("+");
        match groups.iter_mut().find(|g| g.kernels == name) {
            Some(group) => {
                group.passes += 1;
                group.milliseconds += pass.nanoseconds / 1e6;
            }
            None => groups.push(KernelTime { kernels: name, passes: 1, milliseconds: pass.nanoseconds / 1e6 }),
        }
    }
    groups.sort_by(|a, b| b.milliseconds.total_cmp(&a.milliseconds));
    groups
}

/// [`kernel_times`] as a text table headed by `title`: milliseconds, share, passes, kernels.
pub fn kernel_table(title: &str, groups: &[KernelTime]) -> String {
    let total: f64 = groups.iter().map(|g| g.milliseconds).sum();
    let mut out = format!("{title} ({total:.2} ms):\n");
    let _ = writeln!(out, "  {:>10}  {:>6}  {:>6}  kernels", "ms", "share", "passes");
    for group in groups {
        let share = 100.0 * group.milliseconds / total.max(f64::MIN_POSITIVE);
        let _ = writeln!(out, "  {:>10.3}  {share:>5.1}%  {:>6}  {}", group.milliseconds, group.passes, group.kernels);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_group_by_kernels_most_time_first() {
        let pass = |kernels: &[&str], nanoseconds: f64| PassTime {
            node: "n".into(),
            kernels: kernels.iter().map(|k| k.to_string()).collect(),
            nanoseconds,
        };
        let groups = kernel_times(&[
            pass(&["IfScanCounted"], 1e6),
            pass(&["ConvTiled"], 3e6),
            pass(&["IfScanCounted"], 2e6),
            pass(&["Affine", "IfScanCounted"], 0.5e6),
        ]);
        let summary: Vec<(&str, usize, f64)> =
            groups.iter().map(|g| (g.kernels.as_str(), g.passes, g.milliseconds)).collect();
        assert_eq!(summary, [("IfScanCounted", 2, 3.0), ("ConvTiled", 1, 3.0), ("Affine+IfScanCounted", 1, 0.5)]);
        let table = kernel_table("one chunk", &groups);
        assert!(table.starts_with("one chunk (6.50 ms):"), "{table}");
        assert!(table.contains("46.2%"), "{table}");
    }
}
