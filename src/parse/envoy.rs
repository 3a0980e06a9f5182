//! Envoy / Istio access logs in the TEXT format of every Istio generation and in JSON.
//!
//! TEXT lines are read from both ends (formats.md): `[START_TIME] "REQUEST LINE" ...` at the
//! front, and from the back the unquoted tail
//! `UPSTREAM_CLUSTER UPSTREAM_LOCAL DOWNSTREAM_LOCAL DOWNSTREAM_REMOTE SNI [ROUTE]` after the
//! last two quoted fields `"AUTHORITY" "UPSTREAM_HOST"`. What lies between changed across
//! versions and is not needed.

use std::borrow::Cow;

use memchr::memrchr;
use nom::{
    Parser,
    bytes::complete::{take_till, take_till1},
    character::complete::char,
    sequence::delimited,
};
use serde::Deserialize;

use super::{ParseError, Parsed, Record};

/// The fields of one access log line that say where a connection went. `None` stands for
/// Envoy's `-` and JSON `null`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessLog<'a> {
    pub start_time: Option<Cow<'a, str>>,
    pub authority: Option<Cow<'a, str>>,
    pub upstream_host: Option<Cow<'a, str>>,
    /// Trailing `;` of some versions already removed.
    pub upstream_cluster: Option<Cow<'a, str>>,
    pub upstream_local_address: Option<Cow<'a, str>>,
    pub downstream_local_address: Option<Cow<'a, str>>,
    pub downstream_remote_address: Option<Cow<'a, str>>,
    pub requested_server_name: Option<Cow<'a, str>>,
}

/// Parses one access log line, TEXT or JSON.
pub fn parse(line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let line = simdutf8::basic::from_utf8(line.trim_ascii_end()).map_err(|_| ParseError::Utf8)?;
    match line.as_bytes().first() {
        Some(b'[') => text(line),
        Some(b'{') => json(line),
        // istio-proxy's own agent lines: `2021-03-11T07:03:56.565871Z info ads ...`
        Some(b'0'..=b'9') => Ok(Parsed::Skip("proxy_log")),
        _ => Err(ParseError::Syntax("envoy")),
    }
}

fn dash(s: &str) -> Option<Cow<'_, str>> {
    (!s.is_empty() && s != "-").then_some(Cow::Borrowed(s))
}

fn cluster(s: &str) -> Option<Cow<'_, str>> {
    dash(s.strip_suffix(';').unwrap_or(s))
}

fn text(line: &str) -> Result<Parsed<'_>, ParseError> {
    let syntax = ParseError::Syntax("envoy");
    let mut head = delimited(char('['), take_till1(|c| c == ']'), char(']'));
    let (after_time, start_time) = head.parse(line).map_err(|_: NomErr<'_>| syntax)?;
    // Envoy's own log lines: `[2021-03-11 07:03:56.565][21][warning][config] ...`
    if after_time.starts_with('[') {
        return Ok(Parsed::Skip("proxy_log"));
    }
    let after_time = after_time.strip_prefix(' ').ok_or(syntax)?;
    let mut quoted = delimited(char('"'), take_till(|c| c == '"'), char('"'));
    // The request line (`- - -` for TCP proxy lines) says nothing about the destination.
    let (after_request, _request) = quoted.parse(after_time).map_err(|_: NomErr<'_>| syntax)?;

    // From the back: "AUTHORITY" "UPSTREAM_HOST" tail...
    let bytes = after_request.as_bytes();
    let close_host = memrchr(b'"', bytes).ok_or(syntax)?;
    let open_host = memrchr(b'"', &bytes[..close_host]).ok_or(syntax)?;
    let between = open_host.checked_sub(1).ok_or(syntax)?;
    if open_host < 2 || bytes[between] != b' ' || bytes[between - 1] != b'"' {
        return Err(syntax);
    }
    let close_authority = between - 1;
    let open_authority = memrchr(b'"', &bytes[..close_authority]).ok_or(syntax)?;
    let authority = &after_request[open_authority + 1..close_authority];
    let upstream_host = &after_request[open_host + 1..close_host];

    let mut tail = after_request[close_host + 1..].split_ascii_whitespace();
    let mut next = || tail.next().ok_or(syntax);
    let (upstream_cluster, upstream_local, downstream_local, downstream_remote, sni) =
        (next()?, next()?, next()?, next()?, next()?);
    let _route = tail.next();
    if tail.next().is_some() {
        return Err(syntax);
    }
    Ok(Parsed::Record(Record::Access(AccessLog {
        start_time: dash(start_time),
        authority: dash(authority),
        upstream_host: dash(upstream_host),
        upstream_cluster: cluster(upstream_cluster),
        upstream_local_address: dash(upstream_local),
        downstream_local_address: dash(downstream_local),
        downstream_remote_address: dash(downstream_remote),
        requested_server_name: dash(sni),
    })))
}

type NomErr<'a> = nom::Err<nom::error::Error<&'a str>>;

/// Istio's JSON encoding: typed values, `null` for missing ones, any key order.
#[derive(Deserialize)]
struct JsonLine<'a> {
    #[serde(borrow, default)]
    start_time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    authority: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    upstream_host: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    upstream_cluster: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    upstream_local_address: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    downstream_local_address: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    downstream_remote_address: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    requested_server_name: Option<Cow<'a, str>>,
}

fn non_dash(v: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    v.filter(|s| !s.is_empty() && s != "-")
}

fn json(line: &str) -> Result<Parsed<'_>, ParseError> {
    let j: JsonLine<'_> =
        serde_json::from_str(line).map_err(|_| ParseError::Syntax("envoy json"))?;
    if j.upstream_cluster.is_none() && j.downstream_remote_address.is_none() {
        // Valid JSON from another writer in the same container (e.g. Istio 1.0 mixer entries).
        return Ok(Parsed::Skip("not_access_log"));
    }
    Ok(Parsed::Record(Record::Access(AccessLog {
        start_time: non_dash(j.start_time),
        authority: non_dash(j.authority),
        upstream_host: non_dash(j.upstream_host),
        upstream_cluster: non_dash(j.upstream_cluster).map(|c| match c {
            Cow::Borrowed(b) => Cow::Borrowed(b.strip_suffix(';').unwrap_or(b)),
            Cow::Owned(o) => Cow::Owned(o.strip_suffix(';').unwrap_or(&o).to_owned()),
        }),
        upstream_local_address: non_dash(j.upstream_local_address),
        downstream_local_address: non_dash(j.downstream_local_address),
        downstream_remote_address: non_dash(j.downstream_remote_address),
        requested_server_name: non_dash(j.requested_server_name),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(line: &str) -> AccessLog<'_> {
        match parse(line.as_bytes()) {
            Ok(Parsed::Record(Record::Access(a))) => a,
            other => panic!("{line:?} -> {other:?}"),
        }
    }

    fn s<'a>(v: &'a Option<Cow<'_, str>>) -> Option<&'a str> {
        v.as_deref()
    }

    #[test]
    fn current_http_line() {
        let a = access(
            r#"[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default"#,
        );
        assert_eq!(s(&a.start_time), Some("2020-11-25T21:26:18.409Z"));
        assert_eq!(s(&a.authority), Some("httpbin:8000"));
        assert_eq!(s(&a.upstream_host), Some("10.44.1.27:80"));
        assert_eq!(
            s(&a.upstream_cluster),
            Some("outbound|8000||httpbin.foo.svc.cluster.local")
        );
        assert_eq!(s(&a.downstream_remote_address), Some("10.44.1.23:46520"));
        assert_eq!(s(&a.requested_server_name), None);
    }

    #[test]
    fn old_tcp_line_without_route() {
        let a = access(
            r#"[2019-01-02T11:46:46.981Z] "- - -" 0 - 627 1879689 44 - "-" "-" "-" "-" "151.101.129.67:443" outbound|443||edition.cnn.com 172.30.109.80:41122 172.30.109.80:443 172.30.109.112:59970 edition.cnn.com"#,
        );
        assert_eq!(s(&a.authority), None);
        assert_eq!(s(&a.upstream_host), Some("151.101.129.67:443"));
        assert_eq!(s(&a.requested_server_name), Some("edition.cnn.com"));
    }

    #[test]
    fn pre_1_9_http_line() {
        let a = access(
            r#"[2019-09-03T20:57:49.103Z] "GET /politics HTTP/2" 301 - "-" "-" 0 0 90 89 "10.244.2.10" "curl/7.64.0" "ea379962-9b5c-4431-ab66-f01994f5a5a5" "edition.cnn.com" "151.101.65.67:80" outbound|80||edition.cnn.com - 10.244.1.5:80 10.244.2.10:50482 edition.cnn.com -"#,
        );
        assert_eq!(s(&a.authority), Some("edition.cnn.com"));
        assert_eq!(s(&a.upstream_local_address), None);
    }

    #[test]
    fn json_any_order_with_nulls() {
        let a = access(
            r#"{"upstream_cluster":"PassthroughCluster;","response_code":0,"authority":null,"upstream_host":"104.102.54.251:443","downstream_remote_address":"172.17.34.35:45582","requested_server_name":"cloud.ibm.com","start_time":"2023-11-24T13:21:55.197Z","bytes_sent":15199,"method":null}"#,
        );
        assert_eq!(s(&a.upstream_cluster), Some("PassthroughCluster"));
        assert_eq!(s(&a.authority), None);
        assert_eq!(s(&a.requested_server_name), Some("cloud.ibm.com"));
    }

    #[test]
    fn skips_and_errors() {
        assert_eq!(
            parse(b"[2021-03-11 07:03:56.565][21][warning][config] gRPC config stream closed"),
            Ok(Parsed::Skip("proxy_log"))
        );
        assert_eq!(
            parse(b"2021-03-11T07:03:56.565871Z\tinfo\tads\tADS: new connection"),
            Ok(Parsed::Skip("proxy_log"))
        );
        assert_eq!(
            parse(br#"{"level":"info","instance":"tcpaccesslog.logentry.istio-system"}"#),
            Ok(Parsed::Skip("not_access_log"))
        );
        for bad in [
            r#"[2020-11-25T21:26:18.409Z] "GET / HTTP/1.1" 200"#,
            r#"[2020-11-25T21:26:18.409Z] "GET / HTTP/1.1" "a" "b" c d"#,
            r#"[2020-11-25T21:26:18.409Z"#,
            r#"{"upstream_cluster": 5}"#,
            r#"{"upstream_cluster": "x""#,
            "junk",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
