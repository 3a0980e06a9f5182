//! What the flow tracker found: a connection start (named when its first bytes held a TLS
//! server name or an HTTP `Host`), or a DNS answer (a lookup by its client, and the addresses
//! of the name). The stage judges them typed; their JSON is the evidence a published
//! observation's id is made from.

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
