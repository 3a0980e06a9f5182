//! `egress-scout policy query` and `policy check` over the project's fixture cluster (every
//! policy dialect): JSON-lines answers, check rows with their rules, denials explained by
//! the observation, unused allowances, CI gates; and the same answers from a real
//! kube-apiserver with the real upstream CRDs of ../shared/crds installed.

mod cluster;
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use cluster::Cluster;
use serde_json::{Value, json};
use support::{bin, coredns_query, repo, with_stdin};

const FIXTURE: &str = "tests/fixtures/policy/cluster.yaml";

fn source(ns: &str, kind: &str, name: &str, pod: &str) -> Value {
    json!({"namespace": ns, "workload": name, "workload_kind": kind, "pods": [pod]})
}

fn edge(source: Value, ports: Value, verdicts: Value) -> Value {
    json!({"source": source, "lookups": 1, "ports": ports, "count": 3,
           "first_seen": "2026-12-01T08:00:00Z", "last_seen": "2026-12-01T09:00:00Z",
           "evidence": ["envoy"], "verdicts": verdicts})
}

/// The edge as Hubble saw it.
fn hubble(mut edge: Value) -> Value {
    edge["evidence"] = json!(["hubble"]);
    edge
}

fn destination(key: &str, ips: &[&str], edges: Vec<Value>) -> Value {
    let mut d = json!({"destination": key, "ips": ips, "count": 3, "source_count": edges.len(),
        "first_seen": "2026-12-01T08:00:00Z", "last_seen": "2026-12-01T09:00:00Z",
        "evidence": ["envoy"], "edges": edges});
    if key.parse::<std::net::IpAddr>().is_err() {
        d["names"] = json!([key]);
    }
    d
}

/// A snapshot of what the fixture's workloads were seen doing.
fn observed() -> Value {
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

fn write_inventory(dir: &Path) -> PathBuf {
    let path = dir.join("inventory.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&observed()).unwrap()).unwrap();
    path
}

fn check(args: &[&str]) -> Output {
    bin().args(["policy", "check"]).args(args).output().unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `source -> destination port: status rules...` of every row.
fn rows(report: &Value) -> Vec<String> {
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

fn row<'a>(report: &'a Value, destination: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["destination"] == destination)
        .unwrap_or_else(|| panic!("no row for {destination}"))
}

fn expected_rows() -> Vec<&'static str> {
    vec![
        "payments/batch -> 192.0.2.10 443: denied BaselineAdminNetworkPolicy default egress[0] (no-test-net)",
        "shop/cart -> 169.254.169.254 80: denied AdminNetworkPolicy deny-metadata egress[0] (cloud-metadata)",
        "shop/cart -> evil.example.com 443: denied ",
        "shop/web -> www.google.com 443: denied ",
        "payments/api -> registry.npmjs.org null: unrestricted ",
        "payments/batch -> pypi.org 443: unrestricted ",
        "shop/cart -> api.stripe.com 443: allowed NetworkPolicy shop/cart-egress egress[1] + ServiceEntry shop/stripe host api.stripe.com",
        "shop/web -> api.github.com 443: allowed CiliumNetworkPolicy shop/web-fqdn egress[1]",
    ]
}

fn expected_unused() -> Value {
    json!([
        {"rule": "CiliumNetworkPolicy shop/web-fqdn egress[2]", "allows": "toFQDNs unused.example.org", "namespace": "shop"},
        {"rule": "NetworkPolicy shop/cart-egress egress[2]", "allows": "ipBlock 198.51.100.0/24", "namespace": "shop"},
        {"rule": "ServiceEntry shop/partner host old.partner.example", "allows": "host old.partner.example", "namespace": "shop"},
    ])
}

#[test]
fn check_names_rules_explains_denials_and_lists_unused_allowances() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = write_inventory(dir.path());
    let args = [
        "--inventory",
        inventory.to_str().unwrap(),
        "--cluster",
        FIXTURE,
        "--output",
        "json",
    ];
    let report = json_of(&check(&args));
    assert_eq!(rows(&report), expected_rows());
    assert_eq!(report["unused"], expected_unused());
    let evil = row(&report, "evil.example.com");
    let reason = evil["reason"].as_str().unwrap();
    assert!(
        reason.contains("isolated by NetworkPolicy shop/cart-egress; no rule allows TCP/443 to evil.example.com (203.0.113.5)"),
        "{reason}"
    );
    assert!(
        evil["observed"].as_str().unwrap().contains("not enforced"),
        "{evil}"
    );
    let metadata = row(&report, "169.254.169.254");
    assert!(
        metadata["observed"]
            .as_str()
            .unwrap()
            .contains("Hubble DROPPED")
    );
    let google = row(&report, "www.google.com");
    assert!(
        google["reason"]
            .as_str()
            .unwrap()
            .contains("isolated by CiliumNetworkPolicy shop/web-fqdn")
    );
    let npm = row(&report, "registry.npmjs.org");
    let notes = npm["notes"].to_string();
    assert!(notes.contains("would break under default deny"), "{notes}");
    assert!(notes.contains("no address known"), "{notes}");
    assert_eq!(
        report["by_namespace"],
        json!({"payments": {"allowed": 0, "denied": 1, "unrestricted": 2, "unknown": 0},
               "shop": {"allowed": 2, "denied": 3, "unrestricted": 0, "unknown": 0}})
    );
    assert_eq!(report["totals"]["denied"], 4);
    // Same input, byte-identical output, in every encoding.
    for output in ["json", "table", "markdown"] {
        let args = [
            "--inventory",
            inventory.to_str().unwrap(),
            "--cluster",
            FIXTURE,
            "--output",
            output,
        ];
        let (a, b) = (check(&args), check(&args));
        assert!(a.status.success());
        assert_eq!(a.stdout, b.stdout, "{output}");
    }
    let table = String::from_utf8(
        check(&[
            "--inventory",
            inventory.to_str().unwrap(),
            "--cluster",
            FIXTURE,
            "--output",
            "table",
        ])
        .stdout,
    )
    .unwrap();
    assert!(table.contains("Declared allowances not used"), "{table}");
    assert!(
        table.contains("8 edges: 2 allowed, 4 denied, 2 unrestricted, 0 unknown"),
        "{table}"
    );
}

#[test]
fn fail_on_gates_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = write_inventory(dir.path());
    let base = [
        "--inventory",
        inventory.to_str().unwrap(),
        "--cluster",
        FIXTURE,
        "--output",
        "json",
    ];
    for class in ["denied", "unused", "unrestricted"] {
        let out = bin()
            .args(["policy", "check"])
            .args(base)
            .args(["--fail-on", class])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{class}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(class));
    }
    // Only what the web workload was seen doing, and the policies that concern it.
    let mut only_web = observed();
    only_web["destinations"] = json!([only_web["destinations"][3].clone()]);
    std::fs::write(&inventory, only_web.to_string()).unwrap();
    let out = bin()
        .args(["policy", "check"])
        .args(base)
        .args(["--fail-on", "denied", "--fail-on", "unrestricted"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_scans_logs_and_names_sources_from_the_cluster_pods() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("coredns.log");
    let lines = [
        coredns_query("10.244.1.11", "api.github.com"),
        coredns_query("10.244.1.11", "example.org"),
    ];
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let report = json_of(&check(&[
        "--cluster",
        FIXTURE,
        "--output",
        "json",
        log.to_str().unwrap(),
    ]));
    assert_eq!(
        rows(&report),
        [
            "shop/web -> example.org null: denied ",
            "shop/web -> api.github.com null: allowed CiliumNetworkPolicy shop/web-fqdn egress[1]",
        ]
    );
    assert!(
        row(&report, "example.org")["observed"]
            .as_str()
            .unwrap()
            .contains("looked up only")
    );
}

#[test]
fn query_answers_each_line_and_one_question_readably() {
    let queries = [
        r#"{"from": "shop/cart", "to": "52.1.2.3", "port": 443, "name": "api.stripe.com"}"#,
        r#"{"from": "shop/cart", "to": "10.96.0.50", "port": 80}"#,
        r#"{"from": "payments/api", "to": "shop/web", "port": 80, "protocol": "udp"}"#,
        "not json",
        r#"{"from": "shop/ghost", "to": "1.1.1.1"}"#,
        "",
        r#"{"from": "shop/Deployment/cart", "to": "169.254.169.254", "port": 80}"#,
    ];
    let out = with_stdin(
        bin().args(["policy", "query", FIXTURE, "--queries", "-"]),
        queries.join("\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        answers.len(),
        6,
        "one answer per non-empty line: {answers:?}"
    );
    assert_eq!(answers[0]["allowed"], true);
    assert_eq!(
        answers[0]["egress"]["decisions"][1]["rule"],
        "ServiceEntry shop/stripe host api.stripe.com"
    );
    // Through the Service to its pod, on the target port by name: egress and ingress sides.
    assert_eq!(answers[1]["service"], "payments/api");
    assert_eq!(answers[1]["to_pod"], "payments/api-6c8b-xyz12");
    assert_eq!(
        answers[1]["ingress"]["decisions"][0]["rule"],
        "NetworkPolicy payments/api-ingress ingress[0]"
    );
    assert_eq!(answers[2]["allowed"], true, "{}", answers[2]);
    assert_eq!(
        answers[2]["egress"]["decisions"][0]["layer"],
        "unrestricted"
    );
    assert_eq!(answers[3]["line"], 4);
    assert!(
        answers[3]["error"]
            .as_str()
            .unwrap()
            .starts_with("not a query")
    );
    assert!(
        answers[4]["error"]
            .as_str()
            .unwrap()
            .contains("no pod or workload shop/ghost")
    );
    assert_eq!(answers[5]["allowed"], false);
    assert_eq!(
        answers[5]["egress"]["decisions"][0]["rule"],
        "AdminNetworkPolicy deny-metadata egress[0] (cloud-metadata)"
    );

    let out = bin()
        .args([
            "policy",
            "query",
            FIXTURE,
            "--from",
            "shop/cart",
            "--to",
            "203.0.113.5",
        ])
        .args(["--port", "443", "--name", "evil.example.com"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "denied exits 2");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("shop/cart -> 203.0.113.5:443/TCP (evil.example.com): DENIED"),
        "{text}"
    );
    assert!(text.contains("BlackHoleCluster"), "{text}");
}

/// The real upstream CRDs of the policy kinds (../shared/crds), when this checkout has them
/// beside it.
fn shared_crds() -> Option<Vec<Value>> {
    let dir = repo("../shared/crds");
    let found = dir.is_dir().then_some(dir);
    let dir = support::service(found, "no ../shared/crds: the real CRDs are shared data")?;
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

/// Creates the fixture's objects as a user would; pods get their status as a kubelet
/// would report it.
async fn create_fixture(cluster: &Cluster) {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, Patch, PatchParams};
    let text = std::fs::read_to_string(repo(FIXTURE)).unwrap();
    for mut object in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
        let status = object.as_object_mut().unwrap().remove("status");
        // The apiserver makes kube-system itself.
        if object["kind"] == "Namespace" && object["metadata"]["name"] == "kube-system" {
            continue;
        }
        cluster.apply(object.clone()).await;
        if let Some(status) = status {
            let ns = object["metadata"]["namespace"].as_str().unwrap();
            let name = object["metadata"]["name"].as_str().unwrap();
            let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), ns);
            pods.patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await
            .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_cluster_with_real_crds_answers_as_the_files_do() {
    let Some(crds) = shared_crds() else {
        return;
    };
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    for crd in crds {
        cluster.apply(crd).await;
    }
    create_fixture(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let inventory = write_inventory(dir.path());
    let kubeconfig = cluster.kubeconfig.to_str().unwrap().to_string();
    let inventory = inventory.to_str().unwrap().to_string();
    let (live, files) = tokio::task::spawn_blocking(move || {
        let live = check(&[
            "--inventory",
            &inventory,
            "--live",
            "--kubeconfig",
            &kubeconfig,
            "--output",
            "json",
        ]);
        let files = check(&[
            "--inventory",
            &inventory,
            "--cluster",
            FIXTURE,
            "--output",
            "json",
        ]);
        (json_of(&live), json_of(&files))
    })
    .await
    .unwrap();
    assert_eq!(live["unavailable"], json!([]));
    assert_eq!(rows(&live), expected_rows());
    assert_eq!(live, files);
}

/// The fixture's namespaces, pods, Services (and, with `mesh`, the mesh config) without any
/// policy: what `policy generate` starts from.
fn base_cluster(dir: &Path, mesh: bool) -> PathBuf {
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

fn generate(args: &[&str]) -> (String, String) {
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

/// Every observed edge allowed by the generated policies alone, but what a kind cannot
/// express; and destinations nobody observed denied.
#[test]
fn generated_policies_allow_exactly_what_was_observed() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = write_inventory(dir.path());
    let inventory = inventory.to_str().unwrap();
    // What each kind leaves denied (what it cannot express, and the cloud metadata address
    // the datapath dropped when observed: generation never allows it), and the sources it
    // governs. Only the cart has a sidecar: the others stay unrestricted under Istio.
    let all = ["shop/cart", "shop/web", "payments/batch", "payments/api"];
    let metadata = "169.254.169.254";
    let cases: [(&str, bool, &[&str], &[&str]); 4] = [
        (
            "networkpolicy",
            false,
            &["registry.npmjs.org", metadata],
            &all[..3],
        ),
        ("cilium", false, &[metadata], &all),
        ("istio", true, &[metadata], &all[..1]),
        ("adminnetworkpolicy", false, &[metadata], &all),
    ];
    for (kind, mesh, inexpressible, governed) in cases {
        let base = base_cluster(dir.path(), mesh);
        let base = base.to_str().unwrap();
        let (yaml, notes) =
            generate(&["--inventory", inventory, "--cluster", base, "--kind", kind]);
        let (again, _) = generate(&["--inventory", inventory, "--cluster", base, "--kind", kind]);
        assert_eq!(yaml, again, "{kind}: deterministic");
        assert!(!yaml.contains("\"\""), "{kind}: no empty strings");
        for name in inexpressible {
            assert!(notes.contains(name), "{kind}: {notes}");
        }
        assert!(
            notes.contains("shop/cart -> 169.254.169.254 was blocked when observed"),
            "{notes}"
        );
        let generated = dir.path().join(format!("{kind}.yaml"));
        std::fs::write(&generated, &yaml).unwrap();
        let generated = generated.to_str().unwrap();
        let report = json_of(&check(&[
            "--inventory",
            inventory,
            "--cluster",
            base,
            "--cluster",
            generated,
            "--output",
            "json",
        ]));
        for r in report["rows"].as_array().unwrap() {
            let destination = r["destination"].as_str().unwrap();
            let source = r["source"].as_str().unwrap();
            let expected = if inexpressible.contains(&destination) {
                "denied"
            } else if governed.contains(&source) {
                "allowed"
            } else {
                "unrestricted"
            };
            assert_eq!(r["status"], expected, "{kind}: {r}");
        }
        // Probes nobody observed: another address, another port, another name.
        let probes: Vec<String> = [
            ("shop/cart", "52.1.2.4", 443, "api.stripe.com.evil.example"),
            ("shop/cart", "52.1.2.3", 8443, "other.stripe.com"),
            ("shop/web", "140.82.112.6", 22, "gist.github.com"),
            (
                "payments/batch",
                "151.101.0.224",
                443,
                "files.pythonhosted.org",
            ),
        ]
        .iter()
        .filter(|(from, ..)| governed.contains(from))
        .map(|(from, to, port, name)| {
            json!({"from": from, "to": to, "port": port, "name": name}).to_string()
        })
        .collect();
        let out = with_stdin(
            bin().args(["policy", "query", base, generated, "--queries", "-"]),
            probes.join("\n").as_bytes(),
        );
        for answer in String::from_utf8(out.stdout).unwrap().lines() {
            let a: Value = serde_json::from_str(answer).unwrap();
            assert_eq!(a["allowed"], false, "{kind}: a probe allowed: {a}");
        }
    }
}

#[test]
fn generate_writes_a_file_per_kind_and_diffs_against_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = write_inventory(dir.path());
    let inventory = inventory.to_str().unwrap();
    let base = base_cluster(dir.path(), true);
    let base = base.to_str().unwrap();
    let out = dir.path().join("policies");
    let all = [
        "--kind",
        "networkpolicy",
        "--kind",
        "cilium",
        "--kind",
        "istio",
        "--kind",
        "adminnetworkpolicy",
    ];
    generate(
        &[
            &[
                "--inventory",
                inventory,
                "--cluster",
                base,
                "--out",
                out.to_str().unwrap(),
            ][..],
            &all,
        ]
        .concat(),
    );
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "adminnetworkpolicies.yaml",
            "ciliumnetworkpolicies.yaml",
            "istio.yaml",
            "networkpolicies.yaml"
        ]
    );
    let nps = std::fs::read_to_string(out.join("networkpolicies.yaml")).unwrap();
    assert!(
        nps.contains("# api.stripe.com (52.1.2.3): first seen 2026-12-01T08:00:00Z"),
        "{nps}"
    );
    assert!(!nps.contains("pod-template-hash"), "{nps}");
    let istio = std::fs::read_to_string(out.join("istio.yaml")).unwrap();
    assert!(
        istio.contains("REGISTRY_ONLY"),
        "the mesh switch is a commented step"
    );
    // Against a cluster that has the NetworkPolicies already: unchanged; the rest new.
    let (diff, _) = generate(
        &[
            &[
                "--inventory",
                inventory,
                "--cluster",
                base,
                "--cluster",
                out.join("networkpolicies.yaml").to_str().unwrap(),
                "--diff",
            ][..],
            &all,
        ]
        .concat(),
    );
    assert!(
        diff.contains("= NetworkPolicy shop/egress-scout-cart: unchanged"),
        "{diff}"
    );
    assert!(
        diff.contains("+ CiliumNetworkPolicy shop/egress-scout-cart: new"),
        "{diff}"
    );
    assert!(
        diff.contains("+ ServiceEntry shop/egress-scout-api-stripe-com: new"),
        "{diff}"
    );
    assert!(diff.ends_with("4 unchanged, 0 to remove\n"), "{diff}");
}

/// What the apiserver would store, for what was sent: the same (1.20 prunes unknown fields
/// silently, so a typo would show as a difference).
fn stored_as_sent(sent: &Value, stored: &Value) {
    assert_eq!(stored["spec"], sent["spec"], "{}", sent["metadata"]["name"]);
    for key in ["name", "namespace", "labels", "annotations"] {
        assert_eq!(stored["metadata"][key], sent["metadata"][key], "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn generated_documents_pass_a_dry_run_with_the_real_crds() {
    let Some(crds) = shared_crds() else {
        return;
    };
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    for crd in crds {
        cluster.apply(crd).await;
    }
    for ns in ["shop", "payments"] {
        cluster.add_namespace(ns).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let inventory = write_inventory(dir.path());
    let base = base_cluster(dir.path(), true);
    let args: Vec<String> = [
        "--inventory",
        inventory.to_str().unwrap(),
        "--cluster",
        base.to_str().unwrap(),
        "--kind",
        "networkpolicy",
        "--kind",
        "cilium",
        "--kind",
        "istio",
        "--kind",
        "adminnetworkpolicy",
        "--fqdn-patterns",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (yaml, _) = tokio::task::spawn_blocking(move || {
        generate(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
    let kinds: std::collections::BTreeSet<&str> =
        docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "AdminNetworkPolicy",
            "CiliumNetworkPolicy",
            "NetworkPolicy",
            "ServiceEntry",
            "Sidecar"
        ]
        .into()
    );
    for doc in &docs {
        match cluster.dry_run_create(doc).await {
            Ok(stored) => stored_as_sent(doc, &stored),
            Err(e) => panic!("{} refused: {e}", doc["metadata"]["name"]),
        }
    }
}

/// The README's walk-through over the bundled examples, no cluster: check (all
/// unrestricted), generate, check again (all allowed but what the mesh refused).
#[test]
fn examples_walk_through_scan_check_generate_check() {
    let logs = [
        "examples/coredns.log",
        "examples/node-local-dns-docker.log",
        "examples/istio-proxy.log",
        "examples/istio-proxy-cri.log",
    ];
    let cidrs = [
        "--cluster-cidr",
        "10.244.0.0/16",
        "--cluster-cidr",
        "10.96.0.0/12",
    ];
    let cluster = ["--cluster", "examples/pods.json"];
    let before = json_of(&check(
        &[&cluster[..], &cidrs, &["--output", "json"], &logs].concat(),
    ));
    assert_eq!(
        before["totals"],
        json!({"allowed": 0, "denied": 0, "unrestricted": 13, "unknown": 0})
    );
    let dir = tempfile::tempdir().unwrap();
    for kind in ["cilium", "networkpolicy"] {
        let (yaml, notes) = generate(&[&cluster[..], &cidrs, &["--kind", kind], &logs].concat());
        assert!(
            notes.contains("shop/checkout -> 192.0.2.80 was blocked when observed"),
            "{notes}"
        );
        let generated = dir.path().join(format!("{kind}.yaml"));
        std::fs::write(&generated, yaml).unwrap();
        let with = ["--cluster", generated.to_str().unwrap()];
        let after = json_of(&check(
            &[&cluster[..], &with, &cidrs, &["--output", "json"], &logs].concat(),
        ));
        let mut denied: Vec<String> = after["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] != "allowed")
            .map(|r| {
                format!(
                    "{} {}",
                    r["destination"].as_str().unwrap(),
                    r["status"].as_str().unwrap()
                )
            })
            .collect();
        denied.sort();
        // Names only looked up carry no address a NetworkPolicy could name.
        let expected: &[&str] = match kind {
            "cilium" => &["192.0.2.80 denied"],
            _ => &[
                "192.0.2.80 denied",
                "graph.microsoft.com denied",
                "login.microsoftonline.com denied",
                "monitoring.us-east-1.amazonaws.com denied",
                "registry-1.docker.io denied",
                "sts.amazonaws.com denied",
            ],
        };
        assert_eq!(denied, expected, "{kind}");
    }
}

/// The sample corpus's Istio and CoreDNS logs (../shared/samples, when present): a pod stands
/// for each client address they show; the generated Cilium policies allow every edge but
/// what was observed blocked.
#[test]
fn the_sample_corpus_round_trips() {
    let dir = repo("../shared/samples");
    let found = dir.is_dir().then_some(dir);
    let Some(samples) =
        support::service(found, "no ../shared/samples: the samples are shared data")
    else {
        return;
    };
    let logs: Vec<String> = [
        "envoy-istio/istio-io_access-log_default-format_1.9plus.log",
        "envoy-istio/istio-io_access-log_pre-1.9-formats.log",
        "coredns/coredns-repo_doc-examples.log",
    ]
    .iter()
    .map(|rel| samples.join(rel).to_str().unwrap().to_string())
    .collect();
    let logs: Vec<&str> = logs.iter().map(String::as_str).collect();
    let doc = support::scan(&logs);
    let mut pods = Vec::new();
    for d in doc["destinations"].as_array().unwrap() {
        for e in d["edges"].as_array().unwrap() {
            let ip = e["source"]["ip"]
                .as_str()
                .expect("the samples name clients by address");
            let name = format!("client-{}", ip.replace(['.', ':'], "-"));
            pods.push(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"namespace": "samples", "name": name, "labels": {"app": name}},
                "spec": {"containers": [{"name": "app"}]},
                "status": {"phase": "Running", "podIP": ip}}));
        }
    }
    assert!(pods.len() >= 3, "{doc}");
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster.json");
    std::fs::write(&cluster, json!({"kind": "List", "items": pods}).to_string()).unwrap();
    let inventory = dir.path().join("inventory.json");
    std::fs::write(&inventory, doc.to_string()).unwrap();
    let base = [
        "--inventory",
        inventory.to_str().unwrap(),
        "--cluster",
        cluster.to_str().unwrap(),
    ];
    let (yaml, _) = generate(&[&base[..], &["--kind", "cilium"]].concat());
    let generated = dir.path().join("cilium.yaml");
    std::fs::write(&generated, yaml).unwrap();
    let with = ["--cluster", generated.to_str().unwrap(), "--output", "json"];
    let report = json_of(&check(&[&base[..], &with].concat()));
    for r in report["rows"].as_array().unwrap() {
        let blocked = r["observed"]
            .as_str()
            .is_some_and(|o| o.starts_with("blocked"));
        let want = if blocked { "denied" } else { "allowed" };
        assert_eq!(r["status"], want, "{r}");
    }
    assert!(
        report["totals"]["allowed"].as_u64().unwrap() >= 3,
        "{report}"
    );
}
