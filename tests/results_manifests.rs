//! Every experiment under results/ carries the record its run wrote (scripts/experiment.sh):
//! the commit, the date, the backend and the device that produced its figures, and the
//! checksums of its inputs. A manifest missing one of them cannot say where a figure came from.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The line of a run.sh whose experiment is defined but not run yet (its network still
/// training, say): it has no outputs, and must lose the line when it gets them.
const PLANNED: &str = "# status: planned";

/// The experiment directories: those with a run.sh (the archive of earlier subset results
/// has none and no manifest).
fn all_experiments() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("results/ exists")
        .map(|entry| entry.expect("readable results/ entry").path())
        .filter(|path| path.join("run.sh").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn is_planned(dir: &Path) -> bool {
    let script = std::fs::read_to_string(dir.join("run.sh")).expect("readable run.sh");
    script.lines().any(|line| line.trim_start().starts_with(PLANNED))
}

/// The experiments that have run (every one but the planned).
fn experiments() -> Vec<PathBuf> {
    all_experiments().into_iter().filter(|dir| !is_planned(dir)).collect()
}

#[test]
fn planned_experiments_have_no_outputs_yet() {
    for dir in all_experiments().into_iter().filter(|dir| is_planned(dir)) {
        assert!(!dir.join("out").exists(), "{}: has outputs but run.sh still says {PLANNED:?}", dir.display());
    }
}

fn manifest(dir: &Path) -> Value {
    let path = dir.join("out/manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn is_commit(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn results_has_experiments() {
    assert!(experiments().len() >= 10, "results/ lists {} experiments", experiments().len());
}

#[test]
fn every_manifest_names_commit_date_backend_and_device() {
    for dir in experiments() {
        let m = manifest(&dir);
        let name = dir.display();
        assert!(is_commit(&m["commit"]), "{name}: commit {}", m["commit"]);
        let started = m["started_utc"].as_str().unwrap_or_default();
        assert!(started.starts_with("20") && started.ends_with('Z'), "{name}: started_utc {started:?}");
        let backends = m["backends"].as_array().cloned().unwrap_or_default();
        assert!(!backends.is_empty(), "{name}: no backend recorded");
        for backend in &backends {
            let kind = backend["backend"].as_str().unwrap_or_default();
            let device = backend["device"].as_str().unwrap_or_default();
            assert!(!kind.is_empty() && !device.is_empty(), "{name}: backend entry {backend}");
        }
        assert!(m["machine"]["cpu"].as_str().is_some_and(|cpu| !cpu.is_empty()), "{name}: machine");
    }
}

#[test]
fn every_run_of_an_experiment_is_recorded() {
    for dir in experiments() {
        let m = manifest(&dir);
        let name = dir.display();
        // Manifests older than resumable experiments record their one run at the top level.
        let runs = m["runs"].as_array().cloned().unwrap_or_else(|| vec![m.clone()]);
        assert!(!runs.is_empty(), "{name}: an empty list of runs");
        for run in &runs {
            assert!(is_commit(&run["commit"]), "{name}: a run's commit {}", run["commit"]);
        }
        let inputs = m["inputs_sha256"].as_object().cloned().unwrap_or_default();
        for (path, sum) in &inputs {
            let sum = sum.as_str().unwrap_or_default();
            assert!(
                sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit()),
                "{name}: input {path} has checksum {sum:?}"
            );
        }
    }
}
