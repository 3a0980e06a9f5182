//! What a capture finding means: a connection to an address outside the cluster, named by the
//! server name or `Host` its first bytes carried; a DNS answer teaches the IP->name cache.

use super::{Judge, Judgement, Learned, Times, normalize_name};
use crate::capture::finding::{Finding, State};
use crate::event::{Endpoint, Fact, Observation, SourceKind, Verdict};
use time::OffsetDateTime;

impl Judge {
    /// A typed finding: a capture's flow tracker's, the eBPF source's, a metric series'.
    pub fn finding(&self, e: &Finding, times: &Times<'_>) -> Judgement {
        let c = &self.classifier;
        match e {
            Finding::Socket {
                time_ns,
                protocol,
                dst,
                dport,
                pod_uid,
                ..
            } => self.socket(
                at(*time_ns),
                times,
                *protocol,
                *dst,
                *dport,
                pod_uid.is_some(),
            ),
            Finding::MeshCalls(m) => self.mesh_calls(m, times),
            Finding::Lookup {
                time_ns,
                client,
                name,
            } => {
                if let Some(rejected) = self.reject_name(name) {
                    return rejected;
                }
                Judgement::External(Observation {
                    time: times.pick(at(*time_ns)),
                    kind: SourceKind::Capture,
                    src: Endpoint {
                        ip: Some(*client),
                        ..Endpoint::default()
                    },
                    fact: Fact::Dns {
                        qname: normalize_name(name),
                    },
                    verdict: None,
                    count: 1,
                })
            }
            Finding::DnsAnswer {
                time_ns,
                name,
                ips,
                ttl,
            } => {
                let ips: Vec<_> = ips
                    .iter()
                    .copied()
                    .filter(|ip| !c.ip_is_internal(*ip))
                    .collect();
                let Some(name) = self.external_name(name).filter(|_| !ips.is_empty()) else {
                    return Judgement::NotEgress("dns_answer");
                };
                Judgement::Learned(Learned {
                    name,
                    ips,
                    ttl: *ttl,
                    time: times.pick(at(*time_ns)),
                })
            }
            Finding::Connection {
                time_ns,
                protocol,
                src,
                dst,
                dport,
                name,
                state,
                ..
            } => {
                let names: Vec<String> = name
                    .as_deref()
                    .and_then(|n| self.external_name(n))
                    .into_iter()
                    .collect();
                // Through a proxy or NAT the address is internal, but the name can point out.
                let internal = c.ip_is_internal(*dst);
                if internal && names.is_empty() {
                    return Judgement::Internal;
                }
                Judgement::External(Observation {
                    time: times.pick(at(*time_ns)),
                    kind: SourceKind::Capture,
                    src: Endpoint {
                        ip: Some(*src),
                        ..Endpoint::default()
                    },
                    fact: Fact::Connection {
                        dst_ip: (!internal).then_some(*dst),
                        dst_port: Some(*dport).filter(|&p| p != 0),
                        proto: *protocol,
                        names,
                    },
                    verdict: state.map(|s| match s {
                        State::Refused => Verdict::Refused,
                        State::Unanswered => Verdict::Unanswered,
                    }),
                    count: 1,
                })
            }
        }
    }
}

/// A finding's nanosecond time; none when out of range.
pub(super) fn at(ns: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(ns.into()).ok()
}
