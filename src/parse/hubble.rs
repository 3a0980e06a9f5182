//! Cilium Hubble flows as JSON: lines of `hubble observe -o json|jsonpb` and Hubble exporter
//! files (`{"flow":{...},"node_name":...,"time":...}`), or a bare flow from older CLIs. Proto
//! field names (`"IP"`, `"l4":{"TCP":...}`, `"Type"`), enums as strings, zero values omitted.
//! Only the fields egress-scout uses are read; strings borrow from the line unless escaped.
//! The same shape is written by the `hubble` gRPC source, which turns flows into these lines.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::{ParseError, Parsed, Record};

type Text<'a> = Cow<'a, str>;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Flow<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Text<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Text<'a>>,
    #[serde(
        rename = "IP",
        borrow,
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ip: Option<Ip<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l4: Option<Layer4>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Endpoint<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Endpoint<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub destination_names: Vec<Text<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub l7: Option<Layer7<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub traffic_direction: Option<Text<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_reply: Option<bool>,
    /// The deprecated bool before `is_reply`; older captures carry only this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<bool>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<Text<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Ip<'a> {
    #[serde(borrow, default)]
    pub source: Text<'a>,
    #[serde(borrow, default)]
    pub destination: Text<'a>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Layer4 {
    #[serde(rename = "TCP", default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Ports>,
    #[serde(rename = "UDP", default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<Ports>,
    #[serde(rename = "SCTP", default, skip_serializing_if = "Option::is_none")]
    pub sctp: Option<Ports>,
    #[serde(rename = "ICMPv4", default, skip_serializing_if = "Option::is_none")]
    pub icmpv4: Option<Empty>,
    #[serde(rename = "ICMPv6", default, skip_serializing_if = "Option::is_none")]
    pub icmpv6: Option<Empty>,
}

/// A message whose content egress-scout does not need.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Empty {}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize)]
pub struct Ports {
    #[serde(default)]
    pub source_port: u32,
    #[serde(default)]
    pub destination_port: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Endpoint<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Text<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<Text<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Text<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<Workload<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Workload<'a> {
    #[serde(borrow, default)]
    pub name: Text<'a>,
    #[serde(borrow, default)]
    pub kind: Text<'a>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Layer7<'a> {
    #[serde(
        rename = "type",
        borrow,
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<Text<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Dns<'a> {
    #[serde(borrow, default)]
    pub query: Text<'a>,
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<Text<'a>>,
    #[serde(default)]
    pub ttl: u32,
    #[serde(default)]
    pub rcode: u32,
}

/// A `GetFlowsResponse` line; the other response types are skipped by design.
#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow, default)]
    flow: Option<Flow<'a>>,
    #[serde(default)]
    lost_events: Option<IgnoredAny>,
    #[serde(default)]
    node_status: Option<IgnoredAny>,
}

pub fn parse(line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    if line.first() != Some(&b'{') {
        return Err(ParseError::Syntax("hubble"));
    }
    let response: Response<'_> =
        serde_json::from_slice(line).map_err(|_| ParseError::Syntax("hubble"))?;
    let flow = match response {
        Response { flow: Some(f), .. } => f,
        Response {
            lost_events: Some(_),
            ..
        } => return Ok(Parsed::Skip("lost_events")),
        Response {
            node_status: Some(_),
            ..
        } => return Ok(Parsed::Skip("node_status")),
        // An older CLI's bare flow.
        _ => serde_json::from_slice(line).map_err(|_| ParseError::Syntax("hubble"))?,
    };
    // Without addresses or an L7 record a flow says nothing about a destination; this also
    // keeps other JSON (a Falco alert) from passing for a bare flow.
    if flow.ip.is_none() && flow.l7.is_none() {
        return Err(ParseError::Syntax("hubble"));
    }
    Ok(Parsed::Record(Record::Flow(Box::new(flow))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(line: &str) -> Flow<'_> {
        match parse(line.as_bytes()) {
            Ok(Parsed::Record(Record::Flow(f))) => *f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrapped_bare_and_other_responses() {
        let wrapped = r#"{"flow":{"time":"2021-06-16T16:52:13.596477276Z","verdict":"FORWARDED","IP":{"source":"10.0.2.13","destination":"35.246.31.234","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":36804,"destination_port":443,"flags":{"ACK":true}}},"source":{"ID":471,"namespace":"kube-system","pod_name":"event-exporter-gke-67986489c8-svnrf"},"destination":{"identity":2,"labels":["reserved:world"]},"Type":"L3_L4","traffic_direction":"EGRESS"},"node_name":"n1","time":"2021-06-16T16:52:13.596477276Z"}"#;
        let f = flow(wrapped);
        assert_eq!(f.ip.as_ref().unwrap().destination, "35.246.31.234");
        assert_eq!(f.l4.as_ref().unwrap().tcp.unwrap().destination_port, 443);
        assert_eq!(f.traffic_direction.as_deref(), Some("EGRESS"));
        let bare = r#"{"time":"2021-06-16T16:52:13Z","IP":{"source":"10.0.0.1","destination":"1.1.1.1"},"l4":{"UDP":{"source_port":5000,"destination_port":53}},"is_reply":false}"#;
        assert_eq!(flow(bare).l4.unwrap().udp.unwrap().destination_port, 53);
        assert_eq!(
            parse(br#"{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"3"}}"#),
            Ok(Parsed::Skip("lost_events"))
        );
        assert_eq!(
            parse(br#"{"node_status":{"state_change":"NODE_CONNECTED"}}"#),
            Ok(Parsed::Skip("node_status"))
        );
        for junk in [&b"{}"[..], b"[1]", b"{\"flow\":", b"\xff", b"hello"] {
            assert!(parse(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn escaped_strings_are_owned_and_the_shape_round_trips() {
        let line = r#"{"flow":{"time":"t","IP":{"source":"10.0.0.1","destination":"1.1.1.1"},"destination_names":["a\u002eexample.com"]}}"#;
        let f = flow(line);
        assert_eq!(f.destination_names[0], "a.example.com");
        let again = serde_json::to_string(&f).unwrap();
        assert_eq!(flow(&again), f);
    }
}
