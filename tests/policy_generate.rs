//! `egress-scout policy generate`: every kind proven by the evaluator (observed edges
//! allowed, unobserved probes denied) over the fixture cluster, the bundled examples and the
//! sample corpus; written per kind, diffed against the cluster; and every document accepted,
//! as sent, by a dry run on a real kube-apiserver with the real CRDs.

mod cluster;
mod policy_fixture;
mod support;

use policy_fixture::*;
use serde_json::{Value, json};
use support::{bin, repo, with_stdin};

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
    let Some(cluster) = with_policy_crds().await else {
        return;
    };
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
