//! The `falco` source: its HTTP receiver takes alerts as Falco's `http_output` and
//! falcosidekick send them, over a socket; its legacy gRPC input subscribes to a real gRPC
//! server built from the project's protos (tonic, over TCP), killed and restarted mid-stream.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egress_scout::proto::falco::service_server::{Service, ServiceServer};
use egress_scout::proto::falco::{Request as Subscribe, Response as AlertMsg};
use serde_json::Value;
use support::{expect, free_port, repo, spawn_run, terminate};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// One HTTP/1.1 request; the response's status code.
fn http(port: u16, method: &str, path: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: falcosidekick\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response[9..12].parse().unwrap()
}

fn config(dir: &Path, source: &str) -> PathBuf {
    let path = dir.join("falco.toml");
    std::fs::write(
        &path,
        format!("[classify]\ncluster_cidrs = [\"10.96.0.0/12\"]\n[[sources]]\ntype = \"falco\"\n{source}\n"),
    )
    .unwrap();
    path
}

/// The alerts of examples/falco.json.
fn example_alerts() -> Vec<String> {
    std::fs::read_to_string(repo("examples/falco.json"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(str::to_owned)
        .collect()
}

/// Destination addresses of the `new` updates until `n` arrived.
fn new_destinations(rx: &std::sync::mpsc::Receiver<Value>, n: usize) -> BTreeSet<String> {
    (0..n)
        .map(|_| {
            let v = expect(rx, "a new destination", |v| v["update"] == "new");
            v["ips"][0].as_str().unwrap().to_owned()
        })
        .collect()
}

const EXAMPLE_DESTINATIONS: [&str; 3] = ["198.51.100.7", "2001:db8::53", "203.0.113.80"];

#[test]
fn http_receiver_takes_falcosidekick_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut child, rx) = spawn_run(&config(
        dir.path(),
        &format!("input = \"http\"\naddress = \"127.0.0.1:{port}\""),
    ));
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "no listener");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(http(port, "GET", "/healthz", ""), 200);
    assert_eq!(http(port, "GET", "/ping", ""), 200);
    for alert in example_alerts() {
        assert_eq!(http(port, "POST", "/", &alert), 200, "{alert}");
    }
    // Real falcosidekick payloads are accepted (and are not network alerts).
    let samples =
        repo("../shared/samples/falco/falcosidekick-readme_and_testhandler_payloads.jsonl");
    if let Ok(text) = std::fs::read_to_string(samples) {
        for payload in text.lines() {
            assert_eq!(http(port, "POST", "/", payload), 200, "{payload}");
        }
    }
    // A pretty-printed alert is one alert.
    let pretty = "{\n  \"rule\": \"Outbound\",\n  \"time\": \"2026-11-26T10:00:05Z\",\n  \"output_fields\": {\n    \"evt.type\": \"connect\",\n    \"fd.sip\": \"192.0.2.99\",\n    \"fd.sport\": 8443\n  }\n}\n";
    assert_eq!(http(port, "POST", "/", pretty), 200);
    assert_eq!(http(port, "POST", "/", "not an alert"), 400);
    assert_eq!(http(port, "POST", "/", "{\"rule\": \"no fields\"}"), 400);
    let mut expected: BTreeSet<String> = EXAMPLE_DESTINATIONS.map(String::from).into();
    expected.insert("192.0.2.99".into());
    assert_eq!(new_destinations(&rx, 4), expected);
    terminate(&child);
    assert!(child.wait().unwrap().success());
}

/// A Falco gRPC server streaming `alerts` to each subscriber, from `next` on; the stream
/// stays open, as Falco's does.
struct Falco {
    alerts: Arc<Vec<AlertMsg>>,
    next: Arc<Mutex<usize>>,
    per_subscription: usize,
}

type AlertStream = Pin<Box<dyn Stream<Item = Result<AlertMsg, Status>> + Send>>;

#[tonic::async_trait]
impl Service for Falco {
    type subStream = AlertStream;
    type getStream = AlertStream;

    async fn sub(&self, _: Request<Streaming<Subscribe>>) -> Result<Response<AlertStream>, Status> {
        let mut next = self.next.lock().unwrap();
        let from = *next;
        let to = (from + self.per_subscription).min(self.alerts.len());
        *next = to;
        let batch: Vec<_> = self.alerts[from..to].iter().cloned().map(Ok).collect();
        Ok(Response::new(Box::pin(tokio_stream::StreamExt::chain(
            tokio_stream::iter(batch),
            tokio_stream::pending(),
        ))))
    }

    async fn get(&self, _: Request<Subscribe>) -> Result<Response<AlertStream>, Status> {
        Err(Status::unimplemented("the source subscribes"))
    }
}

/// What Falco's gRPC output sends for a JSON alert: output fields as strings.
fn to_grpc(alert: &str) -> AlertMsg {
    let v: Value = serde_json::from_str(alert).unwrap();
    let fields: BTreeMap<String, Value> =
        serde_json::from_value(v["output_fields"].clone()).unwrap();
    AlertMsg {
        rule: v["rule"].as_str().unwrap().to_owned(),
        output: v["output"].as_str().unwrap_or_default().to_owned(),
        hostname: v["hostname"].as_str().unwrap_or_default().to_owned(),
        priority: 5,
        output_fields: fields
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    Value::Null => "<NA>".into(),
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect(),
        ..AlertMsg::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_subscription_survives_a_restart_of_falco() {
    let alerts: Arc<Vec<AlertMsg>> =
        Arc::new(example_alerts().iter().map(|a| to_grpc(a)).collect());
    let next = Arc::new(Mutex::new(0));
    let falco = || {
        tonic::service::Routes::new(ServiceServer::new(Falco {
            alerts: alerts.clone(),
            next: next.clone(),
            per_subscription: 2,
        }))
    };
    let port = free_port();
    let mut first = support::serve_killable(port, falco()).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = spawn_run(&config(
        dir.path(),
        &format!("input = \"grpc\"\naddress = \"127.0.0.1:{port}\"\nreconnect_backoff_ms = 100"),
    ));
    // The first two alerts: one external destination.
    let got = tokio::task::block_in_place(|| new_destinations(&rx, 2));
    assert_eq!(got.len(), 2);
    first.shutdown().await;
    let _second = support::serve_killable(port, falco()).await;
    let more = tokio::task::block_in_place(|| new_destinations(&rx, 1));
    let all: BTreeSet<String> = got.into_iter().chain(more).collect();
    assert_eq!(all, EXAMPLE_DESTINATIONS.map(String::from).into());
    terminate(&child);
    assert!(
        tokio::task::block_in_place(|| child.wait())
            .unwrap()
            .success()
    );
}

/// A CA, a server certificate for `localhost` and a client certificate, as PEM files in `dir`.
fn mutual_tls(dir: &Path) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into()]);
    let (client_cert, client_key) = leaf(vec!["egress-scout".into()]);
    for (name, pem) in [
        ("ca.pem", ca.pem()),
        ("client.pem", client_cert),
        ("client-key.pem", client_key),
    ] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    (ca.pem(), server_cert, server_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_mutual_tls() {
    use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
    // The test's server picks the same TLS provider as the binary.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = mutual_tls(dir.path());
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(ca));
    let alerts = Arc::new(
        example_alerts()
            .iter()
            .map(|a| to_grpc(a))
            .collect::<Vec<_>>(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(ServiceServer::new(Falco {
                alerts,
                next: Arc::new(Mutex::new(0)),
                per_subscription: usize::MAX,
            }))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let (mut child, rx) = spawn_run(&config(
        dir.path(),
        &format!(
            "input = \"grpc\"\naddress = \"127.0.0.1:{port}\"\n[sources.tls]\nca = \"ca.pem\"\ncert = \"client.pem\"\nkey = \"client-key.pem\"\nserver_name = \"localhost\""
        ),
    ));
    let got = tokio::task::block_in_place(|| new_destinations(&rx, 3));
    assert_eq!(got, EXAMPLE_DESTINATIONS.map(String::from).into());
    terminate(&child);
    assert!(
        tokio::task::block_in_place(|| child.wait())
            .unwrap()
            .success()
    );
}
