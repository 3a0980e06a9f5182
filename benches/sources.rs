//! Hubble flows through `egress-scout run`, end to end: JSON lines from a file (lines/s) and
//! the gRPC source following an in-process stand-in relay built from the project's protos
//! (flows/s). Prints both.
//!   cargo bench --bench sources [-- FLOWS]   (default 500000)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egress_scout::proto::flow::{self, layer4, layer7};
use egress_scout::proto::observer::observer_server::{Observer, ObserverServer};
use egress_scout::proto::observer::{GetFlowsRequest, GetFlowsResponse, get_flows_response};
use egress_scout::sources::hubble::to_json;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

const BIN: &str = env!("CARGO_BIN_EXE_egress-scout");

/// Egress flows of 50 pods to 400 external addresses; every tenth a DNS lookup.
fn flows(n: usize) -> Vec<flow::Flow> {
    (0..n)
        .map(|i| {
            let dns = i % 10 == 0;
            flow::Flow {
                time: Some(prost_types::Timestamp {
                    seconds: 1_795_000_000 + (i / 1_000_000) as i64,
                    nanos: (i % 1_000_000) as i32 * 1000,
                }),
                verdict: flow::Verdict::Forwarded.into(),
                ip: Some(flow::Ip {
                    source: format!("10.244.{}.{}", i % 4, i % 50 + 2),
                    destination: if dns {
                        "10.96.0.10".into()
                    } else {
                        format!("198.51.{}.{}", 100 + i % 2, i % 200 + 1)
                    },
                    ip_version: 1,
                }),
                l4: Some(flow::Layer4 {
                    protocol: Some(if dns {
                        layer4::Protocol::Udp(flow::Udp {
                            source_port: 40000 + (i % 20000) as u32,
                            destination_port: 53,
                        })
                    } else {
                        layer4::Protocol::Tcp(flow::Tcp {
                            source_port: 40000 + (i % 20000) as u32,
                            destination_port: 443,
                            flags: None,
                        })
                    }),
                }),
                source: Some(flow::Endpoint {
                    namespace: "shop".into(),
                    pod_name: format!("web-{}", i % 50),
                    workloads: vec![flow::Workload {
                        name: "web".into(),
                        kind: "Deployment".into(),
                    }],
                    ..flow::Endpoint::default()
                }),
                destination: Some(flow::Endpoint {
                    labels: vec!["reserved:world".into()],
                    ..flow::Endpoint::default()
                }),
                l7: dns.then(|| flow::Layer7 {
                    r#type: flow::L7FlowType::Request.into(),
                    latency_ns: 0,
                    record: Some(layer7::Record::Dns(flow::Dns {
                        query: format!("api{}.example.com.", i % 40),
                        ..flow::Dns::default()
                    })),
                }),
                traffic_direction: flow::TrafficDirection::Egress.into(),
                is_reply: Some(false),
                ..flow::Flow::default()
            }
        })
        .collect()
}

struct Relay(Arc<Vec<flow::Flow>>);

type FlowStream = Pin<Box<dyn Stream<Item = Result<GetFlowsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Observer for Relay {
    type GetFlowsStream = FlowStream;

    async fn get_flows(&self, _: Request<GetFlowsRequest>) -> Result<Response<FlowStream>, Status> {
        let flows = self.0.clone();
        let all = (0..flows.len()).map(move |i| {
            Ok(GetFlowsResponse {
                response_types: Some(get_flows_response::ResponseTypes::Flow(flows[i].clone())),
                ..GetFlowsResponse::default()
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::StreamExt::chain(
            tokio_stream::iter(all),
            tokio_stream::pending(),
        ))))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Lines the hubble source has passed on so far, from the metrics sink.
fn received(metrics_port: u16) -> u64 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", metrics_port)) else {
        return 0;
    };
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .find(|l| l.starts_with("egress_scout_component_received_events_total{component=\"hubble"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500_000);
    let flows = Arc::new(flows(n));
    let dir = tempfile::tempdir().unwrap();

    // JSON lines, as `hubble observe -o json` writes them.
    let input = dir.path().join("flows.json");
    let mut text = Vec::new();
    for f in flows.iter() {
        serde_json::to_writer(&mut text, &serde_json::json!({ "flow": to_json(f) })).unwrap();
        text.push(b'\n');
    }
    std::fs::write(&input, &text).unwrap();
    let config = dir.path().join("json.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"file\"\npath = \"{}\"\nformat = \"hubble\"\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\nrestore = false\n",
            input.display(),
            dir.path().join("json-inventory.json").display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let status = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let secs = started.elapsed().as_secs_f64();
    println!(
        "hubble JSON: {n} lines ({:.1} MB) through `run` in {secs:.2} s: {:.0} lines/s",
        text.len() as f64 / 1e6,
        n as f64 / secs
    );

    // gRPC: the relay streams every flow; done when the source has passed all on.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let relay_port = free_port();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", relay_port)))
        .unwrap();
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(ObserverServer::new(Relay(flows)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let metrics_port = free_port();
    let config = dir.path().join("grpc.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"hubble\"\naddress = \"127.0.0.1:{relay_port}\"\n[[sinks]]\ntype = \"prometheus\"\naddress = \"127.0.0.1:{metrics_port}\"\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut run = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while received(metrics_port) < n as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "flows stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = Command::new("kill").arg(run.id().to_string()).status();
    let _ = run.wait();
    println!(
        "hubble gRPC: {n} flows through `run` in {secs:.2} s: {:.0} flows/s",
        n as f64 / secs
    );
}
