//! The cluster files of deploy/: the Kubernetes manifests parse and wire the shards as the
//! merge expects (an Indexed Job whose completion index is the shard, N consistent
//! everywhere, one shared volume), and the Slurm scripts are valid bash that call
//! `spikeconv sweep --shard` and `spikeconv merge` with the array's index and size.

use std::path::Path;

use serde_yaml::Value;

fn deploy(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn manifest(file: &str) -> Value {
    serde_yaml::from_str(&deploy(file)).unwrap_or_else(|e| panic!("{file}: not YAML: {e}"))
}

fn get<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(value, |v, key| match key.parse::<usize>() {
        Ok(index) => &v[index],
        Err(_) => &v[key],
    })
}

fn env<'a>(container: &'a Value, name: &str) -> &'a str {
    let vars = container["env"].as_sequence().expect("env list");
    let var = vars.iter().find(|v| v["name"].as_str() == Some(name)).unwrap_or_else(|| panic!("no env {name}"));
    var["value"].as_str().expect("a value")
}

#[test]
fn kubernetes_manifests_wire_an_indexed_shard_job_to_a_merge_job() {
    let shards = manifest("k8s/sweep-shards.yaml");
    assert_eq!(get(&shards, "apiVersion").as_str(), Some("batch/v1"));
    assert_eq!(get(&shards, "kind").as_str(), Some("Job"));
    assert_eq!(get(&shards, "spec.completionMode").as_str(), Some("Indexed"));
    let completions = get(&shards, "spec.completions").as_u64().expect("completions");
    assert_eq!(get(&shards, "spec.parallelism").as_u64(), Some(completions));
    assert_eq!(get(&shards, "spec.template.spec.restartPolicy").as_str(), Some("Never"));
    let container = get(&shards, "spec.template.spec.containers.0");
    assert_eq!(env(container, "SHARDS"), completions.to_string(), "SHARDS equals completions");
    let command = container["args"][0].as_str().unwrap();
    assert!(command.contains("spikeconv sweep $(SWEEP_ARGS)"), "{command}");
    assert!(command.contains("--shard $(JOB_COMPLETION_INDEX)/$(SHARDS)"), "{command}");
    assert!(command.contains("--shard-out /work/out/shard-$(JOB_COMPLETION_INDEX)-of-$(SHARDS).json"), "{command}");
    assert!(env(container, "SWEEP_ARGS").contains("--timesteps"));

    let merge = manifest("k8s/merge-job.yaml");
    assert_eq!(get(&merge, "kind").as_str(), Some("Job"));
    let merger = get(&merge, "spec.template.spec.containers.0");
    assert_eq!(env(merger, "SHARDS"), completions.to_string(), "the merge reads as many shards");
    let command = merger["args"][0].as_str().unwrap();
    assert!(command.contains("spikeconv merge $records") && command.contains("--json"), "{command}");
    assert!(command.contains("/work/out/shard-&-of-$(SHARDS).json"), "the names the shards write: {command}");
    assert!(command.contains("$$(( $(SHARDS) - 1 ))"), "shell arithmetic escaped from Kubernetes: {command}");

    // One claim, mounted at /work by both jobs, ReadWriteMany.
    let volume = manifest("k8s/volume.yaml");
    assert_eq!(get(&volume, "kind").as_str(), Some("PersistentVolumeClaim"));
    let claim = get(&volume, "metadata.name").as_str().unwrap();
    assert_eq!(get(&volume, "spec.accessModes.0").as_str(), Some("ReadWriteMany"));
    for job in [&shards, &merge] {
        let spec = get(job, "spec.template.spec");
        assert_eq!(get(spec, "volumes.0.persistentVolumeClaim.claimName").as_str(), Some(claim));
        assert_eq!(get(spec, "containers.0.volumeMounts.0.mountPath").as_str(), Some("/work"));
    }
}

#[test]
fn slurm_scripts_are_bash_that_shard_and_merge() {
    for file in ["sweep-shard.sbatch", "merge.sbatch", "submit.sh", "table-cells.sbatch", "local-cluster.sh"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/slurm").join(file);
        let status = std::process::Command::new("bash").arg("-n").arg(&path).status().expect("bash");
        assert!(status.success(), "{file}: bash -n fails");
    }
    let shard = deploy("slurm/sweep-shard.sbatch");
    assert!(shard.contains(r#"--shard "$K/$N" --shard-out "$SWEEP_OUT/shard-$K-of-$N.json""#), "{shard}");
    assert!(shard.contains("K=\"$SLURM_ARRAY_TASK_ID\"") && shard.contains("N=\"$SLURM_ARRAY_TASK_COUNT\""));
    let merge = deploy("slurm/merge.sbatch");
    assert!(merge.contains(r#"records+=("$SWEEP_OUT/shard-$k-of-$SHARDS.json")"#), "{merge}");
    let submit = deploy("slurm/submit.sh");
    assert!(submit.contains("--dependency=\"afterok:"), "the merge waits for every shard: {submit}");
    assert!(submit.contains("--array=\"0-$((shards - 1))\""), "{submit}");
}
