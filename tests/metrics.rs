//! The `prometheus` sink scraped over HTTP: values, labels, self-metrics, the series cap, and
//! `promtool check metrics` on the exposition.

mod support;

use std::process::Command;

use support::{append, coredns_query, free_port, scrape_until, spawn_run, terminate, with_stdin};

/// The value of the sample whose line starts with `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn config(dir: &std::path::Path, port: u16, extra: &str) -> std::path::PathBuf {
    let path = dir.join("metrics.toml");
    std::fs::write(
        &path,
        format!(
            "[inventory]\nupdate_interval_secs = 1\nmax_entries = 200000\n[[sources]]\ntype = \"file\"\npath = \"dns.log\"\nformat = \"coredns\"\nfollow = true\npoll_interval_ms = 20\n[[sinks]]\ntype = \"prometheus\"\naddress = \"127.0.0.1:{port}\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

fn promtool_accepts(text: &str) {
    let found = Command::new("promtool").arg("--version").output().ok();
    if support::service(found, "no promtool (Debian package prometheus)").is_none() {
        return;
    }
    let out = with_stdin(
        Command::new("promtool").args(["check", "metrics"]),
        text.as_bytes(),
    );
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn connections_and_self_metrics_are_exported() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dns.log");
    for _ in 0..3 {
        append(
            &log,
            &(coredns_query("10.244.1.17", "api.stripe.com") + "\n"),
        );
    }
    append(
        &log,
        &(coredns_query("10.244.1.17", "orders.shop.svc.cluster.local") + "\n"),
    );
    append(&log, "garbage\n");
    let port = free_port();
    let (mut child, _rx) = spawn_run(&config(dir.path(), port, ""));
    let series = r#"egress_scout_egress_connections_total{destination="api.stripe.com",namespace="",port="",protocol="",workload="10.244.1.17"}"#;
    let text = scrape_until(port, |t| value(t, series) == Some(3.0));
    let component = format!("component=\"file:{}\"", log.display());
    let received =
        format!("egress_scout_component_received_events_total{{{component},kind=\"source\"}}");
    assert_eq!(value(&text, &received), Some(5.0), "{text}");
    let internal =
        format!("egress_scout_component_discarded_events_total{{{component},reason=\"internal\"}}");
    assert_eq!(value(&text, &internal), Some(1.0));
    let malformed =
        format!("egress_scout_component_discarded_events_total{{{component},reason=\"syntax\"}}");
    assert_eq!(value(&text, &malformed), Some(1.0));
    assert_eq!(value(&text, "egress_scout_destinations "), Some(1.0));
    assert!(text.contains("egress_scout_build_info{version="));
    promtool_accepts(&text);
    terminate(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn destination_series_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dns.log");
    let lines: String = (0..100_000)
        .map(|i| coredns_query("10.244.1.17", &format!("host-{i}.example.com")) + "\n")
        .collect();
    append(&log, &lines);
    let port = free_port();
    let (mut child, _rx) = spawn_run(&config(dir.path(), port, "max_series = 1000\n"));
    let text = scrape_until(port, |t| {
        value(t, "egress_scout_destination_series_folded_total ") == Some(99_000.0)
    });
    let series = text
        .lines()
        .filter(|l| l.starts_with("egress_scout_egress_connections_total{"))
        .count();
    assert_eq!(series, 1001, "1000 destinations and \"other\"");
    let other = r#"egress_scout_egress_connections_total{destination="other",namespace="",port="",protocol="",workload="10.244.1.17"}"#;
    assert_eq!(value(&text, other), Some(99_000.0));
    assert_eq!(value(&text, "egress_scout_destinations "), Some(100_000.0));
    promtool_accepts(&text);
    terminate(&child);
    assert!(child.wait().unwrap().success());
}
