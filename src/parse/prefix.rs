//! What collectors put before a log line, taken off in one place before any format parses it:
//! `kubectl logs --prefix` (`[pod/NAME/CONTAINER] `, older `[NAME/CONTAINER] ` and
//! `[NAME CONTAINER] `), stern (`POD CONTAINER `, with `-A` `NAMESPACE POD CONTAINER `), and
//! syslog headers: journald / syslog files (`Mon DD HH:MM:SS HOST TAG: `, `short-iso`), and
//! what syslog senders put on the wire (RFC 3164 and RFC 5424 with `<PRI>`, rsyslog's
//! `RSYSLOG_ForwardFormat`). Pure and allocation-free.

/// A line with its collector prefix taken off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripped<'a> {
    pub line: &'a [u8],
    /// The syslog header's RFC 3339 time, when it had one.
    pub time: Option<&'a str>,
    /// The pod that wrote the line, when the prefix names it (kubectl, stern).
    pub writer: Option<Writer<'a>>,
}

/// A pod named by a prefix: kubectl's has no namespace, stern's has one with `-A`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer<'a> {
    pub namespace: Option<&'a str>,
    pub pod: &'a str,
}

impl<'a> Stripped<'a> {
    fn bare(line: &'a [u8]) -> Self {
        Stripped {
            line,
            time: None,
            writer: None,
        }
    }

    fn written_by(line: &'a [u8], namespace: Option<&'a [u8]>, pod: &'a [u8]) -> Self {
        let writer = text(pod).map(|pod| Writer {
            namespace: namespace.and_then(text),
            pod,
        });
        Stripped {
            line,
            time: None,
            writer,
        }
    }
}

/// `line` without the prefix a collector put before it; unchanged when it has none. A line
/// of a supported format starts with `[` (CoreDNS, Envoy TEXT) or `{` (JSON), which no
/// prefix does but kubectl's bracketed one.
pub fn strip(line: &[u8]) -> Stripped<'_> {
    let stripped = match line.first() {
        None | Some(b'{') => None,
        Some(b'[') => kubectl(line),
        Some(b'<') => syslog(line),
        Some(_) => syslog(line).or_else(|| stern(line)),
    };
    let mut stripped = stripped.unwrap_or(Stripped::bare(line));
    // `kubectl logs --timestamps` (after its `--prefix`, if any), `docker logs -t`.
    if let Some((time, rest)) = timestamped(stripped.line) {
        stripped.line = rest;
        stripped.time = Some(time);
    }
    stripped
}

/// An RFC 3339 time and a space before the line (no supported format starts with one).
fn timestamped(line: &[u8]) -> Option<(&str, &[u8])> {
    if !line.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let space = memchr::memchr(b' ', line)?;
    let (time, rest) = (&line[..space], &line[space + 1..]);
    is_iso_time(time)
        .then(|| Some((text(time)?, rest)))
        .flatten()
}

/// `2024-05-14T08:02:11...`: the start of an RFC 3339 (or journald short-iso) time.
fn is_iso_time(t: &[u8]) -> bool {
    let time_byte =
        |b: &u8| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'.' | b'+' | b'T' | b'Z');
    t.len() >= 19 && t[4] == b'-' && t[10] == b'T' && t[13] == b':' && t.iter().all(time_byte)
}

/// A Kubernetes object name: lower-case letters, digits, `-` and `.`.
fn is_name(token: &[u8]) -> bool {
    !token.is_empty()
        && token
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// `[pod/NAME/CONTAINER] `, `[NAME/CONTAINER] ` or `[NAME CONTAINER] ` before the line.
fn kubectl(line: &[u8]) -> Option<Stripped<'_>> {
    let close = memchr::memchr(b']', line)?;
    let inside = &line[1..close];
    let inside = inside.strip_prefix(b"pod/").unwrap_or(inside);
    let mut parts = inside.split(|&b| b == b'/' || b == b' ');
    let (pod, container) = (parts.next()?, parts.next()?);
    (is_name(pod) && is_name(container) && parts.next().is_none()).then_some(())?;
    let rest = line[close + 1..].strip_prefix(b" ")?;
    Some(Stripped::written_by(rest, None, pod))
}

/// `POD CONTAINER ` or `NAMESPACE POD CONTAINER ` before a line of a supported format.
fn stern(line: &[u8]) -> Option<Stripped<'_>> {
    let mut names: [&[u8]; 3] = [b""; 3];
    let mut rest = line;
    for n in 0..3 {
        let space = memchr::memchr(b' ', rest)?;
        names[n] = &rest[..space];
        if !is_name(names[n]) {
            return None;
        }
        rest = &rest[space + 1..];
        if n >= 1 && matches!(rest.first(), Some(b'[' | b'{')) {
            return Some(match n {
                1 => Stripped::written_by(rest, None, names[0]),
                _ => Stripped::written_by(rest, Some(names[0]), names[1]),
            });
        }
    }
    None
}

/// The next space-separated token of `rest` and what follows its one space.
fn token<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let space = memchr::memchr(b' ', rest)?;
    let t = &rest[..space];
    *rest = &rest[space + 1..];
    (!t.is_empty()).then_some(t)
}

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// A syslog header: `<PRI>` (optional on files), then RFC 5424 (`1 TIME HOST APP PROCID MSGID
/// SD `) or an RFC 3164-style `TIME HOST TAG` where TIME is `Mmm dd hh:mm:ss` or RFC 3339.
fn syslog(line: &[u8]) -> Option<Stripped<'_>> {
    let mut rest = line;
    let mut pri = false;
    if let Some(after) = rest.strip_prefix(b"<") {
        let close = memchr::memchr(b'>', after).filter(|&c| (1..=3).contains(&c))?;
        after[..close]
            .iter()
            .all(u8::is_ascii_digit)
            .then_some(())?;
        rest = &after[close + 1..];
        pri = true;
    }
    if pri && let Some(after) = rest.strip_prefix(b"1 ") {
        let mut r = after;
        let time = token(&mut r)?;
        // HOSTNAME, APP-NAME, PROCID, MSGID.
        for _ in 0..4 {
            token(&mut r)?;
        }
        let msg = structured_data(r)?;
        return Some(Stripped {
            line: msg,
            time: text(time).filter(|t| *t != "-"),
            writer: None,
        });
    }
    let time = if rest.len() >= 16 && MONTHS.contains(&&rest[..3]) && rest[3] == b' ' {
        // `Dec  1 08:02:11 ` or `Dec 14 08:02:11 `.
        let clock = &rest[7..15];
        let day_ok = rest[4..6].iter().all(|&b| b == b' ' || b.is_ascii_digit());
        let clock_ok = clock[2] == b':' && clock[5] == b':' && rest[15] == b' ';
        (day_ok && clock_ok).then_some(())?;
        rest = &rest[16..];
        None
    } else {
        let t = token(&mut rest)?;
        is_iso_time(t).then_some(())?;
        text(t)
    };
    let host = token(&mut rest)?;
    // A host name or address, never a log level (`[INFO]`) of the line itself.
    let hostlike = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':');
    host.iter().all(hostlike).then_some(())?;
    // A tag is `PROGRAM[PID]:` or `PROGRAM:`; rsyslog's forward format may leave the colon off.
    let tag = token(&mut rest)?;
    (tag.ends_with(b":") || pri).then_some(())?;
    Some(Stripped {
        line: rest,
        time,
        writer: None,
    })
}

/// What follows RFC 5424 structured data: `- MSG` or `[id k="v"]... MSG` (a `]` inside a
/// quoted value is escaped).
fn structured_data(r: &[u8]) -> Option<&[u8]> {
    if let Some(msg) = r.strip_prefix(b"-") {
        return Some(msg.strip_prefix(b" ").unwrap_or(msg));
    }
    let mut i = 0;
    let mut quoted = false;
    while i < r.len() {
        match r[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b']' if !quoted && r.get(i + 1) != Some(&b'[') => {
                let msg = &r[i + 1..];
                return Some(msg.strip_prefix(b" ").unwrap_or(msg));
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COREDNS: &str = r#"[INFO] 10.244.1.17:41000 - 7 "A IN api.stripe.com. udp 41 false 512" NOERROR qr,rd,ra 68 0.001s"#;
    const ENVOY: &str = r#"[2024-05-14T08:02:11.993Z] "- - -" 0 - - - "-" 1204 6120 1733 - "-" "-" "-" "-" "198.51.100.23:443" PassthroughCluster 10.244.1.17:33712 198.51.100.23:443 10.244.1.17:33710 hooks.slack.com -"#;

    #[test]
    fn bare_lines_stay_as_they_are() {
        for line in [COREDNS, ENVOY, r#"{"a":1}"#, "plain text of an app", ""] {
            assert_eq!(strip(line.as_bytes()).line, line.as_bytes(), "{line}");
        }
    }

    #[test]
    fn each_prefix_comes_off() {
        for prefix in [
            "[pod/coredns-558bd4d5db-8gx2h/coredns] ",
            "[coredns-558bd4d5db-8gx2h/coredns] ",
            "[coredns-558bd4d5db-8gx2h coredns] ",
            "coredns-558bd4d5db-8gx2h coredns ",
            "kube-system coredns-558bd4d5db-8gx2h coredns ",
            "Dec  1 08:02:11 node-1 coredns[1234]: ",
            "May 14 08:02:11 node-1 node-cache: ",
            "2024-05-14T08:02:11+0000 node-1 node-cache[88]: ",
            "<30>May 14 08:02:11 node-1 coredns[1234]: ",
            "<133>2024-05-14T08:02:11.482+00:00 node-1 coredns: ",
            "<133>2024-05-14T08:02:11.482+00:00 node-1 coredns ",
            "<165>1 2024-05-14T08:02:11.482Z node-1 coredns 1234 - - ",
            "2024-05-14T08:02:11.482123456Z ",
            "[pod/coredns-558bd4d5db-8gx2h/coredns] 2024-05-14T08:02:11.482123456Z ",
            r#"<165>1 2024-05-14T08:02:11.482Z node-1 coredns - ID47 [x@1 a="b\]c"][y@1 k="v"] "#,
        ] {
            for line in [COREDNS, ENVOY] {
                let prefixed = format!("{prefix}{line}");
                assert_eq!(
                    strip(prefixed.as_bytes()).line,
                    line.as_bytes(),
                    "{prefixed}"
                );
            }
        }
    }

    #[test]
    fn syslog_headers_give_their_time_and_prefixes_their_pod() {
        let s = strip(b"<133>2024-05-14T08:02:11.482+00:00 node-1 coredns[7]: [INFO] x");
        assert_eq!(
            (s.time, s.writer),
            (Some("2024-05-14T08:02:11.482+00:00"), None)
        );
        let s = strip(b"<165>1 2024-05-14T08:02:11Z node-2 envoy - - - {}");
        assert_eq!((s.time, s.line), (Some("2024-05-14T08:02:11Z"), &b"{}"[..]));
        let pod = |namespace, pod| Some(Writer { namespace, pod });
        for (line, writer) in [
            ("[pod/web-1/istio-proxy] [x", pod(None, "web-1")),
            ("[web-1 istio-proxy] [x", pod(None, "web-1")),
            ("web-1 istio-proxy [x", pod(None, "web-1")),
            ("shop web-1 istio-proxy {}", pod(Some("shop"), "web-1")),
        ] {
            assert_eq!(strip(line.as_bytes()).writer, writer, "{line}");
        }
    }

    #[test]
    fn a_timestamp_before_a_log_level_is_no_syslog_header() {
        let s = strip(b"2024-05-14T08:02:11Z [INFO] plugin/reload: Running configuration");
        assert_eq!(s.line, b"[INFO] plugin/reload: Running configuration");
        assert_eq!(s.time, Some("2024-05-14T08:02:11Z"));
    }

    #[test]
    fn lookalikes_are_not_prefixes() {
        for line in [
            "[INFO] plugin/reload: Running configuration",
            "Jan is a name: not a header",
            "web-1 started and listening",
            "<html> page",
            "[pod/a/b]no-space",
            // istio-proxy's own log: a time, then a tab.
            "2024-05-14T08:03:01.200111Z\tinfo\txdsproxy\tconnected to upstream XDS server",
        ] {
            assert_eq!(strip(line.as_bytes()).line, line.as_bytes(), "{line}");
        }
    }
}
