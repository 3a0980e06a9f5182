//! Owned facts that survive classification: what the inventory counts and sinks receive.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Which kind of evidence produced an observation; shown as `evidence` in the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Coredns,
    Envoy,
    Hubble,
    Falco,
    Capture,
    /// A `connect()` or UDP send seen by the eBPF source's socket hooks.
    Ebpf,
    /// A mesh's standard metrics (Istio, Envoy) read from Prometheus.
    IstioMetrics,
}

impl SourceKind {
    /// Every kind, in declaration order: `ALL[k as usize] == k`.
    pub const ALL: [SourceKind; 7] = [
        SourceKind::Coredns,
        SourceKind::Envoy,
        SourceKind::Hubble,
        SourceKind::Falco,
        SourceKind::Capture,
        SourceKind::Ebpf,
        SourceKind::IstioMetrics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Coredns => "coredns",
            SourceKind::Envoy => "envoy",
            SourceKind::Hubble => "hubble",
            SourceKind::Falco => "falco",
            SourceKind::Capture => "capture",
            SourceKind::Ebpf => "ebpf",
            SourceKind::IstioMetrics => "istio_metrics",
        }
    }
}

/// Transport protocol of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    Icmp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
            Protocol::Icmp => "icmp",
        }
    }
}

/// The workload side of an egress connection. Everything is optional: a CoreDNS line only
/// knows the client IP, a pod-log source knows namespace and pod but maybe not the IP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Endpoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, `Job`, or `Pod` for a bare pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.namespace, &self.pod, self.ip) {
            (Some(ns), Some(pod), _) => write!(f, "{ns}/{pod}"),
            (_, _, Some(ip)) => write!(f, "{ip}"),
            _ => f.write_str("-"),
        }
    }
}

/// What became of a connection when it did not simply go through (Hubble verdicts, TCP
/// handshakes in captures): an attempt that was blocked is still a destination the workload
/// wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Dropped,
    Error,
    Audit,
    /// A packet capture saw the server answer the SYN with a reset.
    Refused,
    /// A packet capture saw no answer to the SYN.
    Unanswered,
}

impl Verdict {
    /// Every verdict, in declaration order: `ALL[v as usize] == v`.
    pub const ALL: [Verdict; 5] = [
        Verdict::Dropped,
        Verdict::Error,
        Verdict::Audit,
        Verdict::Refused,
        Verdict::Unanswered,
    ];
}

/// One external fact: either a DNS lookup of an external name or a connection to an external
/// destination. Serialized as the `destination` of an observation record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fact {
    /// A client asked for an external name (CoreDNS query logs carry no answers).
    Dns {
        #[serde(rename = "name")]
        qname: String,
    },
    /// A client connected to an external destination, known by IP, by names, or both.
    Connection {
        #[serde(rename = "ip", default, skip_serializing_if = "Option::is_none")]
        dst_ip: Option<IpAddr>,
        #[serde(rename = "port", default, skip_serializing_if = "Option::is_none")]
        dst_port: Option<u16>,
        #[serde(rename = "protocol")]
        proto: Protocol,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
    },
}

/// An owned observation, built only for records that survived classification. Its serialized
/// shape is the body of an observation record (see [`crate::wire`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    #[serde(rename = "evidence")]
    pub kind: SourceKind,
    #[serde(rename = "source")]
    pub src: Endpoint,
    #[serde(rename = "destination")]
    pub fact: Fact,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// How many connections or lookups this one record stands for: 1 for a log line, a
    /// counter's increase for a metric.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_are_in_declaration_order() {
        for (i, k) in SourceKind::ALL.into_iter().enumerate() {
            assert_eq!(k as usize, i);
        }
        for (i, v) in Verdict::ALL.into_iter().enumerate() {
            assert_eq!(v as usize, i);
        }
    }
}
