//! The inventory's edge bound folds, it never loses a destination: once `max_entries` edges
//! exist, a destination seen for the first time is in every output (stdout updates, the
//! snapshot, the metrics, `scan`), counted on its "other sources" edge.

mod support;

use serde_json::Value;

use support::{
    append, bin, coredns_query, dest, expect, free_port, scrape_until, spawn_run, terminate,
};

#[test]
fn a_new_destination_past_the_edge_bound_is_in_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dns.log");
    let lines: Vec<String> = [
        ("10.244.1.1", "a.example.com"),
        ("10.244.1.2", "a.example.com"),
        // The edges are full now.
        ("10.244.1.3", "new.example.com"),
        ("10.244.1.4", "new.example.com"),
        ("10.244.1.3", "a.example.com"),
    ]
    .iter()
    .map(|(client, name)| coredns_query(client, name) + "\n")
    .collect();
    append(&log, &lines.concat());
    let port = free_port();
    let config = dir.path().join("bounds.toml");
    std::fs::write(
        &config,
        format!(
            "[inventory]\nmax_entries = 2\nupdate_interval_secs = 1\n[[sources]]\ntype = \"file\"\npath = \"dns.log\"\nformat = \"coredns\"\nfollow = true\npoll_interval_ms = 20\n[[sinks]]\ntype = \"stdout\"\n[[sinks]]\ntype = \"file\"\npath = \"inventory.json\"\ninterval_secs = 1\n[[sinks]]\ntype = \"prometheus\"\naddress = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let (mut child, rx) = spawn_run(&config);
    let update = expect(&rx, "the new destination", |v| {
        v["destination"] == "new.example.com"
    });
    assert_eq!(update["source"], serde_json::json!({"other_sources": true}));
    let series = r#"egress_scout_egress_connections_total{destination="new.example.com",namespace="",port="",protocol="",workload="other"}"#;
    let folded = |t: &str| {
        t.lines().any(|l| {
            l.starts_with("egress_scout_component_folded_events_total{") && l.ends_with(" 3")
        })
    };
    let text = scrape_until(port, |t| t.contains(&format!("{series} 2")) && folded(t));
    assert!(text.contains("egress_scout_destinations 2"), "{text}");
    terminate(&child);
    assert!(child.wait().unwrap().success());

    let snapshot: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("inventory.json")).unwrap()).unwrap();
    let new = dest(&snapshot, "new.example.com");
    assert_eq!(
        (new["count"].as_u64(), new["source_count"].as_u64()),
        (Some(2), Some(0))
    );
    let a = dest(&snapshot, "a.example.com");
    assert_eq!(
        a["count"], 3,
        "the folded lookup still counts on its destination"
    );
    assert_eq!(a["edges"].as_array().unwrap().len(), 3, "{a}");

    let out = bin()
        .args(["scan", "--output", "json"])
        .arg(&log)
        .env("EGRESS_SCOUT__INVENTORY__MAX_ENTRIES", "2")
        .output()
        .unwrap();
    support::assert_ok(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dest(&doc, "new.example.com")["count"], 2);
    assert_eq!(doc["stats"]["folded"], 3);
    assert_eq!(doc["stats"]["dropped"], 0);
    let table = bin()
        .args(["scan", "--output", "table"])
        .arg(&log)
        .env("EGRESS_SCOUT__INVENTORY__MAX_ENTRIES", "2")
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("new.example.com") && l.contains("(other sources)")),
        "{text}"
    );
}

#[test]
fn run_restores_a_version_1_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dns.log");
    append(&log, &(coredns_query("10.244.1.1", "a.example.com") + "\n"));
    std::fs::write(
        dir.path().join("inventory.json"),
        r#"{"schema_version":1,"entries":[{"key":{"dst":{"name":"a.example.com"},"port":null,"proto":null,"src":{"ip":"10.244.1.1"}},"entry":{"src":{"ip":"10.244.1.1"},"names":["a.example.com"],"ips":[],"count":5,"first_seen":"2026-11-01T00:00:00Z","last_seen":"2026-11-01T00:00:00Z","evidence":["coredns"]}}]}"#,
    )
    .unwrap();
    let config = dir.path().join("restore.toml");
    std::fs::write(
        &config,
        "[[sources]]\ntype = \"file\"\npath = \"dns.log\"\n[[sinks]]\ntype = \"file\"\npath = \"inventory.json\"\n",
    )
    .unwrap();
    support::run_to_end(&config);
    let snapshot: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("inventory.json")).unwrap()).unwrap();
    assert_eq!(snapshot["schema_version"], 2);
    let a = dest(&snapshot, "a.example.com");
    assert_eq!(
        (a["lookups"].as_u64(), a["edges"].as_array().map(Vec::len)),
        (Some(6), Some(1))
    );
    assert_eq!(a["first_seen"], "2026-11-01T00:00:00Z");
}
