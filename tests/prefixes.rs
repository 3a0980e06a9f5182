//! Logs as people collect them: every line format read with each collector's prefix gives
//! exactly what the bare lines give, detected through the prefix.

mod support;

use serde_json::Value;

use support::{repo, scan};

/// Prefixes as kubectl, stern, journald / syslog files and syslog senders write them.
const PREFIXES: [&str; 12] = [
    "[pod/coredns-558bd4d5db-8gx2h/coredns] ",
    "[coredns-558bd4d5db-8gx2h/coredns] ",
    "[checkout-7d9f8-abcde istio-proxy] ",
    "checkout-7d9f8-abcde istio-proxy ",
    "shop checkout-7d9f8-abcde istio-proxy ",
    "Dec  1 08:02:11 node-1 node-cache[1234]: ",
    "2024-05-14T08:02:11+0000 node-1 node-cache[88]: ",
    "<30>May 14 08:02:11 node-1 coredns[1234]: ",
    "<133>2024-05-14T08:02:11.482+00:00 node-1 coredns ",
    "<165>1 2024-05-14T08:02:11.482Z node-1 envoy 1234 - - ",
    // kubectl logs --timestamps, alone and after --prefix.
    "2024-05-14T08:02:11.482123456Z ",
    "[pod/checkout-7d9f8-abcde/istio-proxy] 2024-05-14T08:02:11.482123456Z ",
];

/// What a scan found: destinations with their counts, and the line counters.
fn found(doc: &Value) -> (Vec<(String, u64)>, [u64; 4]) {
    let destinations = doc["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let key = d["destination"].as_str().unwrap().to_string();
            (key, d["count"].as_u64().unwrap())
        })
        .collect();
    let stat = |k: &str| doc["stats"][k].as_u64().unwrap();
    let stats = [
        stat("records"),
        stat("internal"),
        stat("skipped"),
        stat("malformed"),
    ];
    (destinations, stats)
}

#[test]
fn every_format_reads_the_same_through_every_prefix() {
    let envoy_json = r#"{"start_time":"2024-05-14T08:02:11.482Z","upstream_cluster":"outbound|443||api.stripe.com","upstream_host":"203.0.113.40:443","downstream_remote_address":"10.244.1.17:48108","downstream_local_address":"203.0.113.40:443","authority":"api.stripe.com","requested_server_name":"api.stripe.com","response_code":200}"#;
    let dir = tempfile::tempdir().unwrap();
    let formats: Vec<(&str, String)> = vec![
        (
            "coredns",
            std::fs::read_to_string(repo("examples/coredns.log")).unwrap(),
        ),
        (
            "envoy",
            std::fs::read_to_string(repo("examples/istio-proxy.log")).unwrap(),
        ),
        ("envoy_json", format!("{envoy_json}\n")),
        (
            "hubble",
            std::fs::read_to_string(repo("examples/hubble.json")).unwrap(),
        ),
        (
            "falco",
            std::fs::read_to_string(repo("examples/falco.json")).unwrap(),
        ),
    ];
    for (format, bare) in &formats {
        let path = dir.path().join(format!("{format}.log"));
        std::fs::write(&path, bare).unwrap();
        let expected = found(&scan(&[path.to_str().unwrap()]));
        assert!(
            !expected.0.is_empty(),
            "{format}: the bare lines hold destinations"
        );
        for prefix in PREFIXES {
            let prefixed: String = bare.lines().map(|l| format!("{prefix}{l}\n")).collect();
            std::fs::write(&path, prefixed).unwrap();
            let doc = scan(&[path.to_str().unwrap()]);
            assert_eq!(found(&doc), expected, "{format} behind {prefix:?}");
            // An access log's lines are the proxy's pod's: stern -A names it in full.
            if *format == "envoy" && prefix.starts_with("shop ") {
                for d in doc["destinations"].as_array().unwrap() {
                    let source = &d["edges"][0]["source"];
                    assert_eq!(
                        (&source["namespace"], &source["pods"][0]),
                        (
                            &serde_json::json!("shop"),
                            &serde_json::json!("checkout-7d9f8-abcde")
                        ),
                        "{d}"
                    );
                }
            }
        }
    }
}
