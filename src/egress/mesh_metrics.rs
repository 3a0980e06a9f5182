//! What a mesh metric series means, judged like an Envoy access log line: a ServiceEntry
//! host is a destination, a mesh service is not; `PassthroughCluster` is egress the mesh did
//! not name (its workload is known, its host is not, unless an HTTP call's `IP:port` is), and
//! `BlackHoleCluster` egress that `REGISTRY_ONLY` refused.

use std::net::{IpAddr, SocketAddr};

use super::capture::at;
use super::{Judge, Judgement, Times, parse_outbound_cluster, strip_port};
use crate::capture::finding::MeshCalls;
use crate::event::{Endpoint, Fact, Observation, Protocol, SourceKind, Verdict};

/// What Istio writes where it knows nothing.
const UNKNOWN: &str = "unknown";

impl Judge {
    pub(super) fn mesh_calls(&self, m: &MeshCalls, times: &Times<'_>) -> Judgement {
        let c = &self.classifier;
        let service_name = m.service_name.as_deref().unwrap_or("");
        let blackhole = service_name == "BlackHoleCluster";
        let passthrough = service_name == "PassthroughCluster";
        let service = m
            .service
            .as_deref()
            .filter(|s| !matches!(*s, "" | UNKNOWN | "PassthroughCluster" | "BlackHoleCluster"));
        let mut port = m.port;
        let mut dst_ip = None;
        let mut names = Vec::new();
        match service {
            Some(s) if s.starts_with("inbound|") => return Judgement::NotEgress("inbound"),
            Some(s) => {
                let (host, cluster_port) = match parse_outbound_cluster(s) {
                    Some((p, host)) => (host, Some(p).filter(|&p| p != 0)),
                    None => (s, None),
                };
                if let Ok(addr) = host.parse::<SocketAddr>() {
                    port = port.or(Some(addr.port()));
                    dst_ip = Some(addr.ip());
                } else if let Ok(ip) = strip_port(host).parse::<IpAddr>() {
                    dst_ip = Some(ip);
                } else if c.name_is_internal(strip_port(host)) {
                    return Judgement::Internal;
                } else {
                    match self.external_name(strip_port(host)) {
                        Some(name) => names.push(name),
                        None => return Judgement::Invalid("invalid_name"),
                    }
                }
                port = port.or(cluster_port);
                if dst_ip.is_some_and(|ip| c.ip_is_internal(ip)) {
                    return Judgement::Internal;
                }
            }
            None if blackhole || passthrough => {}
            None => return Judgement::NotEgress("unknown_destination"),
        }
        let known = |v: &Option<String>| v.clone().filter(|v| !v.is_empty() && v != UNKNOWN);
        Judgement::External(Observation {
            time: times.pick(at(m.time_ns)),
            kind: SourceKind::IstioMetrics,
            src: Endpoint {
                namespace: known(&m.namespace),
                pod: known(&m.pod),
                workload: known(&m.workload),
                ..Endpoint::default()
            },
            fact: Fact::Connection {
                dst_ip,
                dst_port: port,
                proto: Protocol::Tcp,
                names,
            },
            verdict: blackhole.then_some(Verdict::Dropped),
            count: m.count.max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::finding::Finding;
    use time::OffsetDateTime;

    fn judged(service: &str, service_name: &str) -> Judgement {
        let judge = crate::config::Settings::load(None)
            .unwrap()
            .classify
            .judge();
        let m = MeshCalls {
            time_ns: 1_700_000_000_000_000_000,
            namespace: Some("shop".into()),
            workload: Some("checkout".into()),
            service: Some(service.into()),
            service_name: Some(service_name.into()),
            count: 7,
            ..MeshCalls::default()
        };
        let times = Times {
            wrapper: None,
            read: OffsetDateTime::UNIX_EPOCH,
        };
        judge.finding(&Finding::MeshCalls(m), &times)
    }

    fn fact(j: Judgement) -> (Option<IpAddr>, Option<u16>, Vec<String>, Option<Verdict>) {
        let Judgement::External(obs) = j else {
            panic!("{j:?}")
        };
        assert_eq!(obs.count, 7);
        assert_eq!(obs.src.workload.as_deref(), Some("checkout"));
        let Fact::Connection {
            dst_ip,
            dst_port,
            names,
            ..
        } = obs.fact
        else {
            panic!()
        };
        (dst_ip, dst_port, names, obs.verdict)
    }

    #[test]
    fn service_entry_hosts_passthrough_and_blackhole() {
        assert_eq!(
            fact(judged("api.stripe.com", "api.stripe.com")),
            (None, None, vec!["api.stripe.com".into()], None)
        );
        assert_eq!(
            fact(judged("outbound|443||API.Stripe.com", "")),
            (None, Some(443), vec!["api.stripe.com".into()], None)
        );
        // TCP passthrough: the workload, no host.
        assert_eq!(
            fact(judged("unknown", "PassthroughCluster")),
            (None, None, vec![], None)
        );
        // HTTP passthrough names the address it called.
        assert_eq!(
            fact(judged("198.51.100.9:8085", "PassthroughCluster")),
            (
                Some("198.51.100.9".parse().unwrap()),
                Some(8085),
                vec![],
                None
            )
        );
        assert_eq!(
            fact(judged("BlackHoleCluster", "BlackHoleCluster")),
            (None, None, vec![], Some(Verdict::Dropped))
        );
    }

    #[test]
    fn mesh_services_are_internal() {
        for (service, name) in [
            ("reviews.default.svc.cluster.local", "reviews"),
            ("outbound|9080||reviews.default.svc.cluster.local", ""),
            ("10.244.1.7:8080", "PassthroughCluster"),
        ] {
            assert_eq!(judged(service, name), Judgement::Internal, "{service}");
        }
        assert_eq!(
            judged("inbound|9080||", ""),
            Judgement::NotEgress("inbound")
        );
        assert_eq!(
            judged("unknown", "unknown"),
            Judgement::NotEgress("unknown_destination")
        );
    }
}
