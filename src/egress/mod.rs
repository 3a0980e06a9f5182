//! What a parsed record means for egress: internal (dropped), not egress at all (inbound,
//! blocked, failed lookups), invalid, or an external [`Observation`]. Owned data is built only
//! in the last case.

use std::net::{IpAddr, SocketAddr};

use time::OffsetDateTime;

use crate::classify::{Classifier, is_valid_hostname};
use crate::event::{Endpoint, Fact, Observation, Protocol, SourceKind, Verdict};
use crate::parse::coredns::{LineTime, Query};
use crate::parse::envoy::AccessLog;
use crate::parse::{Record, time as ts};

mod capture;
mod ebpf;
mod falco;
mod hubble;
mod mesh_metrics;

/// The outcome of judging one record.
#[derive(Debug, PartialEq, Eq)]
pub enum Judgement {
    External(Observation),
    /// The destination is inside the cluster.
    Internal,
    /// The record is not an outbound connection or lookup (the reason is counted as a skip).
    NotEgress(&'static str),
    /// The record names something that cannot be a destination (counted as malformed).
    Invalid(&'static str),
    /// A DNS answer: what an external name resolved to, for naming later connections.
    Learned(Learned),
}

/// External addresses of a name, from a DNS answer seen at `time`.
#[derive(Debug, PartialEq, Eq)]
pub struct Learned {
    pub name: String,
    pub ips: Vec<IpAddr>,
    pub ttl: u32,
    pub time: OffsetDateTime,
}

/// Turns records into observations with one cluster's classification rules.
#[derive(Debug, Clone)]
pub struct Judge {
    pub classifier: Classifier,
    /// Keep NXDOMAIN lookups: off by default, as no address came back to connect to and most
    /// are search-path expansions.
    pub report_nxdomain: bool,
}

/// When a record happened: its own time, else its container runtime's, else when it was read.
pub struct Times<'a> {
    pub wrapper: Option<&'a str>,
    pub read: OffsetDateTime,
}

impl Times<'_> {
    fn pick(&self, own: Option<OffsetDateTime>) -> OffsetDateTime {
        own.or_else(|| self.wrapper.and_then(ts::rfc3339))
            .unwrap_or(self.read)
    }
}

impl Judge {
    /// Why a looked-up name is not an external lookup (internal, or not a name at all); none
    /// when it is one. Checked before anything is allocated for the name.
    fn reject_name(&self, name: &str) -> Option<Judgement> {
        if self.classifier.name_is_internal(name) {
            Some(Judgement::Internal)
        } else if !is_valid_hostname(name) {
            Some(Judgement::Invalid("invalid_name"))
        } else {
            None
        }
    }

    /// A name a destination is known by, normalized, when it is external and valid.
    pub fn external_name(&self, name: &str) -> Option<String> {
        self.reject_name(name)
            .is_none()
            .then(|| normalize_name(name))
    }

    /// The external, valid names among `names`, normalized, each once.
    fn external_names<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in names.into_iter().filter_map(|n| self.external_name(n)) {
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    pub fn judge(&self, record: &Record<'_>, times: &Times<'_>) -> Judgement {
        match record {
            Record::Dns(q) => self.dns(q, times),
            Record::Access(a) => self.access(a, times),
            Record::Observation(s) => self.forwarded(&s.obs),
            Record::Flow(f) => self.flow(f, times),
            Record::Alert(a) => self.alert(a, times),
        }
    }

    /// An observation another egress-scout published: judged again with this cluster's rules,
    /// which may know more internal CIDRs and names than the node agent did.
    fn forwarded(&self, obs: &Observation) -> Judgement {
        let c = &self.classifier;
        let fact = match &obs.fact {
            Fact::Dns { qname } => match self.reject_name(qname) {
                Some(rejected) => return rejected,
                None => obs.fact.clone(),
            },
            Fact::Connection {
                dst_ip,
                dst_port,
                proto,
                names,
            } => {
                let names = self.external_names(names.iter().map(String::as_str));
                let dst_ip = dst_ip.filter(|ip| !c.ip_is_internal(*ip));
                if names.is_empty() && dst_ip.is_none() {
                    return Judgement::Internal;
                }
                Fact::Connection {
                    dst_ip,
                    dst_port: *dst_port,
                    proto: *proto,
                    names,
                }
            }
        };
        Judgement::External(Observation {
            time: obs.time,
            kind: obs.kind,
            src: obs.src.clone(),
            fact,
            verdict: obs.verdict,
            count: obs.count,
        })
    }

    fn dns(&self, q: &Query<'_>, times: &Times<'_>) -> Judgement {
        if q.qclass != "IN" {
            return Judgement::NotEgress("not_class_in");
        }
        if let Some(rejected) = self.reject_name(q.qname) {
            return rejected;
        }
        if q.rcode == "NXDOMAIN" && !self.report_nxdomain {
            return Judgement::NotEgress("nxdomain");
        }
        let Ok(client) = q.client.parse::<IpAddr>() else {
            return Judgement::Invalid("invalid_client");
        };
        let own = q.time.and_then(|t| match t {
            LineTime::Rfc3339(s) => ts::rfc3339(s),
            LineTime::Clf(s) => ts::clf(s),
        });
        Judgement::External(Observation {
            time: times.pick(own),
            kind: SourceKind::Coredns,
            src: Endpoint {
                ip: Some(client),
                ..Endpoint::default()
            },
            fact: Fact::Dns {
                qname: normalize_name(q.qname),
            },
            verdict: None,
            count: 1,
        })
    }

    fn access(&self, a: &AccessLog<'_>, times: &Times<'_>) -> Judgement {
        let cluster = a.upstream_cluster.as_deref().unwrap_or("");
        if cluster.starts_with("inbound|") || cluster.starts_with("InboundPassthroughCluster") {
            return Judgement::NotEgress("inbound");
        }
        // REGISTRY_ONLY refused it: an attempt at egress, kept as one the mesh dropped.
        let blackhole = cluster == "BlackHoleCluster";
        if a.upstream_cluster.is_none() && a.upstream_host.is_none() {
            return Judgement::NotEgress("no_upstream");
        }
        let outbound = parse_outbound_cluster(cluster);
        let c = &self.classifier;
        // Traffic to a mesh service or an egress gateway: its upstream address is that hop, not
        // the destination; only the names (SNI, authority) can point outside.
        let internal_hop = outbound.is_some_and(|(_, host)| c.name_is_internal(host));

        let upstream = a.upstream_host.as_deref().and_then(socket_addr);
        // A call inside the mesh by a short service name (`minio.data:9000` to
        // `outbound|9000||minio.data.svc.cluster.local`, upstream a pod): only an external SNI
        // makes such a hop egress (the sidecar's leg of an egress gateway chain).
        let in_mesh = internal_hop
            && upstream.is_some_and(|u| c.ip_is_internal(u.ip()))
            && a.requested_server_name
                .as_deref()
                .is_none_or(|sni| self.external_name(sni).is_none());
        if in_mesh {
            return Judgement::Internal;
        }
        let mut names: Vec<String> = Vec::new();
        let mut ip: Option<SocketAddr> = None;
        let authority = a.authority.as_deref().map(strip_port);
        let candidates = [
            a.requested_server_name.as_deref(),
            authority,
            outbound.map(|(_, host)| host),
        ];
        for name in candidates.into_iter().flatten() {
            if let Ok(addr) = name.parse::<IpAddr>() {
                if !c.ip_is_internal(addr) && ip.is_none() {
                    ip = Some(SocketAddr::new(addr, 0));
                }
            } else if let Some(name) = self.external_name(name)
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
        // DOWNSTREAM_LOCAL_ADDRESS of an outbound listener is the address the app dialled.
        let original_dst = a.downstream_local_address.as_deref().and_then(socket_addr);
        let dialled = if internal_hop {
            original_dst
        } else {
            upstream.or(original_dst.filter(|_| cluster == "PassthroughCluster" || blackhole))
        };
        if let Some(addr) = dialled.filter(|a| !c.ip_is_internal(a.ip())) {
            ip = Some(addr);
        }
        if names.is_empty() && ip.is_none() {
            return Judgement::Internal;
        }
        let port = outbound
            .map(|(port, _)| port)
            .filter(|&p| p != 0)
            .or(ip.map(|a| a.port()).filter(|&p| p != 0));
        let src_ip = [&a.downstream_remote_address, &a.upstream_local_address]
            .into_iter()
            .find_map(|s| s.as_deref().and_then(socket_addr))
            .map(|s| s.ip());
        let own = a.start_time.as_deref().and_then(ts::rfc3339);
        Judgement::External(Observation {
            time: times.pick(own),
            kind: SourceKind::Envoy,
            src: Endpoint {
                ip: src_ip,
                ..Endpoint::default()
            },
            fact: Fact::Connection {
                dst_ip: ip.map(|a| a.ip()),
                dst_port: port,
                proto: Protocol::Tcp,
                names,
            },
            verdict: blackhole.then_some(Verdict::Dropped),
            count: 1,
        })
    }
}

/// `outbound|443|subset|api.example.com` -> (443, "api.example.com").
fn parse_outbound_cluster(cluster: &str) -> Option<(u16, &str)> {
    let mut parts = cluster.strip_prefix("outbound|")?.splitn(3, '|');
    let port = parts.next()?.parse().ok()?;
    let _subset = parts.next()?;
    let host = parts.next()?;
    (!host.is_empty()).then_some((port, host))
}

/// `host:8000` -> `host`; `[2001:db8::1]:443` -> `2001:db8::1`; a bare IPv6 stays whole.
fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => authority,
    }
}

fn socket_addr(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}

fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Parsed, envoy};

    /// The shipped defaults (config/default.toml).
    fn judge() -> Judge {
        crate::config::Settings::load(None)
            .unwrap()
            .classify
            .judge()
    }

    fn envoy_line(line: &str) -> Judgement {
        let Ok(Parsed::Record(r)) = envoy::parse(line.as_bytes()) else {
            panic!("{line}")
        };
        let times = Times {
            wrapper: None,
            read: OffsetDateTime::UNIX_EPOCH,
        };
        judge().judge(&r, &times)
    }

    fn connection(j: Judgement) -> (Option<IpAddr>, Option<u16>, Vec<String>, Option<IpAddr>) {
        match j {
            Judgement::External(Observation {
                src,
                fact:
                    Fact::Connection {
                        dst_ip,
                        dst_port,
                        names,
                        ..
                    },
                ..
            }) => (dst_ip, dst_port, names, src.ip),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn passthrough_is_egress() {
        let (ip, port, names, src) = connection(envoy_line(
            r#"[2023-11-24T13:21:55.197Z] "- - -" 0 - - - "-" 805 15199 158 - "-" "-" "-" "-" "104.102.54.251:443" PassthroughCluster 172.17.34.35:45584 104.102.54.251:443 172.17.34.35:45582 cloud.ibm.com -"#,
        ));
        assert_eq!(ip, Some("104.102.54.251".parse().unwrap()));
        assert_eq!(port, Some(443));
        assert_eq!(names, ["cloud.ibm.com"]);
        assert_eq!(src, Some("172.17.34.35".parse().unwrap()));
    }

    #[test]
    fn egress_gateway_hop_reports_sni_and_dialled_ip_not_gateway_ip() {
        let (ip, port, names, _) = connection(envoy_line(
            r#"[2023-11-24T13:21:52.793Z] "- - -" 0 - - - "-" 813 111152 61 - "-" "-" "-" "-" "172.17.5.170:8443" outbound|443|wildcard|egressgateway.istio-egress.svc.cluster.local 172.17.34.35:55102 208.80.153.224:443 172.17.34.35:37020 en.wikipedia.org -"#,
        ));
        assert_eq!(ip, Some("208.80.153.224".parse().unwrap()));
        assert_eq!(
            (port, names),
            (Some(443), vec!["en.wikipedia.org".to_string()])
        );
    }

    #[test]
    fn internal_inbound_and_gateway_sni_lines() {
        assert_eq!(
            envoy_line(
                r#"[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default"#
            ),
            Judgement::Internal
        );
        assert_eq!(
            envoy_line(
                r#"[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 3 1 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "127.0.0.1:80" inbound|8000|| 127.0.0.1:41854 10.44.1.27:80 10.44.1.23:37652 outbound_.8000_._.httpbin.foo.svc.cluster.local default"#
            ),
            Judgement::NotEgress("inbound")
        );
        assert_eq!(
            envoy_line(
                r#"[2023-11-24T13:21:52.798Z] "- - -" 0 - - - "-" 1531 111950 55 - "-" "-" "-" "-" "envoy://sni_listener/" sni_cluster envoy://internal_client_address/ 172.17.5.170:8443 172.17.34.35:55102 outbound_.443_.wildcard_.egressgateway.istio-egress.svc.cluster.local -"#
            ),
            Judgement::Internal
        );
    }

    #[test]
    fn in_mesh_calls_by_short_service_name_are_internal() {
        for (authority, host) in [
            ("minio.data:9000", "minio.data.svc.cluster.local"),
            ("cart.web", "cart.web.svc.cluster.local"),
            (
                "envoydummy.chapter11:80",
                "envoydummy.chapter11.svc.cluster.local",
            ),
        ] {
            let line = format!(
                r#"[2024-05-14T08:02:11.482Z] "GET /bucket HTTP/1.1" 200 - via_upstream - "-" 0 48 3 2 "-" "minio-go" "5f2f1c1e" "{authority}" "10.244.2.31:9000" outbound|9000||{host} 10.244.1.17:48110 10.96.14.2:9000 10.244.1.17:48108 - default"#
            );
            assert_eq!(envoy_line(&line), Judgement::Internal, "{line}");
        }
        // The sidecar's leg of an egress gateway chain: the cluster is the gateway, the SNI
        // external.
        let (_, _, names, _) = connection(envoy_line(
            r#"[2023-11-24T13:21:52.793Z] "- - -" 0 - - - "-" 813 111152 61 - "-" "-" "-" "-" "10.244.5.170:8443" outbound|443||istio-egressgateway.istio-system.svc.cluster.local 10.244.1.17:55102 10.96.0.80:443 10.244.1.17:37020 edition.cnn.com -"#,
        ));
        assert_eq!(names, ["edition.cnn.com"]);
    }

    #[test]
    fn dynamic_forward_proxy_source_falls_back_to_proxy_address() {
        let (ip, port, names, src) = connection(envoy_line(
            r#"[2023-11-24T13:21:52.798Z] "- - -" 0 - - - "-" 813 111152 55 - "-" "-" "-" "-" "185.15.59.224:443" dynamic_forward_proxy_cluster 172.17.5.170:48262 envoy://sni_listener/ envoy://internal_client_address/ en.wikipedia.org -"#,
        ));
        assert_eq!(ip, Some("185.15.59.224".parse().unwrap()));
        assert_eq!(port, Some(443));
        assert_eq!(names, ["en.wikipedia.org"]);
        assert_eq!(src, Some("172.17.5.170".parse().unwrap()));
    }

    #[test]
    fn ports_and_authorities() {
        assert_eq!(strip_port("httpbin:8000"), "httpbin");
        assert_eq!(strip_port("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(strip_port("2001:db8::1"), "2001:db8::1");
        assert_eq!(
            parse_outbound_cluster("outbound|80||edition.cnn.com"),
            Some((80, "edition.cnn.com"))
        );
        assert_eq!(parse_outbound_cluster("outbound|x||a"), None);
    }
}
