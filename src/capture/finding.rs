//! Typed events of the sources that read no lines. The flow tracker's: a connection start
//! (named when its first bytes held a TLS server name or an HTTP `Host`), or a DNS answer (a
//! lookup by its client, and the addresses of the name). The eBPF source's socket calls, and
//! the mesh metrics a Prometheus query returned. The stage judges them typed; their JSON is
//! the evidence a published observation's id is made from.

use std::net::IpAddr;

use serde::Serialize;

use crate::event::Protocol;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    Connection {
        /// Nanoseconds since the Unix epoch, as the capture recorded them.
        time_ns: i64,
        protocol: Protocol,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        state: Option<State>,
    },
    /// A client got addresses for a name: a lookup, like a CoreDNS query line.
    Lookup {
        time_ns: i64,
        client: IpAddr,
        name: String,
    },
    /// The addresses of a name, for naming later connections.
    DnsAnswer {
        time_ns: i64,
        name: String,
        ips: Vec<IpAddr>,
        ttl: u32,
    },
    /// A `connect()` or UDP send by a process, seen by the eBPF source's cgroup hooks.
    Socket {
        time_ns: i64,
        protocol: Protocol,
        dst: IpAddr,
        dport: u16,
        /// The pod whose cgroup the process runs in; none for a process of the node.
        #[serde(skip_serializing_if = "Option::is_none")]
        pod_uid: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        container: Option<String>,
        pid: u32,
        command: String,
    },
    /// A mesh metric series whose counter grew: calls from a workload to a destination.
    MeshCalls(MeshCalls),
}

/// What one series of Istio's standard metrics (or Envoy's cluster stats) says, by label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MeshCalls {
    /// The query's evaluation time.
    pub time_ns: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// `destination_service` (a host, `IP:port`, or `unknown`), or the host of an Envoy
    /// `outbound|PORT||HOST` cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `destination_service_name`: `PassthroughCluster` and `BlackHoleCluster` matter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The counter's increase since the last query.
    pub count: u64,
    /// The series' labels, for the evidence: two series differ by them.
    pub series: String,
}

/// How a TCP connection attempt ended when it did not get through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The server answered the SYN with a reset.
    Refused,
    /// Nothing came back.
    Unanswered,
}
