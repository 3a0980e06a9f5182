//! Falco alerts as JSON: `json_output: true` lines, an `http_output` POST body (what
//! falcosidekick receives), or a legacy gRPC response turned into the same shape by the
//! `falco` source. `output_fields` values are typed in JSON (ports are numbers) and strings in
//! gRPC; missing ones are `null`. Only the fields egress-scout uses are read.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

use super::{ParseError, Parsed, Record};

type Text<'a> = Cow<'a, str>;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Alert<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Text<'a>>,
    #[serde(borrow)]
    pub rule: Text<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Text<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Text<'a>>,
    #[serde(borrow)]
    pub output_fields: Fields<'a>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Fields<'a> {
    #[serde(
        rename = "evt.type",
        borrow,
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub evt_type: Option<Text<'a>>,
    #[serde(
        rename = "fd.sip",
        borrow,
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sip: Option<Text<'a>>,
    #[serde(
        rename = "fd.sport",
        default,
        deserialize_with = "port",
        skip_serializing_if = "Option::is_none"
    )]
    pub sport: Option<u16>,
    #[serde(
        rename = "fd.sip.name",
        borrow,
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sip_name: Option<Text<'a>>,
    #[serde(
        rename = "fd.cip",
        borrow,
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cip: Option<Text<'a>>,
    #[serde(
        rename = "fd.name",
        borrow,
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<Text<'a>>,
    #[serde(
        rename = "fd.l4proto",
        borrow,
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub l4proto: Option<Text<'a>>,
    #[serde(
        rename = "k8s.ns.name",
        borrow,
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub namespace: Option<Text<'a>>,
    #[serde(
        rename = "k8s.pod.name",
        borrow,
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub pod: Option<Text<'a>>,
}

/// A port as a JSON number (`json_output`) or a string (gRPC `output_fields`); anything else
/// (null, `<NA>`) is no port.
fn port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw<'a> {
        Number(u64),
        #[serde(borrow)]
        Text(Cow<'a, str>),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Number(n) => u16::try_from(n).ok(),
        Raw::Text(t) => t.parse().ok(),
        Raw::Other(_) => None,
    })
}

pub fn parse(line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    // Falco's own start-up and status lines share its stdout with the alerts.
    if line.first() != Some(&b'{') {
        return Ok(Parsed::Skip("not_json"));
    }
    let alert: Alert<'_> = serde_json::from_slice(line).map_err(|_| ParseError::Syntax("falco"))?;
    Ok(Parsed::Record(Record::Alert(Box::new(alert))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(line: &str) -> Alert<'_> {
        match parse(line.as_bytes()) {
            Ok(Parsed::Record(Record::Alert(a))) => *a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn typed_string_and_null_fields() {
        let a = alert(
            r#"{"output":"x","priority":"Notice","rule":"Outbound","time":"2026-11-26T10:00:00.000000001Z","output_fields":{"evt.type":"connect","fd.sip":"198.51.100.7","fd.sport":443,"fd.name":"10.244.1.17:50000->198.51.100.7:443","k8s.ns.name":"shop","k8s.pod.name":null,"proc.name":"curl"}}"#,
        );
        assert_eq!(a.output_fields.sport, Some(443));
        assert_eq!(a.output_fields.pod, None);
        assert_eq!(a.output_fields.namespace.as_deref(), Some("shop"));
        let grpc = alert(r#"{"rule":"r","output_fields":{"fd.sport":"8443","fd.cip":"<NA>"}}"#);
        assert_eq!(grpc.output_fields.sport, Some(8443));
        let again = serde_json::to_string(&a).unwrap();
        assert_eq!(alert(&again), a);
        for junk in [&b"{}"[..], b"{\"rule\":\"r\"}", b"{\"rule\":"] {
            assert!(parse(junk).is_err(), "{junk:?}");
        }
        assert_eq!(parse(b"Falco initialized"), Ok(Parsed::Skip("not_json")));
    }
}
