//! What a Falco alert means: a network alert (connect, sendto, ...) to a server outside the
//! cluster is a connection observation. The server side comes from `fd.sip`/`fd.sport`, else
//! from `fd.name` (`cip:cport->sip:sport`, IPv6 without brackets: split at the last `:`),
//! never from `fd.rport` alone: a real alert reported the client's port there.

use std::net::IpAddr;

use super::{Judge, Judgement, Times};
use crate::event::{Endpoint, Fact, Observation, Protocol, SourceKind};
use crate::parse::falco::Alert;
use crate::parse::time as ts;

/// System calls by which a process reaches a server.
const OUTBOUND: [&str; 4] = ["connect", "sendto", "sendmsg", "sendmmsg"];

impl Judge {
    pub(super) fn alert(&self, a: &Alert<'_>, times: &Times<'_>) -> Judgement {
        let f = &a.output_fields;
        let tuple = f.name.as_deref().and_then(split_tuple);
        match f.evt_type.as_deref() {
            Some(t) if OUTBOUND.contains(&t) => {}
            None if f.sip.is_some() || tuple.is_some() => {}
            _ => return Judgement::NotEgress("not_network"),
        }
        let server = f.sip.as_deref().filter(|s| *s != "<NA>");
        let (dst, port) = match (server, tuple) {
            (Some(sip), _) => (sip.parse::<IpAddr>().ok(), f.sport),
            (None, Some((_, (sip, sport)))) => (sip.parse().ok(), sport.parse().ok()),
            (None, None) => return Judgement::NotEgress("no_server"),
        };
        let Some(dst) = dst else {
            return Judgement::Invalid("invalid_ip");
        };
        if self.classifier.ip_is_internal(dst) {
            return Judgement::Internal;
        }
        let client = f
            .cip
            .as_deref()
            .and_then(|c| c.parse().ok())
            .or_else(|| tuple.and_then(|((cip, _), _)| cip.parse().ok()));
        let known = |s: Option<&str>| {
            s.filter(|s| !s.is_empty() && *s != "<NA>")
                .map(str::to_owned)
        };
        let names = f
            .sip_name
            .as_deref()
            .and_then(|n| self.external_name(n))
            .into_iter()
            .collect();
        Judgement::External(Observation {
            time: times.pick(a.time.as_deref().and_then(ts::rfc3339)),
            kind: SourceKind::Falco,
            src: Endpoint {
                namespace: known(f.namespace.as_deref()),
                pod: known(f.pod.as_deref()),
                ip: client,
                ..Endpoint::default()
            },
            fact: Fact::Connection {
                dst_ip: Some(dst),
                dst_port: port.filter(|&p| p != 0),
                proto: match f.l4proto.as_deref() {
                    Some("udp") => Protocol::Udp,
                    _ => Protocol::Tcp,
                },
                names,
            },
            verdict: None,
            count: 1,
        })
    }
}

/// An address and a port, both as written.
type HostPort<'a> = (&'a str, &'a str);

/// `cip:cport->sip:sport` -> ((cip, cport), (sip, sport)); IPv6 addresses come without
/// brackets, so each side splits at its last `:`.
fn split_tuple(name: &str) -> Option<(HostPort<'_>, HostPort<'_>)> {
    let (client, server) = name.split_once("->")?;
    Some((client.rsplit_once(':')?, server.rsplit_once(':')?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_split_at_the_last_colon() {
        assert_eq!(
            split_tuple("10.0.0.1:5000->198.51.100.7:443"),
            Some((("10.0.0.1", "5000"), ("198.51.100.7", "443")))
        );
        assert_eq!(
            split_tuple("fd00::1:5000->2001:db8::7:443"),
            Some((("fd00::1", "5000"), ("2001:db8::7", "443")))
        );
        assert_eq!(split_tuple("/bin/hack"), None);
    }
}
