//! What a Hubble flow means: egress to an external destination when it is not a reply, its
//! direction is EGRESS and its destination IP is not internal (judged by IP: a real capture
//! labels a private pod IP `reserved:world`). DNS requests are lookups like CoreDNS lines; DNS
//! answers teach the IP->name cache.

use std::net::IpAddr;

use super::{Judge, Judgement, Learned, Times, normalize_name};
use crate::event::{Endpoint, Fact, Observation, Protocol, SourceKind, Verdict};
use crate::parse::hubble::{self, Flow};
use crate::parse::time as ts;

impl Judge {
    pub(super) fn flow(&self, f: &Flow<'_>, times: &Times<'_>) -> Judgement {
        let c = &self.classifier;
        let reply = f.is_reply.or(f.reply).unwrap_or(false);
        let time = times.pick(f.time.as_deref().and_then(ts::rfc3339));
        if let Some(dns) =
            f.l7.as_ref()
                .and_then(|l7| l7.dns.as_ref().map(|d| (l7, d)))
        {
            let (l7, dns) = dns;
            let name = dns.query.as_ref();
            if l7.kind.as_deref() == Some("RESPONSE") || reply {
                let ips: Vec<IpAddr> = dns.ips.iter().filter_map(|ip| ip.parse().ok()).collect();
                let Some(name) = self.external_name(name).filter(|_| !ips.is_empty()) else {
                    return Judgement::NotEgress("dns_answer");
                };
                return Judgement::Learned(Learned {
                    name,
                    ips,
                    ttl: dns.ttl,
                    time,
                });
            }
            if let Some(rejected) = self.reject_name(name) {
                return rejected;
            }
            return Judgement::External(Observation {
                time,
                kind: SourceKind::Hubble,
                src: source(f),
                fact: Fact::Dns {
                    qname: normalize_name(name),
                },
                verdict: verdict(f),
                count: 1,
            });
        }
        match f.traffic_direction.as_deref() {
            Some("EGRESS") => {}
            Some(_) => return Judgement::NotEgress("not_egress"),
            None => return Judgement::NotEgress("no_direction"),
        }
        if reply {
            return Judgement::NotEgress("reply");
        }
        let Some(ip) = f.ip.as_ref() else {
            return Judgement::NotEgress("no_ip");
        };
        let Ok(dst) = ip.destination.parse::<IpAddr>() else {
            return Judgement::Invalid("invalid_ip");
        };
        if c.ip_is_internal(dst) {
            return Judgement::Internal;
        }
        let (proto, port) = match f.l4.as_ref() {
            Some(hubble::Layer4 { tcp: Some(p), .. }) => (Protocol::Tcp, Some(p.destination_port)),
            Some(hubble::Layer4 { udp: Some(p), .. }) => (Protocol::Udp, Some(p.destination_port)),
            Some(hubble::Layer4 { sctp: Some(p), .. }) => {
                (Protocol::Sctp, Some(p.destination_port))
            }
            Some(hubble::Layer4 { icmpv4, icmpv6, .. }) if icmpv4.is_some() || icmpv6.is_some() => {
                (Protocol::Icmp, None)
            }
            _ => return Judgement::NotEgress("no_l4"),
        };
        let names = self.external_names(f.destination_names.iter().map(|n| n.as_ref()));
        Judgement::External(Observation {
            time,
            kind: SourceKind::Hubble,
            src: source(f),
            fact: Fact::Connection {
                dst_ip: Some(dst),
                dst_port: port.and_then(|p| u16::try_from(p).ok()).filter(|&p| p != 0),
                proto,
                names,
            },
            verdict: verdict(f),
            count: 1,
        })
    }
}

/// The workload side from the flow's source endpoint and source IP.
fn source(f: &Flow<'_>) -> Endpoint {
    let ep = f.source.as_ref();
    let workload = ep.and_then(|e| e.workloads.first());
    let owned = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    Endpoint {
        namespace: owned(ep.and_then(|e| e.namespace.as_deref())),
        pod: owned(ep.and_then(|e| e.pod_name.as_deref())),
        workload: owned(workload.map(|w| w.name.as_ref())),
        workload_kind: owned(workload.map(|w| w.kind.as_ref())),
        ip: f.ip.as_ref().and_then(|ip| ip.source.parse().ok()),
    }
}

fn verdict(f: &Flow<'_>) -> Option<Verdict> {
    match f.verdict.as_deref() {
        Some("DROPPED") => Some(Verdict::Dropped),
        Some("ERROR") => Some(Verdict::Error),
        Some("AUDIT") => Some(Verdict::Audit),
        _ => None,
    }
}
