//! Observation records between tiers: a node agent's kafka sink publishes one per observation,
//! an aggregator's kafka source reads them back. One JSON object per record:
//!
//! `{"schema_version":1,"id":"<32 hex digits>","time":"2026-11-26T12:00:00Z",
//!   "evidence":"coredns","source":{"namespace":"shop","pod":"web-1","ip":"10.0.0.7"},
//!   "destination":{"kind":"dns","name":"api.stripe.com"}}`
//!
//! or `"destination":{"kind":"connection","ip":"203.0.113.9","port":443,"protocol":"tcp",
//! "names":["api.stripe.com"]}`. The id is derived from the evidence itself (the log line, its
//! time and the pod that wrote it), so a record delivered twice, or a timestamped line read
//! again after an agent restart, carries the same id and an aggregator counts it once.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use xxhash_rust::xxh3::Xxh3;

use crate::event::{Endpoint, Observation};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamped {
    pub schema_version: u32,
    #[serde(serialize_with = "hex_out", deserialize_with = "hex_in")]
    pub id: u128,
    #[serde(flatten)]
    pub obs: Observation,
}

impl Stamped {
    pub fn new(id: u128, obs: Observation) -> Self {
        Stamped {
            schema_version: SCHEMA_VERSION,
            id,
            obs,
        }
    }
}

/// The id of the observation made at `time` from `line`, written by the pod `origin` when
/// known. The time tells apart identical lines without a timestamp of their own (it is when
/// they were read); a line with one (its own or its container runtime's) keeps its id when
/// read again.
pub fn evidence_id(origin: Option<&Endpoint>, time: OffsetDateTime, line: &[u8]) -> u128 {
    let mut h = Xxh3::new();
    h.update(&time.unix_timestamp_nanos().to_le_bytes());
    if let Some(o) = origin {
        for part in [&o.namespace, &o.pod] {
            h.update(part.as_deref().unwrap_or("").as_bytes());
            h.update(b"/");
        }
    }
    h.update(line);
    h.digest128()
}

fn hex_out<S: Serializer>(id: &u128, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{id:032x}"))
}

fn hex_in<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
    // Owned: a flattened struct hands its fields over buffered, not borrowed.
    let text = String::deserialize(d)?;
    if text.len() != 32 {
        return Err(serde::de::Error::custom("id must be 32 hex digits"));
    }
    u128::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Fact, Protocol, SourceKind};
    use time::macros::datetime;

    #[test]
    fn round_trips_and_keeps_the_documented_shape() {
        let obs = Observation {
            time: datetime!(2026-11-26 12:00:00 UTC),
            kind: SourceKind::Envoy,
            src: Endpoint {
                namespace: Some("shop".into()),
                pod: Some("web-1".into()),
                ..Endpoint::default()
            },
            fact: Fact::Connection {
                dst_ip: Some("203.0.113.9".parse().unwrap()),
                dst_port: Some(443),
                proto: Protocol::Tcp,
                names: vec!["api.stripe.com".into()],
            },
            verdict: None,
            count: 1,
        };
        let s = Stamped::new(evidence_id(None, obs.time, b"line"), obs);
        let json = serde_json::to_string(&s).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["destination"]["kind"], "connection");
        assert_eq!(v["destination"]["port"], 443);
        assert_eq!(v["evidence"], "envoy");
        assert_eq!(v["source"]["namespace"], "shop");
        assert_eq!(v["id"].as_str().unwrap().len(), 32);
        assert_eq!(serde_json::from_str::<Stamped>(&json).unwrap(), s);
    }

    #[test]
    fn the_same_evidence_has_the_same_id() {
        let pod = Endpoint {
            namespace: Some("a".into()),
            pod: Some("b".into()),
            ..Endpoint::default()
        };
        let t = OffsetDateTime::UNIX_EPOCH;
        let later = t + time::Duration::nanoseconds(1);
        assert_eq!(
            evidence_id(Some(&pod), t, b"x"),
            evidence_id(Some(&pod), t, b"x")
        );
        assert_ne!(evidence_id(Some(&pod), t, b"x"), evidence_id(None, t, b"x"));
        assert_ne!(evidence_id(None, t, b"x"), evidence_id(None, t, b"y"));
        assert_ne!(evidence_id(None, t, b"x"), evidence_id(None, later, b"x"));
    }
}
