//! The `Host` of an HTTP/1 request at the start of a client's stream (the request head may
//! span segments), without its port; IP literals name nothing.

/// What the start of a client stream says.
#[derive(Debug, PartialEq, Eq)]
pub enum Request<'a> {
    NotHttp,
    /// A request whose head is not complete yet.
    Partial,
    Host(Option<&'a str>),
}

pub fn host(stream: &[u8]) -> Request<'_> {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"HEAD ",
        b"DELETE ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
        b"TRACE ",
    ];
    if !METHODS
        .iter()
        .any(|m| stream.starts_with(m) || m.starts_with(stream))
    {
        return Request::NotHttp;
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let value = match req.parse(stream) {
        Ok(httparse::Status::Complete(_)) => req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("host"))
            .map(|h| h.value),
        // The head goes on in later segments (or was cut by the capture), but its Host line,
        // usually the second, may be whole already.
        Ok(httparse::Status::Partial) => match complete_host_line(stream) {
            Some(value) => Some(value),
            None => return Request::Partial,
        },
        // A header httparse finds invalid (real clients send some) hides the others from it.
        Err(_) => complete_host_line(stream),
    };
    let host = value
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|h| strip_port(h.trim()))
        .filter(|h| h.parse::<std::net::IpAddr>().is_err() && !h.is_empty());
    Request::Host(host)
}

/// The value of a `Host:` line that ends within `head`.
fn complete_host_line(head: &[u8]) -> Option<&[u8]> {
    // After the request line; the last piece has no line end yet.
    let mut lines = head.split(|&b| b == b'\n').skip(1).peekable();
    while let Some(line) = lines.next() {
        // A line is whole when another piece follows it.
        lines.peek()?;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(colon) = line.iter().position(|&b| b == b':')
            && line[..colon].eq_ignore_ascii_case(b"host")
        {
            return Some(&line[colon + 1..]);
        }
    }
    None
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host; // an IPv6 literal
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_without_port_and_partial_heads() {
        assert_eq!(
            host(b"GET / HTTP/1.1\r\nHost: Example.com:8080\r\n\r\n"),
            Request::Host(Some("Example.com"))
        );
        assert_eq!(host(b"GET / HTTP/1.1\r\nHos"), Request::Partial);
        assert_eq!(
            host(b"GET / HTTP/1.1\r\nHost: a.example\r\nUser-Ag"),
            Request::Host(Some("a.example"))
        );
        assert_eq!(host(b"GE"), Request::Partial);
        assert_eq!(host(b"\x16\x03\x01"), Request::NotHttp);
        assert_eq!(
            host(b"GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n"),
            Request::Host(None)
        );
    }
}
