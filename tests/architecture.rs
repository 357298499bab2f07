//! The dependency rules of ARCHITECTURE.md, checked on the source: which top-level module
//! (a backend counts as its own) may name which, no cycles between them, the reference
//! used by tests only. A path in code (`crate::x`, `spikeconv::x`) is a dependency; doc
//! comments and `#[cfg(test)]` modules are not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file belongs to: `backends/cpu`, `backends/wgpu`, `backends` (the
/// dispatcher), `cli` (the binary, with `main.rs`), or the first folder or file name.
fn unit_of_file(relative: &Path) -> String {
    let parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    match parts.as_slice() {
        [first, second, ..] if first == "backends" && parts.len() > 2 => format!("backends/{second}"),
        [first, ..] if first == "main" => "cli".into(),
        [first, ..] => first.clone(),
        [] => unreachable!(),
    }
}

/// The module a path names: `crate::backends::cpu::x` → `backends/cpu`.
fn unit_of_path(segments: &[&str]) -> String {
    match segments {
        ["backends", backend @ ("cpu" | "wgpu"), ..] => format!("backends/{backend}"),
        [first, ..] => (*first).to_string(),
        [] => unreachable!(),
    }
}

/// The code of a file: without comments and without its `#[cfg(test)]` modules (which
/// this crate keeps at the end of a file).
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let line = line.split(" // ").next().unwrap_or(line);
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// Every module each module names in code, with a file that does.
fn dependencies() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        if relative == Path::new("lib.rs") {
            continue;
        }
        let unit = unit_of_file(relative);
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        assert!(!code.contains("super::super"), "{}: reach other modules by crate:: paths", relative.display());
        let edges = graph.entry(unit.clone()).or_default();
        for prefix in ["crate::", "spikeconv::"] {
            for (at, _) in code.match_indices(prefix) {
                let before = code[..at].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &code[at + prefix.len()..];
                let path: Vec<&str> = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .collect();
                if path.is_empty() || path[0].chars().next().is_some_and(|c| c.is_uppercase()) {
                    continue; // `crate::Error`, re-exported at the root
                }
                let target = unit_of_path(&path);
                if target != unit {
                    edges.entry(target).or_insert_with(|| relative.display().to_string());
                }
            }
        }
    }
    graph
}

/// What each module may name; modules not listed may name anything but the reference.
const ALLOWED: &[(&str, &[&str])] = &[
    ("io", &[]),
    ("memory", &[]),
    ("model", &["io"]),
    ("data", &["io", "model"]),
    ("convert", &["io", "model"]),
    ("engine", &["convert", "data", "io", "memory", "model"]),
    ("tuning", &["convert", "engine", "model"]),
    ("backends/cpu", &["convert", "engine", "memory", "model"]),
    ("backends/wgpu", &["convert", "engine", "memory", "model"]),
    ("report", &["convert", "engine", "io", "model", "tuning"]),
];

type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// Every edge that breaks [`ALLOWED`], the backends' isolation or the reference's.
fn broken_rules(graph: &Graph) -> Vec<String> {
    let mut broken = Vec::new();
    for (unit, allowed) in ALLOWED {
        let Some(edges) = graph.get(*unit) else {
            broken.push(format!("no module `{unit}` in src/"));
            continue;
        };
        for (target, file) in edges {
            if !allowed.contains(&target.as_str()) {
                broken.push(format!("{file} ({unit}) names `{target}`"));
            }
        }
    }
    for (unit, edges) in graph {
        for (target, file) in edges {
            if target == "reference" && unit != "reference" {
                broken.push(format!("{file} ({unit}) names the test reference"));
            }
            if let Some(own) = unit.strip_prefix("backends/") {
                if target.starts_with("backends") && target != &format!("backends/{own}") {
                    broken.push(format!("{file}: backend `{own}` names `{target}`"));
                }
            }
        }
    }
    broken
}

/// A cycle of modules, each with the file that names the next; `None` when there is none.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(unit: &str, graph: &Graph, done: &mut BTreeSet<String>, stack: &mut Vec<String>) -> Option<Vec<String>> {
        if let Some(start) = stack.iter().position(|u| u == unit) {
            return Some(stack[start..].to_vec());
        }
        if done.contains(unit) {
            return None;
        }
        stack.push(unit.to_string());
        for target in graph.get(unit).into_iter().flat_map(|e| e.keys()) {
            if let Some(cycle) = visit(target, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(unit.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for unit in graph.keys() {
        if let Some(cycle) = visit(unit, graph, &mut done, &mut Vec::new()) {
            let edges = cycle
                .iter()
                .zip(cycle.iter().cycle().skip(1))
                .map(|(a, b)| format!("{a} → {b} ({})", graph[a][b]))
                .collect();
            return Some(edges);
        }
    }
    None
}

#[test]
fn modules_keep_the_dependency_rules() {
    let broken = broken_rules(&dependencies());
    assert!(broken.is_empty(), "dependency rules broken:\n{}", broken.join("\n"));
}

#[test]
fn modules_form_no_cycle() {
    if let Some(cycle) = find_cycle(&dependencies()) {
        panic!("modules form a cycle:\n{}", cycle.join("\n"));
    }
}

#[test]
fn the_checks_see_every_module_and_catch_planted_edges() {
    let mut graph = dependencies();
    for unit in ["backends", "backends/cpu", "backends/wgpu", "engine", "tuning", "jobs", "cli", "report", "pipeline"] {
        assert!(graph.contains_key(unit), "module `{unit}` found");
    }
    // The scan sees real edges.
    assert!(graph["backends/cpu"].contains_key("engine") && graph["backends/wgpu"].contains_key("engine"));
    assert!(graph["jobs"].contains_key("backends") && graph["cli"].contains_key("jobs"));
    // Comments and test modules are not code.
    let code =
        code_of("use crate::a;\n/// [`crate::b`]\nfn f() {} // crate::c\n#[cfg(test)]\nmod tests { use crate::d; }\n");
    assert!(
        code.contains("crate::a")
            && !code.contains("crate::b")
            && !code.contains("crate::c")
            && !code.contains("crate::d")
    );
    // Planted: one backend naming the other, the engine naming the reference and tuning,
    // which names the engine (a cycle).
    let plant = |graph: &mut Graph, from: &str, to: &str| {
        graph.get_mut(from).unwrap().insert(to.into(), "planted.rs".into());
    };
    plant(&mut graph, "backends/cpu", "backends/wgpu");
    plant(&mut graph, "engine", "reference");
    plant(&mut graph, "engine", "tuning");
    let broken = broken_rules(&graph).join("\n");
    assert!(broken.contains("backend `cpu` names `backends/wgpu`"), "{broken}");
    assert!(broken.contains("(engine) names the test reference"), "{broken}");
    assert!(broken.contains("(engine) names `tuning`"), "{broken}");
    assert!(find_cycle(&graph).is_some_and(|c| c.iter().any(|e| e.contains("planted.rs"))));
}

/// Where graph operations (`Op::…`) may be matched: the graph and conversion layers, the
/// schedule, the reference, and one file per backend — so adding an operation touches one
/// place in each backend (ARCHITECTURE.md, "Adding an operation").
const OP_MATCHERS: &[&str] =
    &["model/", "convert/", "engine/schedule.rs", "reference/", "backends/cpu/lower.rs", "backends/wgpu/ann.rs"];

#[test]
fn graph_operations_are_matched_in_one_file_per_backend() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut outside = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().display().to_string();
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        let matches_op = code
            .match_indices("Op::")
            .any(|(at, _)| !code[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_'));
        if matches_op && !OP_MATCHERS.iter().any(|allowed| relative.starts_with(allowed)) {
            outside.push(relative);
        }
    }
    assert!(outside.is_empty(), "graph operations matched outside their places: {outside:?}");
}
