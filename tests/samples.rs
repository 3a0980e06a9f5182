//! Acceptance over the real logs in ../shared/samples (CI has them; a fresh clone may not,
//! and then this says it skipped).

mod support;

use std::path::PathBuf;

use support::{ips, names, scan, set, stat};

fn samples() -> Option<PathBuf> {
    let dir = support::repo("../shared/samples");
    if dir.is_dir() {
        Some(dir)
    } else {
        support::skipped(&format!("{} does not exist", dir.display()));
        None
    }
}

fn scan_sample(rel: &str, extra: &[&str]) -> serde_json::Value {
    let dir = samples().unwrap();
    let path = dir.join(rel);
    let mut args: Vec<&str> = extra.to_vec();
    let p = path.to_str().unwrap().to_string();
    args.push(&p);
    scan(&args)
}

#[test]
fn coredns_doc_examples() {
    if samples().is_none() {
        return;
    }
    let doc = scan_sample("coredns/coredns-repo_doc-examples.log", &[]);
    assert_eq!(names(&doc), set(&["example.org"]));
    assert_eq!(stat(&doc, "lines"), 6);
    assert_eq!(stat(&doc, "records"), 1);
    assert_eq!(
        stat(&doc, "skipped"),
        5,
        "warnings, errors and plugin lines are skipped"
    );
    assert_eq!(stat(&doc, "malformed"), 0);
}

#[test]
fn istio_1_9_plus_with_egress_gateway() {
    if samples().is_none() {
        return;
    }
    let doc = scan_sample(
        "envoy-istio/istio-io_access-log_default-format_1.9plus.log",
        &[],
    );
    assert_eq!(
        names(&doc),
        set(&["cloud.ibm.com", "de.wikipedia.org", "en.wikipedia.org"])
    );
    // The gateway (172.17.5.170) and the httpbin service are internal; the dialled and
    // forwarded public addresses are not.
    assert_eq!(
        ips(&doc),
        set(&["104.102.54.251", "185.15.59.224", "208.80.153.224"])
    );
    assert_eq!(stat(&doc, "malformed"), 0);
    assert_eq!(stat(&doc, "skipped"), 1, "the inbound line");
    assert_eq!(
        stat(&doc, "internal"),
        3,
        "httpbin and the two sni_cluster hops"
    );
}

#[test]
fn istio_pre_1_9_formats() {
    if samples().is_none() {
        return;
    }
    let doc = scan_sample("envoy-istio/istio-io_access-log_pre-1.9-formats.log", &[]);
    assert_eq!(names(&doc), set(&["edition.cnn.com"]));
    assert_eq!(ips(&doc), set(&["151.101.129.67", "151.101.65.67"]));
    let ports: Vec<u64> = doc["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["ports"].as_array().unwrap().clone())
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [80, 443]);
    assert_eq!(stat(&doc, "malformed"), 0);
}

#[test]
fn container_log_wrappers_never_break_the_stream() {
    if samples().is_none() {
        return;
    }
    for rel in [
        "cri/kubernetes_kuberuntime-logs_test-lines.log",
        "cri/plaso_cri.log",
        "docker-json/kubernetes_kuberuntime-logs_test-lines.log",
        "docker-json/fluentbit_istio-proxy_mixer_tcpaccesslog.log",
    ] {
        let doc = scan_sample(rel, &[]);
        // Application lines and the Istio 1.0 mixer entry (to an internal pod) hold no egress.
        assert!(
            doc["destinations"].as_array().unwrap().is_empty(),
            "{rel}: {doc}"
        );
        let t = |k| stat(&doc, k);
        assert_eq!(
            t("lines"),
            t("records") + t("skipped") + t("malformed"),
            "{rel}: {doc}"
        );
    }
    // The kubelet's own test lines end with an unterminated partial (P) line per stream.
    let doc = scan_sample("cri/kubernetes_kuberuntime-logs_test-lines.log", &[]);
    assert_eq!(stat(&doc, "malformed"), 1, "{doc}");
}

#[test]
fn public_cluster_cidr_is_internal() {
    if samples().is_none() {
        return;
    }
    let doc = scan_sample(
        "envoy-istio/istio-io_access-log_pre-1.9-formats.log",
        &["--cluster-cidr", "151.101.0.0/16"],
    );
    assert!(ips(&doc).is_empty(), "{doc}");
    assert_eq!(names(&doc), set(&["edition.cnn.com"]));
}

#[test]
fn every_hubble_capture_parses_and_world_labels_on_private_ips_stay_internal() {
    let Some(dir) = samples() else {
        return;
    };
    let mut external = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir.join("hubble")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        // Detected, not told: `auto` recognises Hubble JSON.
        let doc = scan(&[path.to_str().unwrap()]);
        assert_eq!(stat(&doc, "malformed"), 0, "{}", path.display());
        assert!(stat(&doc, "lines") > 0);
        external.extend(ips(&doc));
    }
    // Many flows label private pod IPs `reserved:world`; the only public destination is the
    // event exporter's connection to 35.246.31.234:443.
    assert_eq!(external, set(&["35.246.31.234"]));
}

#[test]
fn falcosidekick_payloads_parse_and_are_not_network_alerts() {
    if samples().is_none() {
        return;
    }
    let doc = scan_sample(
        "falco/falcosidekick-readme_and_testhandler_payloads.jsonl",
        &["--format", "falco"],
    );
    assert_eq!(stat(&doc, "lines"), 2);
    assert_eq!(stat(&doc, "malformed"), 0);
    // A file write and a test alert: no connection in either.
    assert_eq!(stat(&doc, "skipped"), 2);
}
