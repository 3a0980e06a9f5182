//! What the packet-capture flow tracker found, one JSON object per line: a connection start
//! (named when its first bytes held a TLS server name or an HTTP `Host`), or a DNS answer (a
//! lookup by its client, and the addresses of the name). The
//! `pcap` source writes these lines; `scan --format capture` reads a dump of them.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{ParseError, Parsed, Record};
use crate::event::Protocol;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
// Externally tagged (`{"connection":{...}}`): serde reads it in one pass, where an internal
// tag would buffer every field first.
#[serde(rename_all = "snake_case")]
pub enum Event<'a> {
    Connection {
        /// Nanoseconds since the Unix epoch, as the capture recorded them.
        time_ns: i64,
        protocol: Protocol,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
        name: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<State>,
    },
    /// A client got addresses for a name: a lookup, like a CoreDNS query line.
    Lookup {
        time_ns: i64,
        client: IpAddr,
        #[serde(borrow)]
        name: Cow<'a, str>,
    },
    /// The addresses of a name, for naming later connections.
    DnsAnswer {
        time_ns: i64,
        #[serde(borrow)]
        name: Cow<'a, str>,
        ips: Vec<IpAddr>,
        ttl: u32,
    },
}

/// How a TCP connection attempt ended when it did not get through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The server answered the SYN with a reset.
    Refused,
    /// Nothing came back.
    Unanswered,
}

pub fn parse(line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    if line.first() != Some(&b'{') {
        return Err(ParseError::Syntax("capture"));
    }
    let event: Event<'_> =
        serde_json::from_slice(line).map_err(|_| ParseError::Syntax("capture"))?;
    Ok(Parsed::Record(Record::Capture(event)))
}
