//! The `prometheus_query` source against a real Prometheus server (Debian's `prometheus`)
//! scraping a test endpoint that serves metrics in Istio's and Envoy's format: counters that
//! grow, reset and stay still become observations counted by their growth, judged like
//! Envoy's access log (a ServiceEntry host is egress, a mesh service is not, Passthrough and
//! BlackHole are the workload's unnamed egress), merged with an access log's on one edge.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Running;

const CHECKOUT: &str =
    r#"reporter="source",source_workload="checkout",source_workload_namespace="shop""#;

/// The endpoint's metrics, with these counter values.
fn metrics(stripe: u32, reviews: u32, passthrough: u32, blackhole: u32, github: u32) -> String {
    format!(
        "# TYPE istio_requests_total counter\n\
         istio_requests_total{{{CHECKOUT},destination_service=\"api.stripe.com\",destination_service_name=\"api.stripe.com\",request_protocol=\"http\",response_code=\"200\"}} {stripe}\n\
         istio_requests_total{{{CHECKOUT},destination_service=\"reviews.shop.svc.cluster.local\",destination_service_name=\"reviews\",request_protocol=\"http\",response_code=\"200\"}} {reviews}\n\
         # TYPE istio_tcp_connections_opened_total counter\n\
         istio_tcp_connections_opened_total{{{CHECKOUT},destination_service=\"unknown\",destination_service_name=\"PassthroughCluster\",request_protocol=\"tcp\"}} {passthrough}\n\
         istio_tcp_connections_opened_total{{{CHECKOUT},destination_service=\"BlackHoleCluster\",destination_service_name=\"BlackHoleCluster\",request_protocol=\"tcp\"}} {blackhole}\n\
         # TYPE envoy_cluster_upstream_cx_total counter\n\
         envoy_cluster_upstream_cx_total{{cluster_name=\"outbound|443||api.github.com\"}} {github}\n\
         envoy_cluster_upstream_cx_total{{cluster_name=\"inbound|8080||\"}} 9\n"
    )
}

/// Replaces the served metrics at once (the server reads the file at every scrape).
fn serve(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Waits until Prometheus' answer to `query` contains `want`.
fn until_prometheus(port: u16, query: &str, want: &str) {
    let path = format!(
        "/api/v1/query?query={}",
        url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
    );
    let started = Instant::now();
    loop {
        let body = support::get(port, &path).unwrap_or_default();
        if body.contains(want) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{query}: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `run --config config`, quiet, until the test ends.
fn start(config: &Path) -> Running {
    Running(
        support::bin()
            .args(["run", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn snapshot(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The edge of `destination` from `workload` in a snapshot.
fn edge<'a>(doc: &'a Value, destination: &str, workload: &str) -> Option<&'a Value> {
    doc["destinations"]
        .as_array()?
        .iter()
        .find(|d| d["destination"] == destination)?["edges"]
        .as_array()?
        .iter()
        .find(|e| e["source"]["workload"] == workload)
}

fn evidence(e: &Value) -> Vec<&str> {
    e["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

#[test]
fn istio_and_envoy_series_become_counted_observations() {
    let version = Command::new("prometheus").arg("--version").output().ok();
    if support::service(version, "no prometheus (Debian package prometheus)").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("metrics.txt");
    serve(&served, &metrics(5, 50, 3, 1, 2));
    let endpoint = support::free_port();
    let _endpoint = Running(
        Command::new("python3")
            .arg("-c")
            .arg("import http.server, sys\nclass H(http.server.BaseHTTPRequestHandler):\n  def do_GET(self):\n    b=open(sys.argv[1],'rb').read(); self.send_response(200); self.send_header('Content-Type','text/plain; version=0.0.4'); self.send_header('Content-Length',str(len(b))); self.end_headers(); self.wfile.write(b)\n  def log_message(self,*a): pass\nhttp.server.HTTPServer(('127.0.0.1',int(sys.argv[2])),H).serve_forever()")
            .arg(&served)
            .arg(endpoint.to_string())
            .spawn()
            .unwrap(),
    );
    // The proxy's scrape target carries its pod, as Istio's sample configuration relabels.
    let prometheus_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prometheus_yml,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: envoy-stats\n    static_configs:\n      - targets: ['127.0.0.1:{endpoint}']\n        labels: {{namespace: shop, pod: checkout-7d9f-abcde}}\n"
        ),
    )
    .unwrap();
    let port = support::free_port();
    let _prometheus = Running(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prometheus_yml.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    until_prometheus(port, "istio_requests_total", "api.stripe.com");
    until_prometheus(port, "envoy_cluster_upstream_cx_total", "api.github.com");

    // The same workload's access log, for the merge: one call to api.stripe.com.
    let log = dir.path().join("istio-proxy.log");
    std::fs::write(
        &log,
        "[2024-05-14T08:02:11.482Z] \"- - -\" 0 - - - \"-\" 805 15199 158 - \"-\" \"-\" \"-\" \"-\" \"203.0.113.50:443\" outbound|443||api.stripe.com 10.244.1.17:45584 203.0.113.50:443 10.244.1.17:45582 api.stripe.com -\n",
    )
    .unwrap();
    let snapshot_path = dir.path().join("inventory.json");
    let config = dir.path().join("mesh.toml");
    std::fs::write(
        &config,
        format!(
            "[enrich]\npods_file = {:?}\n\n[[sources]]\ntype = \"prometheus_query\"\nurl = \"http://127.0.0.1:{port}\"\ninterval_secs = 1\nlookback_secs = 0\n\n[[sources]]\ntype = \"file\"\npath = {log:?}\n\n[[sinks]]\ntype = \"file\"\npath = {snapshot_path:?}\ninterval_secs = 1\n",
            support::repo("tests/fixtures/mesh-pods.json")
        ),
    )
    .unwrap();
    let check = support::bin().arg("check").arg(&config).output().unwrap();
    support::assert_ok(&check);
    let mut first = start(&config);
    // The first query is the baseline (no lookback); then counters grow, one resets, one
    // (the mesh service) grows but is internal.
    std::thread::sleep(Duration::from_secs(3));
    serve(&served, &metrics(12, 60, 4, 2, 1));
    until_prometheus(
        port,
        "istio_requests_total{destination_service=\"api.stripe.com\"}",
        "\"12\"",
    );
    until_prometheus(
        port,
        "envoy_cluster_upstream_cx_total{cluster_name=~\"outbound.*\"}",
        "\"1\"",
    );
    let started = Instant::now();
    let doc = loop {
        let doc = std::fs::read_to_string(&snapshot_path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        if let Some(doc) = doc
            && edge(&doc, "api.stripe.com", "checkout").is_some_and(|e| e["count"] == 8)
            && edge(&doc, "api.github.com", "checkout").is_some()
        {
            break doc;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{:#}",
            snapshot(&snapshot_path)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    support::terminate(&first.0);
    assert!(first.0.wait().unwrap().success());

    // One edge: the access log's call and the metric's seven.
    let stripe = edge(&doc, "api.stripe.com", "checkout").unwrap();
    assert_eq!(
        stripe["source"]["workload_kind"], "Deployment",
        "{stripe:#}"
    );
    assert_eq!(evidence(stripe), ["envoy", "istio_metrics"], "{stripe:#}");
    // Envoy's cluster stat names the port; its pod comes from the scrape target; it reset.
    let github = edge(&doc, "api.github.com", "checkout").unwrap();
    assert_eq!(github["count"], 1, "{github:#}");
    assert!(github.to_string().contains("443"), "{github:#}");
    let text = doc.to_string();
    assert!(
        !text.contains("reviews"),
        "a mesh service is not egress: {text}"
    );
    assert!(!text.contains("inbound"), "{text}");
    // Passthrough and BlackHole: the workload's egress whose host the mesh did not know.
    let unnamed = edge(&doc, "", "checkout").unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(unnamed["count"], 2, "{unnamed:#}");
    assert!(unnamed.to_string().contains("dropped"), "{unnamed:#}");

    // A restart with a lookback counts what grew before it from the first query on.
    let fresh = dir.path().join("fresh.json");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"prometheus_query\"\nurl = \"http://127.0.0.1:{port}\"\ninterval_secs = 1\nlookback_secs = 600\n\n[[sinks]]\ntype = \"file\"\npath = {fresh:?}\ninterval_secs = 1\n"
        ),
    )
    .unwrap();
    let mut again = start(&config);
    let started = Instant::now();
    while !std::fs::read_to_string(&fresh).is_ok_and(|t| t.contains("api.stripe.com")) {
        assert!(started.elapsed() < Duration::from_secs(60), "no lookback");
        std::thread::sleep(Duration::from_millis(200));
    }
    support::terminate(&again.0);
    assert!(again.0.wait().unwrap().success());
    let doc = snapshot(&fresh);
    let stripe = doc["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == "api.stripe.com")
        .unwrap();
    // increase() over the window saw 5 -> 12 (extrapolated, so about 7).
    assert!(stripe["count"].as_u64().unwrap() >= 7, "{stripe:#}");
    assert_eq!(stripe["evidence"][0], "istio_metrics");
}

/// Bad settings fail `check` with their key paths.
#[test]
fn check_names_each_bad_setting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[sources]]\ntype = \"prometheus_query\"\nurl = \"prometheus:9090\"\nqueries = [\"\"]\ninterval_secs = 0\nbearer_token_file = \"/nonexistent/token\"\n",
    )
    .unwrap();
    let out = support::bin().arg("check").arg(&config).output().unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for key in [
        "sources[0].url",
        "sources[0].queries",
        "sources[0]: interval_secs",
        "sources[0].bearer_token_file",
    ] {
        assert!(text.contains(key), "{key}: {text}");
    }
}
