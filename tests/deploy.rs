//! deploy/: the Dockerfile copies what exists and names the binary this crate builds; every
//! manifest is YAML the real kube-apiserver accepts in a server-side dry run (kustomize
//! overlays rendered by `kubectl kustomize`, cluster-prep objects as they are, after minimal
//! CRDs for ServiceMonitor and Telemetry); the pipelines ConfigMap is pipelines/ verbatim;
//! the Grafana dashboard queries only metrics the prometheus sink exports.

mod cluster;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use cluster::Cluster;
use serde_json::Value;
use support::{append, coredns_query, free_port, repo, scrape_until, spawn_run, terminate};

/// Every file under `dir` (recursively) whose name ends in one of `exts`, sorted.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path, exts));
        } else if exts.iter().any(|e| path.to_string_lossy().ends_with(e)) {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text).unwrap()
}

#[test]
fn dockerfile_copies_what_exists_and_runs_the_built_binary() {
    let dockerfile = std::fs::read_to_string(repo("deploy/Dockerfile")).unwrap();
    let ignore = std::fs::read_to_string(repo(".dockerignore")).unwrap();
    let mut binary_copied_to = None;
    for line in dockerfile.lines().map(str::trim) {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        let words: Vec<&str> = args.split_whitespace().collect();
        if let Some(stage) = words[0].strip_prefix("--from=") {
            assert_eq!(stage, "build");
            let built = Path::new(words[1]);
            assert_eq!(built.file_name().unwrap(), "egress-scout");
            assert!(built.starts_with("/src/target/release"), "{line}");
            binary_copied_to = Some(words[2].to_string());
            continue;
        }
        let (sources, _) = words.split_at(words.len() - 1);
        for source in sources {
            assert!(repo(source).exists(), "{line}: {source} is missing");
            let unignored = format!("!{}", source.trim_end_matches('/'));
            assert!(
                ignore.lines().any(|l| l.trim_end_matches('/') == unignored),
                ".dockerignore leaves {source} out of the build context"
            );
        }
    }
    assert!(
        dockerfile
            .contains("cargo build --release --locked --features live,ebpf --bin egress-scout")
    );
    // The binary it names is the one this crate builds, and it runs.
    let built = Path::new(env!("CARGO_BIN_EXE_egress-scout"));
    assert_eq!(built.file_name().unwrap(), "egress-scout");
    assert!(
        support::bin()
            .arg("--version")
            .output()
            .unwrap()
            .status
            .success()
    );
    let entrypoint = binary_copied_to.expect("the binary is copied from the build stage");
    assert!(dockerfile.contains(&format!("ENTRYPOINT [\"{entrypoint}\"]")));
    let user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "non-root: {user}"
    );
    // The default command's pipeline is shipped.
    let cmd = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .unwrap();
    let pipeline = cmd.split('"').find(|w| w.ends_with(".toml")).unwrap();
    let shipped = pipeline.replace("/etc/egress-scout/pipelines/", "pipelines/");
    assert!(repo(&shipped).is_file(), "{pipeline}");
}

#[test]
fn pipelines_configmap_is_the_pipelines() {
    let text =
        std::fs::read_to_string(repo("deploy/kubernetes/base/pipelines-configmap.yaml")).unwrap();
    let map = &yaml_docs(&text)[0];
    let data: BTreeMap<String, String> = serde_json::from_value(map["data"].clone()).unwrap();
    let pipelines: BTreeMap<String, String> = files(&repo("pipelines"), &[".toml"])
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(p).unwrap())
        })
        .collect();
    assert_eq!(
        data, pipelines,
        "run deploy/kubernetes/gen-pipelines-configmap.py after changing pipelines/"
    );
    // Every pipeline a manifest runs is in it.
    for manifest in files(&repo("deploy"), &[".yaml"]) {
        let text = std::fs::read_to_string(&manifest).unwrap();
        for word in text.split([' ', ',', ']', '[']) {
            if let Some(name) = word.strip_prefix("/etc/egress-scout/pipelines/") {
                assert!(data.contains_key(name), "{}: {name}", manifest.display());
            }
        }
    }
}

#[test]
fn every_yaml_file_parses() {
    for path in files(&repo("deploy"), &[".yaml", ".yml"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = serde_saphyr::from_multiple::<Value>(&text);
        assert!(docs.is_ok_and(|d| !d.is_empty()), "{}", path.display());
    }
}

/// The objects of one overlay, as `kubectl kustomize` renders them.
fn kustomize(dir: &Path) -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    yaml_docs(&String::from_utf8(out.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn manifests_pass_a_server_side_dry_run() {
    let kubectl = Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    if support::service(
        kubectl.ok().filter(|o| o.status.success()),
        "no kubectl (kustomize)",
    )
    .is_none()
    {
        return;
    }
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let crds = std::fs::read_to_string(repo("tests/fixtures/crds/deploy.yaml")).unwrap();
    for crd in yaml_docs(&crds) {
        cluster.apply(crd).await;
    }
    // Namespaces the manifests live in but do not create.
    cluster.add_namespace("istio-system").await;
    cluster.add_namespace("egress-scout").await;
    let kube = repo("deploy/kubernetes");
    let mut rendered: Vec<(String, Value)> = Vec::new();
    let mut overlays = vec![kube.join("base"), kube.join("deployment")];
    overlays.extend(
        std::fs::read_dir(kube.join("overlays"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    overlays.sort();
    for dir in &overlays {
        for object in kustomize(dir) {
            rendered.push((dir.display().to_string(), object));
        }
    }
    for path in files(&kube.join("cluster-prep"), &[".yaml"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        // Helm values files are not objects.
        for doc in yaml_docs(&text)
            .into_iter()
            .filter(|d| d.get("kind").is_some())
        {
            rendered.push((path.display().to_string(), doc));
        }
    }
    let mut kinds = BTreeSet::new();
    for (origin, object) in &rendered {
        let what = format!(
            "{origin}: {}/{}",
            object["kind"], object["metadata"]["name"]
        );
        if let Err(e) = cluster.dry_run(object).await {
            panic!("{what} refused: {e}");
        }
        kinds.insert(object["kind"].as_str().unwrap().to_string());
    }
    for kind in [
        "DaemonSet",
        "Deployment",
        "ServiceMonitor",
        "Telemetry",
        "ClusterRole",
        "Role",
        "ConfigMap",
    ] {
        assert!(kinds.contains(kind), "no {kind} among {kinds:?}");
    }
    // A manifest the apiserver refuses is reported: the dry run is not a formality.
    let mut broken = rendered
        .iter()
        .find(|(_, o)| o["kind"] == "DaemonSet")
        .unwrap()
        .1
        .clone();
    broken["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "other".into();
    assert!(cluster.dry_run(&broken).await.is_err());
}

#[test]
fn dashboard_queries_only_exported_metrics() {
    let text = std::fs::read_to_string(repo("deploy/grafana/egress-scout.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut queries: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queries.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = variable["query"]["query"].as_str() {
            queries.push(q.to_string());
        }
    }
    let mut wanted = BTreeSet::new();
    for q in &queries {
        let mut rest = q.as_str();
        while let Some(at) = rest.find("egress_scout_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            wanted.insert(name);
        }
    }
    assert!(wanted.len() >= 6, "{wanted:?}");
    // A pipeline that exercises every series: external and internal lookups, a malformed line.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dns.log");
    std::fs::write(&log, "").unwrap();
    let port = free_port();
    let config = dir.path().join("p.toml");
    std::fs::write(
        &config,
        format!(
            "[inventory]\nupdate_interval_secs = 1\n[[sources]]\ntype = \"file\"\npath = {log:?}\nformat = \"coredns\"\nfollow = true\npoll_interval_ms = 20\n[[sinks]]\ntype = \"prometheus\"\naddress = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let (child, _lines) = spawn_run(&config);
    for name in ["api.example.com", "db.default.svc.cluster.local"] {
        append(&log, &format!("{}\n", coredns_query("10.244.1.5", name)));
    }
    append(&log, "not a coredns line\n");
    let exported = |text: &str| -> BTreeSet<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_string)
            .collect()
    };
    let scraped = scrape_until(port, |t| wanted.iter().all(|w| exported(t).contains(w)));
    terminate(&child);
    let names = exported(&scraped);
    assert!(wanted.is_subset(&names), "{wanted:?} not all in {names:?}");
}
