//! The binary end to end on the bundled examples and on hostile input.

mod support;

use std::io::Write;
use std::process::Stdio;

use support::{assert_ok, bin, dest, ips, names, on_port, repo, scan, set, source, stat};

const EXTERNAL: [&str; 11] = [
    "api.datadoghq.eu",
    "api.stripe.com",
    "graph.microsoft.com",
    "hooks.slack.com",
    "login.microsoftonline.com",
    "monitoring.us-east-1.amazonaws.com",
    "oauth2.googleapis.com",
    "registry-1.docker.io",
    "storage.googleapis.com",
    "sts.amazonaws.com",
    // No name: a PassthroughCluster connection known only by IP.
    "",
];

#[test]
fn scan_examples_reports_exactly_the_external_destinations() {
    let doc = scan(&[
        "--cluster-cidr",
        "10.244.0.0/16",
        "--cluster-cidr",
        "10.96.0.0/12",
        "examples/coredns.log",
        "examples/node-local-dns-docker.log",
        "examples/istio-proxy.log",
        "examples/istio-proxy-cri.log",
    ]);
    assert_eq!(doc["schema_version"], 2);
    let expected: Vec<&str> = EXTERNAL.iter().copied().filter(|n| !n.is_empty()).collect();
    assert_eq!(names(&doc), set(&expected));
    assert_eq!(
        ips(&doc),
        set(&[
            "192.0.2.15",
            // Refused by REGISTRY_ONLY (BlackHoleCluster): an attempt, kept as dropped.
            "192.0.2.80",
            "198.51.100.23",
            "198.51.100.77",
            "203.0.113.128",
            "203.0.113.40",
            "203.0.113.90"
        ])
    );
    assert_eq!(stat(&doc, "malformed"), 0);
    assert!(stat(&doc, "internal") >= 15);
    // api.stripe.com: 4 lookups and a connection from one client, one edge.
    let stripe = dest(&doc, "api.stripe.com");
    assert_eq!(stripe["lookups"], 4);
    assert_eq!(on_port(stripe, 443), Some(1));
    assert_eq!(stripe["edges"].as_array().unwrap().len(), 1, "{stripe}");
    assert_eq!(source(stripe, 0), &serde_json::json!({"ip": "10.244.1.17"}));
    assert_eq!(stripe["evidence"], serde_json::json!(["coredns", "envoy"]));
    // The CRI line split into P/F chunks was joined: storage.googleapis.com on 443 via Envoy.
    let storage = dest(&doc, "storage.googleapis.com");
    assert!(on_port(storage, 443).is_some());
    assert_eq!(storage["first_seen"], "2024-05-14T08:03:02.551Z");
    let refused = dest(&doc, "192.0.2.80");
    assert_eq!(
        refused["verdicts"],
        serde_json::json!(["dropped"]),
        "{refused}"
    );
    assert_eq!(on_port(refused, 443), Some(1));
}

#[test]
fn scan_table_and_default_run() {
    let out = bin()
        .args(["scan", "--output", "table", "examples/istio-proxy.log"])
        .output()
        .unwrap();
    assert_ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("DESTINATION"), "{text}");
    assert!(text.contains("hooks.slack.com"));
    assert!(text.contains("external destinations,"));
}

#[test]
fn run_quickstart_prints_json_updates_and_exits() {
    let out = bin().arg("run").output().unwrap();
    assert_ok(&out);
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let new: Vec<&str> = lines
        .iter()
        .filter(|l| l["update"] == "new")
        .filter_map(|l| l["names"][0].as_str())
        .collect();
    for name in EXTERNAL.iter().filter(|n| !n.is_empty()) {
        assert!(new.contains(name), "{name} missing from {new:?}");
    }
    assert!(lines.iter().all(|l| l["schema_version"] == 2));
    // Repeated lookups come as coalesced count updates at the end, on the edge that also
    // holds the workload's connection to the name.
    assert!(lines.iter().any(|l| l["update"] == "changed"
        && l["destination"] == "api.stripe.com"
        && l["lookups"] == 4
        && l["ports"][0]["port"] == 443));
}

#[test]
fn unreadable_input_and_bad_arguments_fail_with_one_line() {
    let out = bin().args(["scan", "does-not-exist.log"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot read does-not-exist.log"), "{err}");

    let out = bin()
        .args(["scan", "--cluster-cidr", "10.0.0/8"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cluster-cidr"));
}

#[test]
fn check_names_each_problem_by_key() {
    for entry in std::fs::read_dir(repo("pipelines")).unwrap() {
        let path = entry.unwrap().path();
        let out = bin().arg("check").arg(&path).output().unwrap();
        assert_ok(&out);
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[classify]\ncluster_cidrs = [\"10.0.0.0/33\"]\n[limits]\nmax_line_bytes = 1\n[[sources]]\ntype = \"file\"\npath = \"nope.log\"\n",
    )
    .unwrap();
    let out = bin().arg("check").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for key in [
        "classify.cluster_cidrs[0]",
        "limits.max_line_bytes",
        "sources[0].path",
    ] {
        assert!(text.contains(key), "{key} not in {text}");
    }
    std::fs::write(
        &bad,
        "[[sources]]\ntype = \"stdin\"\nfromat = \"coredns\"\n",
    )
    .unwrap();
    let out = bin().arg("check").arg(&bad).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("fromat") && text.contains("sources[0]"),
        "{text}"
    );
}

#[test]
fn environment_overrides_configuration() {
    let out = bin()
        .args(["scan", "--output", "json", "examples/istio-proxy.log"])
        .env(
            "EGRESS_SCOUT__CLASSIFY__CLUSTER_CIDRS",
            "10.244.0.0/16,198.51.100.0/24",
        )
        .output()
        .unwrap();
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // A public range declared as a cluster CIDR is internal: the IPs go, the names stay.
    assert!(!ips(&doc).iter().any(|ip| ip.starts_with("198.51.100.")));
    assert!(names(&doc).contains("hooks.slack.com"));
}

#[test]
fn hostile_input_is_counted_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coredns.log");
    let mut data = Vec::new();
    data.extend(b"[INFO] 10.244.0.9:53 - 1 \"A IN ok-before.example.com. udp 41 false 512\" NOERROR qr,rd 68 0.1s\n");
    data.extend(b"[INFO] 10.244.0.9:53 - 1 \"A IN trunc\n");
    data.extend(b"[INFO] 10.244.0.9:53 - 1 \"A IN \xff\xfe.example.com. udp 41 false 512\" NOERROR qr,rd 68 0.1s\n");
    data.extend(vec![b'A'; 100 * 1024]);
    data.push(b'\n');
    data.extend((0u8..=255).cycle().take(5000));
    data.push(b'\n');
    data.extend(b"\0\0\0\0\n");
    data.extend(b"[INFO] 10.244.0.9:53 - 1 \"A IN evil\\027[31m.example.com. udp 41 false 512\" NOERROR qr,rd 68 0.1s\n");
    data.extend(b"[INFO] 10.244.0.9:53 - 1 \"A IN ok-after.example.com. udp 41 false 512\" NOERROR qr,rd 68 0.1s");
    std::fs::write(&path, &data).unwrap();
    let doc = scan(&["--format", "coredns", path.to_str().unwrap()]);
    assert_eq!(
        names(&doc),
        set(&["ok-after.example.com", "ok-before.example.com"])
    );
    assert!(stat(&doc, "malformed") >= 6, "{doc}");
}

#[test]
fn stdin_dash_and_cri_chunks_split_across_reads() {
    let mut child = bin()
        .args(["scan", "--output", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let line = r#"[2024-05-14T08:02:11.993Z] "- - -" 0 - - - "-" 1204 6120 1733 - "-" "-" "-" "-" "198.51.100.23:443" PassthroughCluster 10.244.1.17:33712 198.51.100.23:443 10.244.1.17:33710 hooks.slack.com -"#;
    let (a, b) = line.split_at(60);
    writeln!(stdin, "2024-05-14T08:02:12Z stdout P {a}").unwrap();
    stdin.flush().unwrap();
    writeln!(stdin, "2024-05-14T08:02:12Z stdout F {b}").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&doc), set(&["hooks.slack.com"]));
    assert_eq!(stat(&doc, "lines"), 2);
}

#[test]
fn scan_pods_attributes_sources_to_workloads_offline() {
    let doc = scan(&[
        "--pods",
        "examples/pods.json",
        "examples/coredns.log",
        "examples/istio-proxy-cri.log",
    ]);
    let sources: std::collections::BTreeSet<(String, String, String)> = doc["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["edges"].as_array().unwrap().clone())
        .map(|e| {
            let f = |k: &str| e["source"][k].as_str().unwrap_or("?").to_string();
            (f("namespace"), f("workload_kind"), f("workload"))
        })
        .collect();
    let expected: std::collections::BTreeSet<(String, String, String)> = [
        ("shop", "Deployment", "checkout"),
        ("monitoring", "StatefulSet", "prometheus-k8s"),
        ("monitoring", "DaemonSet", "datadog-agent"),
        ("backup", "CronJob", "nightly-backup"),
        ("ci", "StatefulSet", "buildkitd"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(sources, expected);

    let out = bin()
        .args(["scan", "--pods", "missing.json", "examples/coredns.log"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("enrich.pods_file"));
}

#[test]
fn file_sink_snapshot_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("snap.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"file\"\npath = \"{}\"\n[[sinks]]\ntype = \"file\"\npath = \"inventory.json\"\n",
            repo("examples/coredns.log").display()
        ),
    )
    .unwrap();
    let stripe = |run: u32| {
        support::run_to_end(&config);
        let text = std::fs::read_to_string(dir.path().join("inventory.json")).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["schema_version"], 2, "run {run}: {text}");
        let stripe = dest(&doc, "api.stripe.com");
        (
            stripe["count"].as_u64().unwrap(),
            stripe["first_seen"].clone(),
        )
    };
    let (count, first_seen) = stripe(1);
    assert_eq!(count, 4);
    let (count, first_seen_again) = stripe(2);
    assert_eq!(count, 8, "restored counts grow on");
    assert_eq!(first_seen, first_seen_again);
}

#[test]
fn scan_reads_observation_records_once_each() {
    let record = |id: u8, ip: &str, name: &str| {
        format!(
            r#"{{"schema_version":1,"id":"{id:032x}","time":"2026-11-26T12:00:00Z","evidence":"envoy","source":{{"namespace":"shop","pod":"web-1"}},"destination":{{"kind":"connection","ip":"{ip}","port":443,"protocol":"tcp","names":["{name}"]}}}}"#
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("observations.jsonl");
    let lines = [
        record(1, "203.0.113.9", "api.stripe.com"),
        // The same record delivered twice.
        record(1, "203.0.113.9", "api.stripe.com"),
        record(2, "203.0.113.9", "api.stripe.com"),
        // Judged again here: a cluster name and a private address are internal.
        record(3, "10.0.0.5", "orders.shop.svc.cluster.local"),
        "not a record".into(),
    ];
    std::fs::write(&dump, lines.join("\n") + "\n").unwrap();
    let doc = scan(&["--format", "observation", dump.to_str().unwrap()]);
    assert_eq!(names(&doc), set(&["api.stripe.com"]));
    assert_eq!(doc["destinations"][0]["count"], 2);
    assert_eq!(source(&doc["destinations"][0], 0)["pods"][0], "web-1");
    for (key, n) in [("internal", 1), ("skipped", 1), ("malformed", 1)] {
        assert_eq!(stat(&doc, key), n, "{key}");
    }
}

#[test]
fn scan_hubble_flows_reports_external_destinations_with_pods_and_names() {
    let doc = scan(&["--cluster-cidr", "10.96.0.0/12", "examples/hubble.json"]);
    let dests = doc["destinations"].as_array().unwrap();
    let find = |name: &str| {
        dests
            .iter()
            .find(|d| {
                d["names"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|x| x == name))
            })
            .unwrap_or_else(|| panic!("{name} in {doc}"))
    };
    // The lookup, and the connection named by the DNS answer that preceded it: one edge.
    let stripe = dest(&doc, "api.stripe.com");
    assert_eq!(
        (stripe["lookups"].as_u64(), on_port(stripe, 443)),
        (Some(1), Some(1)),
        "{doc}"
    );
    assert_eq!(stripe["ips"][0], "198.51.100.7");
    assert_eq!(source(stripe, 0)["workload"], "checkout");
    assert_eq!(source(stripe, 0)["namespace"], "shop");
    // A dropped attempt is reported with its verdict.
    let bastion = find("bastion.example.net");
    assert_eq!(bastion["verdicts"][0], "dropped");
    assert!(on_port(bastion, 22).is_some());
    assert_eq!(dests.len(), 2, "{doc}");
    // Replies, ingress, the answer, a private IP labelled world and the cluster lookup are not
    // external; lost events and node status are skipped by design.
    assert_eq!(stat(&doc, "internal"), 2);
    assert_eq!(stat(&doc, "skipped"), 5);
    assert_eq!(stat(&doc, "malformed"), 0);
}

#[test]
fn scan_falco_alerts_takes_the_server_side_never_the_remote_port() {
    let doc = scan(&["examples/falco.json"]);
    let dests = doc["destinations"].as_array().unwrap();
    let mut found: Vec<(String, u64, String)> = dests
        .iter()
        .map(|d| {
            (
                d["ips"][0].as_str().unwrap().to_owned(),
                d["ports"][0]["port"].as_u64().unwrap(),
                d["ports"][0]["protocol"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("198.51.100.7".into(), 443, "tcp".into()),
            ("2001:db8::53".into(), 53, "udp".into()),
            // fd.rport said 42668 (the client's port); fd.name has the server's.
            ("203.0.113.80".into(), 443, "tcp".into()),
        ]
    );
    let stripe = dest(&doc, "api.stripe.com");
    assert_eq!(on_port(stripe, 443), Some(1));
    assert_eq!(source(stripe, 0)["pods"][0], "checkout-7d9f8-abcde");
    // A null pod is no pod; the namespace stays.
    let host = dests
        .iter()
        .find(|d| d["ips"][0] == "203.0.113.80")
        .unwrap();
    assert_eq!(source(host, 0)["namespace"], "shop");
    assert!(source(host, 0).get("pods").is_none());
    assert_eq!(stat(&doc, "internal"), 1);
    // The file alert is not network; the plain line is another program's.
    assert_eq!(stat(&doc, "skipped"), 2);
    assert_eq!(stat(&doc, "malformed"), 0);
}
