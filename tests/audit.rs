//! `egress-scout audit`: offline over the project's fixture (every finding type, and the
//! internal names, CIDRs and registries that must not be one) and ../shared/samples/k8s; live
//! against a real kube-apiserver with the project's minimal CRDs, the same objects applied:
//! the same findings, a missing CRD and RBAC denials reported, pod logs scanned.

mod cluster;
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use cluster::{Cluster, Kubelet, TestPod};
use serde_json::{Value, json};
use support::{bin, repo, with_stdin};

const FIXTURE: &str = "tests/fixtures/audit/cluster.yaml";
const INTERNAL_REGISTRY: &str = "registry.corp.example";

fn audit(args: &[&str]) -> Output {
    bin().arg("audit").args(args).output().unwrap()
}

fn report(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "audit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (kind, namespace, object, destination, port) of every finding.
fn keys(report: &Value) -> BTreeSet<String> {
    let text = |v: &Value| match v {
        Value::Null => "*".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} {}",
                f["kind"].as_str().unwrap(),
                text(&f["namespace"]),
                f["object"].as_str().unwrap(),
                text(&f["destination"]),
                text(&f["port"])
            )
        })
        .collect()
}

fn fixture_objects() -> Vec<Value> {
    let text = std::fs::read_to_string(repo(FIXTURE)).unwrap();
    let list: Value = serde_saphyr::from_str(&text).unwrap();
    list["items"].as_array().unwrap().clone()
}

#[test]
fn every_finding_type_offline_and_nothing_internal() {
    let r = report(&audit(&[
        "--output",
        "json",
        "--internal-registry",
        INTERNAL_REGISTRY,
        FIXTURE,
    ]));
    assert_eq!(r["schema_version"], 1);
    let expected: BTreeSet<String> = [
        "unrestricted_pod payments Pod/ledger * *",
        "unrestricted_pod shop CronJob/backup * *",
        "unrestricted_pod shop Pod/worker * *",
        "egress_allow_all analytics CiliumNetworkPolicy/etl-egress world *",
        "egress_allow_all payments NetworkPolicy/allow-all-egress * *",
        "egress_allow_all shop NetworkPolicy/web-egress 0.0.0.0/0 443",
        "mesh_outbound_policy istio-system ConfigMap/istio * *",
        "external_cidr analytics CiliumNetworkPolicy/etl-egress 198.51.100.0/24 *",
        "external_cidr shop NetworkPolicy/web-egress 203.0.113.0/24 5432",
        "external_cidr shop NetworkPolicy/web-egress 203.0.113.0/24 32000-32768",
        "fqdn_rule * CiliumClusterwideNetworkPolicy/telemetry telemetry.example.org *",
        "fqdn_rule analytics CiliumNetworkPolicy/etl-egress *.s3.example.com 443",
        "fqdn_rule analytics CiliumNetworkPolicy/etl-egress api.segment.example.com 443",
        "service_entry shop ServiceEntry/stripe api.stripe.example.com 443",
        "destination_rule shop DestinationRule/stripe-tls api.stripe.example.com *",
        "config_endpoint payments Pod/ledger 203.0.113.40 8443",
        "config_endpoint shop CronJob/backup backups.example.com *",
        "config_endpoint shop Deployment/web api.stripe.example.com 443",
        "config_endpoint shop Deployment/web b-1.kafka.example.net 9094",
        "config_endpoint shop Deployment/web b-2.kafka.example.net 9094",
        "config_endpoint shop Deployment/web hooks.slack.example.com 443",
        "config_endpoint shop Deployment/web search.example.org *",
        "config_endpoint shop Pod/worker api.github.com 443",
        "config_endpoint shop Pod/worker cluster0.abcde.mongodb.example.net *",
        "config_reference shop Deployment/web * *",
        "external_image shop Deployment/web docker.io *",
        "external_image shop Pod/worker ghcr.io *",
    ]
    .map(String::from)
    .into();
    assert_eq!(keys(&r), expected);
    // Internal names, cluster CIDRs, MESH_INTERNAL hosts and the internal registry: nowhere.
    let text = keys(&r).into_iter().collect::<Vec<_>>().join("\n");
    for internal in [
        "cluster.local",
        "rabbitmq",
        "redis",
        "10.96.",
        "10.0.0.0",
        "legacy.shop.internal",
        INTERNAL_REGISTRY,
        "Pod/done",
        "Pod/etl",
        "Pod/api",
    ] {
        assert!(!text.contains(internal), "{internal} in {text}");
    }
    let details: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["detail"].as_str().unwrap())
        .collect();
    assert!(
        details
            .iter()
            .all(|d| !d.contains("pw@") && !d.contains("guest")),
        "credentials of connection strings never printed"
    );
    assert!(details.contains(&"TLS origination SIMPLE; declared by ServiceEntry/stripe"));
    assert!(
        details
            .contains(&"env API_TOKEN of container web from Secret stripe key token: not resolved")
    );
    let s = &r["summary"];
    assert_eq!(
        s["unrestricted_by_namespace"],
        json!({"payments": 1, "shop": 2})
    );
    assert_eq!(s["mesh_outbound_policy"], "ALLOW_ANY");
    assert_eq!(
        (s["workloads"].as_u64(), s["pods"].as_u64()),
        (Some(6), Some(5))
    );
    assert_eq!(s["findings_by_kind"]["config_endpoint"], 9);
}

#[test]
fn json_stdin_directories_and_broken_documents() {
    let yaml = report(&audit(&["--output", "json", FIXTURE]));
    // The same objects as a JSON List on stdin.
    let list = json!({"apiVersion": "v1", "kind": "List", "items": fixture_objects()});
    let out = with_stdin(
        bin().args(["audit", "--output", "json", "-"]),
        list.to_string().as_bytes(),
    );
    let from_stdin = report(&out);
    assert_eq!(from_stdin["findings"], yaml["findings"]);
    // A directory: one document per file, one of them broken, one of another kind.
    let dir = tempfile::tempdir().unwrap();
    for (i, object) in fixture_objects().iter().enumerate() {
        let text = serde_json::to_string_pretty(object).unwrap();
        std::fs::write(dir.path().join(format!("{i:02}.json")), text).unwrap();
    }
    std::fs::write(dir.path().join("broken.yaml"), "kind: [unclosed\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
    let from_dir = report(&audit(&["--output", "json", dir.path().to_str().unwrap()]));
    assert_eq!(from_dir["findings"], yaml["findings"]);
    let unavailable = from_dir["summary"]["unavailable"].to_string();
    assert!(unavailable.contains("broken.yaml"), "{unavailable}");
    assert!(!unavailable.contains("notes.txt"), "{unavailable}");
}

#[test]
fn outputs_and_ci_gates() {
    let table = audit(&["--output", "table", FIXTURE]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("unrestricted_pod (3)"), "{table}");
    assert!(table.contains("unrestricted workloads by namespace: payments 1, shop 2"));
    let md = String::from_utf8(audit(&["--output", "markdown", FIXTURE]).stdout).unwrap();
    assert!(md.starts_with("# Egress audit\n"), "{md}");
    assert!(
        md.contains("## service_entry (1)\n\n| severity | namespace |"),
        "{md}"
    );
    let gate = audit(&["--output", "json", "--fail-on", "unrestricted", FIXTURE]);
    assert_eq!(gate.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&gate.stderr).contains("--fail-on unrestricted"));
    // Only restricted pods and in-cluster destinations: no gate trips.
    let dir = tempfile::tempdir().unwrap();
    let quiet = dir.path().join("quiet.yaml");
    std::fs::write(
        &quiet,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\nspec:\n  containers:\n  - name: a\n    image: registry.corp.example/a:1\n    env: [{name: DB_URL, value: 'postgres://db.x.svc.cluster.local/a'}]\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: x}\nspec: {podSelector: {}, policyTypes: [Egress]}\n",
    )
    .unwrap();
    let quiet = quiet.to_str().unwrap();
    let pass = audit(&[
        "--output",
        "json",
        "--fail-on",
        "unrestricted",
        "--fail-on",
        "external",
        "--internal-registry",
        INTERNAL_REGISTRY,
        quiet,
    ]);
    assert_eq!(report(&pass)["findings"], json!([]));
    let bad = audit(&["--cluster-cidr", "10.244.0.0/99", FIXTURE]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--cluster-cidr"));
}

#[test]
fn shared_samples() {
    let dir = repo("../shared/samples/k8s");
    if !dir.is_dir() {
        return support::skipped("no ../shared/samples/k8s");
    }
    let r = report(&audit(&["--output", "json", dir.to_str().unwrap()]));
    let destinations: BTreeSet<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["destination"].as_str())
        .collect();
    for expected in [
        "20.1.1.1/32",
        "my-remote-service.com",
        "cilium.io",
        "special*service.api.cilium.io",
        "api.dropboxapi.com",
        "*.wikipedia.org",
        "edition.cnn.com",
    ] {
        assert!(
            destinations.contains(expected),
            "{expected} in {destinations:?}"
        );
    }
    // In-cluster: the ipBlocks of 10.0.0.0/24 and 10.0.0.0/8, the egress gateway's
    // DestinationRule, the MESH_INTERNAL mongo cluster.
    for internal in [
        "10.0.0.0/24",
        "10.0.0.0/8",
        "istio-egressgateway",
        "mymongodb",
    ] {
        assert!(
            !destinations.iter().any(|d| d.contains(internal)),
            "{internal} in {destinations:?}"
        );
    }
    assert_eq!(r["summary"]["unavailable"], json!([]));
}

async fn install_crds(cluster: &Cluster) {
    let text = std::fs::read_to_string(repo("tests/fixtures/crds/audit.yaml")).unwrap();
    for crd in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
        cluster.apply(crd).await;
    }
}

async fn audit_live(kubeconfig: &Path, extra: &[&str]) -> Value {
    let kubeconfig = kubeconfig.to_str().unwrap().to_string();
    let mut args = vec![
        "--output".to_string(),
        "json".into(),
        "--kubeconfig".into(),
        kubeconfig,
        "--internal-registry".into(),
        INTERNAL_REGISTRY.into(),
        "--internal-registry".into(),
        "registry.k8s.io".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        audit(&args)
    })
    .await
    .unwrap();
    report(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_cluster_matches_files_and_reports_what_it_cannot_read() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    for ns in ["shop", "payments", "analytics", "istio-system"] {
        cluster.add_namespace(ns).await;
    }
    install_crds(&cluster).await;
    // Everything but what a live audit does not read (CronJobs: it reads their pods) or
    // cannot (the clusterwide Cilium CRD is not installed; a finished pod's phase is status).
    let applied: Vec<Value> = fixture_objects()
        .into_iter()
        .filter(|o| {
            !matches!(
                o["kind"].as_str(),
                Some("CronJob" | "CiliumClusterwideNetworkPolicy")
            ) && o["metadata"]["name"] != "done"
        })
        .collect();
    let mut applied = applied;
    for object in &mut applied {
        if let Some(m) = object.as_object_mut() {
            m.remove("status");
        }
        // The test apiserver (1.20) predates NetworkPolicy `endPort` and drops it.
        for rule in object["spec"]["egress"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            for port in rule["ports"].as_array_mut().into_iter().flatten() {
                port.as_object_mut().map(|p| p.remove("endPort"));
            }
        }
        cluster.apply(object.clone()).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let subset = dir.path().join("applied.json");
    std::fs::write(
        &subset,
        json!({"kind": "List", "items": applied}).to_string(),
    )
    .unwrap();
    let offline = report(&audit(&[
        "--output",
        "json",
        "--internal-registry",
        INTERNAL_REGISTRY,
        subset.to_str().unwrap(),
    ]));
    let live = audit_live(&cluster.kubeconfig, &[]).await;
    assert_eq!(live["findings"], offline["findings"]);
    let missing = |resource: &str| {
        json!({"resource": resource,
        "reason": "not served by this cluster (CRD not installed)"})
    };
    assert_eq!(
        live["summary"]["unavailable"],
        json!([
            missing("adminnetworkpolicies.policy.networking.k8s.io"),
            missing("baselineadminnetworkpolicies.policy.networking.k8s.io"),
            missing("ciliumclusterwidenetworkpolicies.cilium.io"),
            missing("sidecars.networking.istio.io"),
        ])
    );
    assert_eq!(live["summary"]["mesh_outbound_policy"], "ALLOW_ANY");

    // A user who may only list pods: every other resource reported, nothing fatal, and no
    // pod called unrestricted when the policies could not be read.
    cluster
        .apply(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "pod-lister"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}),
        )
        .await;
    cluster
        .apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "viewer-pod-lister"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-lister"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "viewer"}]}))
        .await;
    let limited = audit_live(&cluster.viewer_kubeconfig, &[]).await;
    let refused: BTreeSet<&str> = limited["summary"]["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["reason"].as_str().unwrap().starts_with("forbidden"))
        .map(|u| u["resource"].as_str().unwrap())
        .collect();
    assert_eq!(
        refused,
        BTreeSet::from([
            "namespaces",
            "replicasets.apps",
            "jobs.batch",
            "services",
            "networkpolicies.networking.k8s.io",
            "istio-system/configmaps",
            "serviceentries.networking.istio.io",
            "destinationrules.networking.istio.io",
            "ciliumnetworkpolicies.cilium.io",
            // RBAC answers before the API knows the resource is not served.
            "ciliumclusterwidenetworkpolicies.cilium.io",
            "sidecars.networking.istio.io",
            "adminnetworkpolicies.policy.networking.k8s.io",
            "baselineadminnetworkpolicies.policy.networking.k8s.io",
        ])
    );
    let kinds: BTreeSet<&str> = limited["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["config_endpoint", "config_reference", "external_image"])
    );

    // --logs: the last lines of a running pod's container, through the apiserver.
    let kubelet = Kubelet::start().await;
    cluster.add_node("node-1", &kubelet).await;
    cluster
        .add_pod(
            TestPod {
                ns: "shop",
                name: "checkout",
                labels: json!({"app": "web"}),
                ip: "10.244.1.7",
                container: "checkout",
                owner: None,
            },
            "node-1",
        )
        .await;
    kubelet.log(
        "shop",
        "checkout",
        "checkout",
        "POST https://hooks.example.net/notify 200\nGET http://inventory.shop.svc.cluster.local/items 200\nready on :8080\n",
    );
    let with_logs = audit_live(&cluster.kubeconfig, &["--logs", "50", "-n", "shop"]).await;
    let found = keys(&with_logs);
    assert!(
        found.contains("log_endpoint shop Pod/checkout hooks.example.net 443"),
        "{found:?}"
    );
    assert_eq!(
        found
            .iter()
            .filter(|k| k.starts_with("log_endpoint"))
            .count(),
        1,
        "{found:?}"
    );
    assert!(found.iter().all(|k| !k.contains(" payments ")), "-n shop");
}
