//! Hubble's `observer.Observer/GetFlows`, followed (`follow: true`), from Hubble Relay or an
//! agent's socket, with the configured server-side filters. Each flow becomes one line of
//! Hubble JSON for the stage (the same shape `hubble observe -o json` prints). When the stream
//! breaks, the source reconnects with backoff asking for flows `since` the last flow's time,
//! and leaves out the flows at that instant it already passed on. Lost events are logged and
//! counted.

use prost::Message;
use prost_types::Timestamp;
use std::borrow::Cow;
use std::collections::HashSet;
use std::io;

use super::SourceCtx;
use super::grpc_stream::{Backoff, Ended, follow};
use crate::config::{FlowFilterConfig, HubbleSourceConfig};
use crate::grpc::rfc3339;
use crate::parse::hubble as json;
use crate::proto::flow::{self, layer4, layer7};
use crate::proto::observer::observer_client::ObserverClient;
use crate::proto::observer::{GetFlowsRequest, get_flows_response::ResponseTypes};
use crate::telemetry::RateLimitedWarn;

pub async fn run(cfg: HubbleSourceConfig, ctx: SourceCtx) -> io::Result<()> {
    let whitelist = filters(&cfg.whitelist);
    let blacklist = filters(&cfg.blacklist);
    let mut resume = Resume::default();
    let mut backoff = Backoff::new(cfg.reconnect_backoff_ms);
    let mut lost_warn = RateLimitedWarn::default();
    while !ctx.shutdown.is_cancelled() {
        let request = GetFlowsRequest {
            follow: true,
            whitelist: whitelist.clone(),
            blacklist: blacklist.clone(),
            since: resume.since,
            ..GetFlowsRequest::default()
        };
        let stream = async {
            let channel = crate::grpc::channel(&cfg.address, cfg.tls.as_ref())
                .await
                .map_err(|e| e.to_string())?;
            ObserverClient::new(channel)
                .max_decoding_message_size(16 << 20)
                .get_flows(request)
                .await
                .map_err(|s| s.message().to_owned())
        };
        let mut stream = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            s = stream => match s {
                Ok(s) => s.into_inner(),
                Err(e) => {
                    tracing::warn!(source = %ctx.stats.name, address = %cfg.address, "hubble: {e}; retrying in {:?}", backoff.current());
                    backoff.wait(&ctx).await;
                    continue;
                }
            },
        };
        tracing::info!(source = %ctx.stats.name, address = %cfg.address, "hubble: following flows");
        let ended = follow(&ctx, &mut stream, &mut backoff, |response, lines| {
            match response.response_types {
                Some(ResponseTypes::Flow(f)) if resume.is_new(&f) => {
                    let wrapped = Wrapped { flow: to_json(&f) };
                    if serde_json::to_writer(&mut *lines, &wrapped).is_ok() {
                        lines.push(b'\n');
                    }
                }
                Some(ResponseTypes::Flow(_)) | None => {}
                Some(ResponseTypes::LostEvents(lost)) => {
                    if lost_warn.should_log() {
                        tracing::warn!(source = %ctx.stats.name, lost = lost.num_events_lost, so_far = lost_warn.seen(), "hubble: the server lost flows");
                    }
                    lines.extend_from_slice(b"{\"lost_events\":{}}\n");
                }
                Some(ResponseTypes::NodeStatus(_)) => {
                    lines.extend_from_slice(b"{\"node_status\":{}}\n");
                }
            }
        })
        .await;
        match ended {
            Ended::Stopped => break,
            Ended::Broken(why) => {
                tracing::warn!(source = %ctx.stats.name, "hubble: {why}; resuming in {:?}", backoff.current());
            }
        }
        backoff.wait(&ctx).await;
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Wrapped<'a> {
    flow: json::Flow<'a>,
}

/// Where to resume: the last flow's time, and the flows at that instant already passed on
/// (a reconnect asks for flows `since` it, so they come again).
#[derive(Default)]
struct Resume {
    since: Option<Timestamp>,
    at_since: HashSet<u128>,
}

impl Resume {
    fn is_new(&mut self, f: &flow::Flow) -> bool {
        let Some(t) = f.time else {
            return true;
        };
        let at = (t.seconds, t.nanos);
        match self.since.map(|s| (s.seconds, s.nanos)) {
            // A relay merges nodes; a slightly older flow in the live stream is new.
            Some(since) if at < since => true,
            Some(since) if at == since => self.at_since.insert(digest(f)),
            _ => {
                self.since = Some(t);
                self.at_since.clear();
                self.at_since.insert(digest(f));
                true
            }
        }
    }
}

/// The flow's UUID when the server sets one, else a hash of its encoding.
fn digest(f: &flow::Flow) -> u128 {
    let bytes = if f.uuid.is_empty() {
        f.encode_to_vec()
    } else {
        f.uuid.as_bytes().to_vec()
    };
    xxhash_rust::xxh3::xxh3_128(&bytes)
}

fn filters(config: &[FlowFilterConfig]) -> Vec<flow::FlowFilter> {
    config
        .iter()
        .map(|c| flow::FlowFilter {
            source_ip: c.source_ip.clone(),
            source_pod: c.source_pod.clone(),
            destination_ip: c.destination_ip.clone(),
            destination_pod: c.destination_pod.clone(),
            verdict: c
                .verdict
                .iter()
                .filter_map(|v| flow::Verdict::from_str_name(v))
                .map(Into::into)
                .collect(),
            source_fqdn: c.source_fqdn.clone(),
            destination_fqdn: c.destination_fqdn.clone(),
            source_label: c.source_label.clone(),
            destination_label: c.destination_label.clone(),
            protocol: c.protocol.clone(),
            destination_port: c.destination_port.clone(),
            node_name: c.node_name.clone(),
            traffic_direction: c
                .traffic_direction
                .iter()
                .filter_map(|d| flow::TrafficDirection::from_str_name(d))
                .map(Into::into)
                .collect(),
        })
        .collect()
}

fn endpoint(e: &flow::Endpoint) -> json::Endpoint<'_> {
    json::Endpoint {
        namespace: text(&e.namespace),
        pod_name: text(&e.pod_name),
        labels: e.labels.iter().map(|l| Cow::Borrowed(l.as_str())).collect(),
        workloads: e
            .workloads
            .iter()
            .map(|w| json::Workload {
                name: Cow::Borrowed(&w.name),
                kind: Cow::Borrowed(&w.kind),
            })
            .collect(),
    }
}

/// Some text unless empty (proto3's absent).
fn text(s: &str) -> Option<Cow<'_, str>> {
    (!s.is_empty()).then_some(Cow::Borrowed(s))
}

/// The flow in Hubble's JSON shape, borrowing its strings.
pub fn to_json(f: &flow::Flow) -> json::Flow<'_> {
    let ports = |source_port, destination_port| {
        Some(json::Ports {
            source_port,
            destination_port,
        })
    };
    let l4 = f.l4.as_ref().and_then(|l4| l4.protocol.as_ref()).map(|p| {
        let mut out = json::Layer4::default();
        match p {
            layer4::Protocol::Tcp(t) => out.tcp = ports(t.source_port, t.destination_port),
            layer4::Protocol::Udp(u) => out.udp = ports(u.source_port, u.destination_port),
            layer4::Protocol::Sctp(s) => out.sctp = ports(s.source_port, s.destination_port),
            layer4::Protocol::IcmPv4(_) => out.icmpv4 = Some(json::Empty {}),
            layer4::Protocol::IcmPv6(_) => out.icmpv6 = Some(json::Empty {}),
        }
        out
    });
    let l7 = f.l7.as_ref().map(|l7| json::Layer7 {
        kind: flow::L7FlowType::try_from(l7.r#type)
            .ok()
            .filter(|t| *t != flow::L7FlowType::UnknownL7Type)
            .map(|t| Cow::Borrowed(t.as_str_name())),
        dns: l7.record.as_ref().map(|layer7::Record::Dns(d)| json::Dns {
            query: Cow::Borrowed(&d.query),
            ips: d.ips.iter().map(|ip| Cow::Borrowed(ip.as_str())).collect(),
            ttl: d.ttl,
            rcode: d.rcode,
        }),
    });
    json::Flow {
        time: f.time.and_then(rfc3339).map(Cow::Owned),
        verdict: flow::Verdict::try_from(f.verdict)
            .ok()
            .filter(|v| *v != flow::Verdict::Unknown)
            .map(|v| Cow::Borrowed(v.as_str_name())),
        ip: f.ip.as_ref().map(|ip| json::Ip {
            source: Cow::Borrowed(&ip.source),
            destination: Cow::Borrowed(&ip.destination),
        }),
        l4,
        source: f.source.as_ref().map(endpoint),
        destination: f.destination.as_ref().map(endpoint),
        destination_names: f
            .destination_names
            .iter()
            .map(|n| Cow::Borrowed(n.as_str()))
            .collect(),
        l7,
        traffic_direction: flow::TrafficDirection::try_from(f.traffic_direction)
            .ok()
            .filter(|d| *d != flow::TrafficDirection::Unknown)
            .map(|d| Cow::Borrowed(d.as_str_name())),
        is_reply: f.is_reply,
        reply: f.reply.then_some(true),
        uuid: text(&f.uuid),
    }
}
