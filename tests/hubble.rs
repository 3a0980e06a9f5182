//! The `hubble` source against a real gRPC server over a TCP socket: a stand-in Hubble Relay
//! built from the project's protos (tonic), streaming the project's example flows, the real
//! captures in ../shared/samples/hubble when present, and generated flows. The server is
//! killed mid-stream and another started on the same port: nothing lost, nothing repeated.

mod support;

use std::path::Path;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egress_scout::parse::hubble as json;
use egress_scout::parse::{self, Parsed, Record};
use egress_scout::proto::flow::{self, layer4, layer7};
use egress_scout::proto::observer::observer_server::{Observer, ObserverServer};
use egress_scout::proto::observer::{GetFlowsRequest, GetFlowsResponse, get_flows_response};
use prost_types::Timestamp;
use serde_json::Value;
use support::{bin, free_port, repo, scan};
use time::OffsetDateTime;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// A relay serving `flows` (in time order) from `since`; the first server stops after
/// `limit` and keeps the stream open, as a live relay does.
struct Relay {
    flows: Arc<Vec<flow::Flow>>,
    limit: usize,
}

type FlowStream = Pin<Box<dyn Stream<Item = Result<GetFlowsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Observer for Relay {
    type GetFlowsStream = FlowStream;

    async fn get_flows(
        &self,
        request: Request<GetFlowsRequest>,
    ) -> Result<Response<FlowStream>, Status> {
        let request = request.into_inner();
        assert!(request.follow, "the source follows");
        let since = request.since.map(|t| (t.seconds, t.nanos));
        let flows: Vec<_> = self
            .flows
            .iter()
            .filter(|f| since.is_none_or(|s| f.time.is_some_and(|t| (t.seconds, t.nanos) >= s)))
            .take(self.limit)
            .cloned()
            .map(|f| {
                Ok(GetFlowsResponse {
                    response_types: Some(get_flows_response::ResponseTypes::Flow(f)),
                    ..GetFlowsResponse::default()
                })
            })
            .collect();
        let lost = GetFlowsResponse {
            response_types: Some(get_flows_response::ResponseTypes::LostEvents(
                flow::LostEvent {
                    source: 3,
                    num_events_lost: 7,
                },
            )),
            ..GetFlowsResponse::default()
        };
        let stream = tokio_stream::StreamExt::chain(
            tokio_stream::iter(flows.into_iter().chain([Ok(lost)])),
            tokio_stream::pending::<Result<GetFlowsResponse, Status>>(),
        );
        Ok(Response::new(Box::pin(stream)))
    }
}

/// A relay on `port`; shutting down the returned set kills it.
async fn serve(port: u16, flows: Arc<Vec<flow::Flow>>, limit: usize) -> tokio::task::JoinSet<()> {
    let routes = tonic::service::Routes::new(ObserverServer::new(Relay { flows, limit }));
    support::serve_killable(port, routes).await
}

fn timestamp(text: &str) -> Option<Timestamp> {
    let t = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    let nanos = t.unix_timestamp_nanos();
    Some(Timestamp {
        seconds: (nanos / 1_000_000_000) as i64,
        nanos: (nanos % 1_000_000_000) as i32,
    })
}

/// The protobuf flow a relay would send for a JSON line.
fn to_proto(f: &json::Flow<'_>) -> flow::Flow {
    let endpoint = |e: &json::Endpoint<'_>| flow::Endpoint {
        namespace: e.namespace.as_deref().unwrap_or_default().into(),
        pod_name: e.pod_name.as_deref().unwrap_or_default().into(),
        labels: e.labels.iter().map(|l| l.to_string()).collect(),
        workloads: e
            .workloads
            .iter()
            .map(|w| flow::Workload {
                name: w.name.to_string(),
                kind: w.kind.to_string(),
            })
            .collect(),
        ..flow::Endpoint::default()
    };
    let l4 = f.l4.as_ref().map(|l4| flow::Layer4 {
        protocol: match l4 {
            json::Layer4 { tcp: Some(p), .. } => Some(layer4::Protocol::Tcp(flow::Tcp {
                source_port: p.source_port,
                destination_port: p.destination_port,
                flags: None,
            })),
            json::Layer4 { udp: Some(p), .. } => Some(layer4::Protocol::Udp(flow::Udp {
                source_port: p.source_port,
                destination_port: p.destination_port,
            })),
            json::Layer4 { sctp: Some(p), .. } => Some(layer4::Protocol::Sctp(flow::Sctp {
                source_port: p.source_port,
                destination_port: p.destination_port,
            })),
            json::Layer4 {
                icmpv6: Some(_), ..
            } => Some(layer4::Protocol::IcmPv6(flow::IcmPv6::default())),
            _ => Some(layer4::Protocol::IcmPv4(flow::IcmPv4::default())),
        },
    });
    let name = |s: &Option<std::borrow::Cow<'_, str>>| s.as_deref().unwrap_or_default().to_owned();
    flow::Flow {
        time: f.time.as_deref().and_then(timestamp),
        verdict: flow::Verdict::from_str_name(&name(&f.verdict)).map_or(0, Into::into),
        ip: f.ip.as_ref().map(|ip| flow::Ip {
            source: ip.source.to_string(),
            destination: ip.destination.to_string(),
            ip_version: 0,
        }),
        l4,
        source: f.source.as_ref().map(endpoint),
        destination: f.destination.as_ref().map(endpoint),
        destination_names: f.destination_names.iter().map(|n| n.to_string()).collect(),
        l7: f.l7.as_ref().map(|l7| flow::Layer7 {
            r#type: flow::L7FlowType::from_str_name(&name(&l7.kind)).map_or(0, Into::into),
            latency_ns: 0,
            record: l7.dns.as_ref().map(|d| {
                layer7::Record::Dns(flow::Dns {
                    query: d.query.to_string(),
                    ips: d.ips.iter().map(|i| i.to_string()).collect(),
                    ttl: d.ttl,
                    rcode: d.rcode,
                    ..flow::Dns::default()
                })
            }),
        }),
        traffic_direction: flow::TrafficDirection::from_str_name(&name(&f.traffic_direction))
            .map_or(0, Into::into),
        is_reply: f.is_reply,
        reply: f.reply.unwrap_or(false),
        uuid: name(&f.uuid),
        ..flow::Flow::default()
    }
}

/// Flow lines of a JSON file (lost events and node status left out: the relay adds its own).
fn flow_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"flow\""))
        .map(str::to_owned)
        .collect()
}

/// Egress flows of 5 pods to 50 external addresses, a millisecond apart, except four that
/// share one instant: the first server stops between them.
fn generated(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let ms = if (148..=151).contains(&i) { 148 } else { i };
            format!(
                r#"{{"flow":{{"time":"2026-11-26T11:00:00.{ms:03}000000Z","verdict":"FORWARDED","IP":{{"source":"10.244.3.{}","destination":"198.51.100.{}"}},"l4":{{"TCP":{{"source_port":{},"destination_port":443}}}},"source":{{"namespace":"shop","pod_name":"web-{}"}},"destination":{{"labels":["reserved:world"]}},"Type":"L3_L4","traffic_direction":"EGRESS","is_reply":false}}}}"#,
                i % 5 + 1,
                i % 50 + 1,
                40000 + i,
                i % 5
            )
        })
        .collect()
}

fn counts(snapshot: &Path) -> u64 {
    support::snapshot_counts(snapshot).values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_and_restarted_mid_stream_loses_and_repeats_nothing() {
    let mut lines = Vec::new();
    let samples = repo("../shared/samples/hubble");
    if samples.is_dir() {
        let mut sample_lines: Vec<String> = std::fs::read_dir(&samples)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .flat_map(|p| flow_lines(&p))
            .collect();
        // A relay sends in time order.
        sample_lines.sort_by_key(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["flow"]["time"].as_str().unwrap().to_owned()
        });
        lines.extend(sample_lines);
    } else {
        support::skipped("../shared/samples/hubble: only the project's own flows are served");
    }
    lines.extend(flow_lines(&repo("examples/hubble.json")));
    let first_generated = lines.len();
    lines.extend(generated(300));
    let flows: Arc<Vec<flow::Flow>> = Arc::new(
        lines
            .iter()
            .map(|l| match parse::hubble::parse(l.as_bytes()) {
                Ok(Parsed::Record(Record::Flow(f))) => to_proto(&f),
                other => panic!("{l}: {other:?}"),
            })
            .collect(),
    );

    // What the same flows give as JSON.
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.json");
    std::fs::write(&all, lines.join("\n") + "\n").unwrap();
    let expected = scan(&[
        "--format",
        "hubble",
        "--cluster-cidr",
        "10.96.0.0/12",
        all.to_str().unwrap(),
    ]);
    let expected_count: u64 = expected["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["count"].as_u64().unwrap())
        .sum();
    assert!(expected_count >= 303, "{expected}");

    let port = free_port();
    let first = serve(port, flows.clone(), first_generated + 150).await;
    let snapshot = dir.path().join("inventory.json");
    let config = dir.path().join("hubble.toml");
    std::fs::write(
        &config,
        format!(
            "[classify]\ncluster_cidrs = [\"10.96.0.0/12\"]\n[inventory]\nupdate_interval_secs = 1\n[[sources]]\ntype = \"hubble\"\naddress = \"127.0.0.1:{port}\"\nreconnect_backoff_ms = 100\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\ninterval_secs = 1\nrestore = false\n",
            snapshot.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("run.log");
    let mut run = bin()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let wait_for = |count: u64| {
        let started = Instant::now();
        while counts(&snapshot) < count {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{} of {count} counted: {}",
                counts(&snapshot),
                std::fs::read_to_string(&log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    tokio::task::block_in_place(|| wait_for(expected_count - 150));
    let mut first = first;
    first.shutdown().await;
    let _second = serve(port, flows.clone(), usize::MAX).await;
    tokio::task::block_in_place(|| wait_for(expected_count));
    // Time for a repeat to show.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    support::terminate(&run);
    let status = tokio::task::block_in_place(|| run.wait().unwrap());
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{log}");
    assert_eq!(counts(&snapshot), expected_count, "{log}");
    assert!(log.contains("hubble: the server lost flows"), "{log}");
    assert!(log.contains("resuming"), "{log}");
    // Names from the DNS answer and the verdict came through the protobuf path too.
    let text = std::fs::read_to_string(&snapshot).unwrap();
    assert!(
        text.contains("api.stripe.com") && text.contains("dropped"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_socket_serves_flows_too() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hubble.sock");
    let flows: Vec<flow::Flow> = flow_lines(&repo("examples/hubble.json"))
        .iter()
        .map(|l| match parse::hubble::parse(l.as_bytes()) {
            Ok(Parsed::Record(Record::Flow(f))) => to_proto(&f),
            other => panic!("{other:?}"),
        })
        .collect();
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ObserverServer::new(Relay {
                flows: Arc::new(flows),
                limit: usize::MAX,
            }))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[classify]\ncluster_cidrs = [\"10.96.0.0/12\"]\n[[sources]]\ntype = \"hubble\"\naddress = \"unix://{}\"\n",
            socket.display()
        ),
    )
    .unwrap();
    let (mut child, rx) = support::spawn_run(&config);
    // The lookup of api.stripe.com and the connection to it are one edge.
    let names: std::collections::BTreeSet<String> = (0..2)
        .map(|_| {
            let v = support::expect(&rx, "a new destination", |v| v["update"] == "new");
            v["names"][0].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        names,
        support::set(&["api.stripe.com", "bastion.example.net"])
    );
    support::terminate(&child);
    assert!(
        tokio::task::block_in_place(|| child.wait())
            .unwrap()
            .success()
    );
}
