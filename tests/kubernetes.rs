//! Against a real kube-apiserver (see tests/cluster): the `kubernetes_logs` source follows the
//! logs of matching pods through the API, picks up new pods, and resumes a cut stream with no
//! line lost and none repeated.

mod cluster;
mod support;

use std::sync::mpsc;
use std::time::Duration;

use cluster::{Cluster, Kubelet, TestPod};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use serde_json::{Value, json};
use support::{coredns_query as query, expect, spawn_run, terminate};

fn wait(rx: &mpsc::Receiver<Value>, name: &'static str) -> Value {
    tokio::task::block_in_place(|| {
        expect(rx, name, move |v| {
            v["update"] == "new" && v["names"][0] == name
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follows_matching_pods_and_resumes_cut_streams_exactly() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let kubelet = Kubelet::start().await;
    let dns_log = |pod: &str, client: &str, name: &str| {
        kubelet.log("kube-system", pod, "coredns", &query(client, name));
    };
    cluster.add_node("node-1", &kubelet).await;
    let dns = json!({"k8s-app": "kube-dns"});
    cluster
        .add_pod(
            TestPod {
                ns: "kube-system",
                name: "coredns-a",
                labels: dns.clone(),
                ip: "10.244.0.10",
                container: "coredns",
                owner: None,
            },
            "node-1",
        )
        .await;
    cluster
        .add_pod(
            TestPod {
                ns: "kube-system",
                name: "metrics-server-x",
                labels: json!({"k8s-app": "metrics-server"}),
                ip: "10.244.0.11",
                container: "coredns",
                owner: None,
            },
            "node-1",
        )
        .await;
    dns_log("coredns-a", "10.244.1.17", "one.example.com");
    dns_log(
        "metrics-server-x",
        "10.244.1.17",
        "not-selected.example.com",
    );

    // The client of the queries: a Deployment's pod, through its ReplicaSet.
    cluster.add_namespace("shop").await;
    let labels = json!({"app": "checkout", "pod-template-hash": "6f8b9c7d4"});
    let template = json!({"metadata": {"labels": labels},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/checkout:1.42.0"}]}});
    let deployment: Deployment = cluster
        .create(
            "shop",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "checkout"}}, "template": template}}),
        )
        .await;
    let deployment_uid = deployment.metadata.uid.unwrap();
    let replicaset: ReplicaSet = cluster
        .create("shop", json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "checkout-6f8b9c7d4", "namespace": "shop",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout",
                    "uid": deployment_uid, "controller": true}]},
            "spec": {"selector": {"matchLabels": labels}, "template": template}}))
        .await;
    let replicaset_uid = replicaset.metadata.uid.unwrap();
    cluster
        .add_pod(
            TestPod {
                ns: "shop",
                name: "checkout-6f8b9c7d4-x2x9q",
                labels: labels.clone(),
                ip: "10.244.1.17",
                container: "app",
                owner: Some((
                    "apps/v1",
                    "ReplicaSet",
                    "checkout-6f8b9c7d4",
                    &replicaset_uid,
                )),
            },
            "node-1",
        )
        .await;

    let config = cluster.dir.path().join("logs.toml");
    std::fs::write(
        &config,
        format!(
            "[inventory]\nupdate_interval_secs = 3600\n[enrich]\nkubernetes = true\nkubeconfig = \"{0}\"\n[[sources]]\ntype = \"kubernetes_logs\"\nnamespaces = [\"kube-system\"]\nlabel_selector = \"k8s-app=kube-dns\"\nformat = \"coredns\"\nkubeconfig = \"{0}\"\nreconnect_backoff_ms = 50\n",
            cluster.kubeconfig.display()
        ),
    )
    .unwrap();
    let (mut child, rx) = spawn_run(&config);
    let one = wait(&rx, "one.example.com");
    // The live pod table names the workload behind the client IP.
    let source = &one["source"];
    assert_eq!(
        (
            &source["namespace"],
            &source["pods"][0],
            &source["workload_kind"],
            &source["workload"]
        ),
        (
            &json!("shop"),
            &json!("checkout-6f8b9c7d4-x2x9q"),
            &json!("Deployment"),
            &json!("checkout")
        ),
        "{one}"
    );

    // A new matching pod is followed.
    cluster
        .add_pod(
            TestPod {
                ns: "kube-system",
                name: "coredns-b",
                labels: dns.clone(),
                ip: "10.244.0.12",
                container: "coredns",
                owner: None,
            },
            "node-1",
        )
        .await;
    dns_log("coredns-b", "10.244.1.18", "two.example.com");
    wait(&rx, "two.example.com");

    // Lines in the same second as the cut come again on the resumed stream: none may count twice.
    dns_log("coredns-a", "10.244.1.17", "three.example.com");
    dns_log("coredns-a", "10.244.1.17", "four.example.com");
    wait(&rx, "four.example.com");
    let opened = kubelet.streams_opened();
    kubelet.cut("kube-system", "coredns-a", "coredns");
    while kubelet.streams_opened() == opened {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dns_log("coredns-a", "10.244.1.17", "five.example.com");
    wait(&rx, "five.example.com");

    // A deleted pod's stream is dropped.
    cluster.delete_pod("kube-system", "coredns-b").await;

    terminate(&child);
    let rest: Vec<Value> = tokio::task::block_in_place(|| rx.iter().collect());
    assert!(child.wait().unwrap().success());
    for update in &rest {
        assert_ne!(update["names"][0], "not-selected.example.com");
        assert!(update["count"] == 1, "a line was delivered twice: {update}");
    }
}
