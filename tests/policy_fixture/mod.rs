//! The policy tests' fixture: a cluster of every policy dialect, what its workloads were
//! seen doing, and the commands over them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::support::{bin, repo};

pub const FIXTURE: &str = "tests/fixtures/policy/cluster.yaml";

pub fn source(ns: &str, kind: &str, name: &str, pod: &str) -> Value {
    json!({"namespace": ns, "workload": name, "workload_kind": kind, "pods": [pod]})
}

pub fn edge(source: Value, ports: Value, verdicts: Value) -> Value {
    json!({"source": source, "lookups": 1, "ports": ports, "count": 3,
           "first_seen": "2026-12-01T08:00:00Z", "last_seen": "2026-12-01T09:00:00Z",
           "evidence": ["envoy"], "verdicts": verdicts})
}

/// The edge as Hubble saw it.
pub fn hubble(mut edge: Value) -> Value {
    edge["evidence"] = json!(["hubble"]);
    edge
}

pub fn destination(key: &str, ips: &[&str], edges: Vec<Value>) -> Value {
    let mut d = json!({"destination": key, "ips": ips, "count": 3, "source_count": edges.len(),
        "first_seen": "2026-12-01T08:00:00Z", "last_seen": "2026-12-01T09:00:00Z",
        "evidence": ["envoy"], "edges": edges});
    if key.parse::<std::net::IpAddr>().is_err() {
        d["names"] = json!([key]);
    }
    d
}

/// A snapshot of what the fixture's workloads were seen doing.
pub fn observed() -> Value {
    let cart = source("shop", "Deployment", "cart", "cart-7d9f-abcde");
    let web = source("shop", "StatefulSet", "web", "web-0");
    let batch = source("payments", "Pod", "batch", "batch");
    let api = source("payments", "Deployment", "api", "api-6c8b-xyz12");
    let https = json!([{"port": 443, "protocol": "tcp", "count": 3}]);
    let none = json!([]);
    json!({"schema_version": 2, "destinations": [
        destination("api.stripe.com", &["52.1.2.3"], vec![edge(cart.clone(), https.clone(), none.clone())]),
        destination("evil.example.com", &["203.0.113.5"], vec![edge(cart.clone(), https.clone(), none.clone())]),
        destination("169.254.169.254", &[], vec![hubble(edge(cart.clone(),
            json!([{"port": 80, "protocol": "tcp", "count": 3}]), json!(["dropped"])))]),
        destination("api.github.com", &["140.82.112.5"], vec![edge(web.clone(), https.clone(), none.clone())]),
        destination("www.google.com", &["142.250.1.1"], vec![edge(web.clone(), https.clone(), none.clone())]),
        destination("pypi.org", &["151.101.0.223"], vec![edge(batch.clone(), https.clone(), none.clone())]),
        destination("192.0.2.10", &[], vec![edge(batch.clone(), https.clone(), none.clone())]),
        destination("registry.npmjs.org", &[], vec![edge(api.clone(), json!([]), none.clone())]),
    ]})
}

pub fn write_inventory(dir: &Path) -> PathBuf {
    let path = dir.join("inventory.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&observed()).unwrap()).unwrap();
    path
}

pub fn check(args: &[&str]) -> Output {
    bin().args(["policy", "check"]).args(args).output().unwrap()
}

pub fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `source -> destination port: status rules...` of every row.
pub fn rows(report: &Value) -> Vec<String> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let rules: Vec<&str> = r["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "{} -> {} {}: {} {}",
                r["source"].as_str().unwrap(),
                r["destination"].as_str().unwrap(),
                r["port"],
                r["status"].as_str().unwrap(),
                rules.join(" + ")
            )
        })
        .collect()
}

pub fn row<'a>(report: &'a Value, destination: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["destination"] == destination)
        .unwrap_or_else(|| panic!("no row for {destination}"))
}

/// A test apiserver with the real CRDs of the policy kinds installed, when there are both.
pub async fn with_policy_crds() -> Option<Cluster> {
    let crds = shared_crds()?;
    let cluster = Cluster::start().await?;
    for crd in crds {
        cluster.apply(crd).await;
    }
    Some(cluster)
}

/// The real upstream CRDs of the policy kinds (../shared/crds), when this checkout has them
/// beside it.
pub fn shared_crds() -> Option<Vec<Value>> {
    let dir = repo("../shared/crds");
    let found = dir.is_dir().then_some(dir);
    let dir = crate::support::service(found, "no ../shared/crds: the real CRDs are shared data")?;
    let mut crds = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let crd: Value = serde_saphyr::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        // The policy kinds; the ServiceMonitor and Telemetry CRDs are not read here.
        let group = crd["spec"]["group"].as_str().unwrap_or_default();
        if matches!(
            group,
            "cilium.io" | "networking.istio.io" | "policy.networking.k8s.io"
        ) {
            crds.push(crd);
        }
    }
    Some(crds)
}

/// The fixture's namespaces, pods, Services (and, with `mesh`, the mesh config) without any
/// policy: what `policy generate` starts from.
pub fn base_cluster(dir: &Path, mesh: bool) -> PathBuf {
    let text = std::fs::read_to_string(repo(FIXTURE)).unwrap();
    let kept: Vec<Value> = serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .filter(|o| match o["kind"].as_str().unwrap() {
            "Namespace" | "Pod" | "Service" => true,
            "ConfigMap" => mesh,
            _ => false,
        })
        .collect();
    let path = dir.join(if mesh { "base-mesh.json" } else { "base.json" });
    std::fs::write(&path, json!({"kind": "List", "items": kept}).to_string()).unwrap();
    path
}

pub fn generate(args: &[&str]) -> (String, String) {
    let out = bin()
        .args(["policy", "generate"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
