//! `egress-scout policy query` and `policy check` over the project's fixture cluster (every
//! policy dialect): JSON-lines answers, check rows with their rules, denials explained by
//! the observation, unused allowances, CI gates; and the same answers from a real
//! kube-apiserver with the real upstream CRDs of ../shared/crds installed.

mod cluster;
mod policy_fixture;
mod support;

use cluster::Cluster;
use policy_fixture::*;
use serde_json::{Value, json};
use support::{bin, coredns_query, repo, with_stdin};

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
    let Some(cluster) = with_policy_crds().await else {
        return;
    };
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
