//! Log-shipper ingestion: the `http` source as Fluent Bit and Vector post to it, and the `tcp`
//! source; bad requests get a 4xx and the source goes on.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use support::{coredns_query, expect, free_port, spawn_run, terminate};

fn query(name: &str) -> String {
    coredns_query("10.244.0.9", name)
}

fn connect(port: u16) -> TcpStream {
    let started = Instant::now();
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) if started.elapsed() > Duration::from_secs(30) => panic!("no listener: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// One HTTP/1.1 request; returns the status code.
fn request(port: u16, method: &str, path: &str, content_type: &str, body: &[u8]) -> u16 {
    request_with(port, method, path, content_type, "", body)
}

/// One HTTP/1.1 request with `headers` (each ending in CRLF) added; returns the status code.
fn request_with(
    port: u16,
    method: &str,
    path: &str,
    content_type: &str,
    headers: &str,
    body: &[u8],
) -> u16 {
    let mut s = connect(port);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response.split(' ').nth(1).unwrap_or("0").parse().unwrap()
}

fn write_config(dir: &std::path::Path, source: &str) -> std::path::PathBuf {
    let path = dir.join("ingest.toml");
    let text = format!("[inventory]\nupdate_interval_secs = 3600\n[[sources]]\n{source}\n");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn http_takes_fluent_bit_vector_and_text_and_rejects_bad_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        &format!(
            "type = \"http\"\naddress = \"127.0.0.1:{port}\"\nformat = \"coredns\"\nmax_body_bytes = 2048"
        ),
    );
    let (mut child, rx) = spawn_run(&config);
    let _ = connect(port);
    assert_eq!(request(port, "GET", "/healthz", "text/plain", b""), 200);

    let fluent_bit =
        serde_json::json!([{"date": 1715673731.5, "log": query("a.example.com") + "\n"}]);
    let body = fluent_bit.to_string();
    assert_eq!(
        request(port, "POST", "/", "application/json", body.as_bytes()),
        200
    );
    expect(&rx, "fluent bit", |v| v["names"][0] == "a.example.com");

    let vector = format!(
        "{}\n",
        serde_json::json!({"message": query("b.example.com"), "host": "n1"})
    );
    assert_eq!(
        request(
            port,
            "POST",
            "/logs",
            "application/x-ndjson",
            vector.as_bytes()
        ),
        200
    );
    expect(&rx, "vector", |v| v["names"][0] == "b.example.com");

    assert_eq!(
        request(port, "POST", "/", "application/json", b"[{\"log\": \"x\""),
        400
    );
    assert_eq!(
        request(port, "POST", "/", "text/plain", &vec![b'x'; 4096]),
        413
    );
    assert_eq!(request(port, "GET", "/", "text/plain", b""), 405);

    let text = query("c.example.com");
    assert_eq!(
        request(port, "POST", "/", "text/plain", text.as_bytes()),
        200
    );
    expect(&rx, "text after bad requests", |v| {
        v["names"][0] == "c.example.com"
    });

    terminate(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn tcp_takes_newline_delimited_lines_per_connection() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        &format!("type = \"tcp\"\naddress = \"127.0.0.1:{port}\"\nformat = \"coredns\""),
    );
    let (mut child, rx) = spawn_run(&config);
    let mut a = connect(port);
    let mut b = connect(port);
    // Interleaved connections do not mix their partial lines.
    let line = query("d.example.com");
    let (first, rest) = line.split_at(20);
    a.write_all(first.as_bytes()).unwrap();
    b.write_all(format!("{}\n", query("e.example.com")).as_bytes())
        .unwrap();
    a.write_all(rest.as_bytes()).unwrap();
    drop(a);
    // Either may come first.
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 2 {
        let v = expect(&rx, "both connections' lines", |v| v["update"] == "new");
        seen.insert(v["names"][0].as_str().unwrap().to_string());
    }
    assert_eq!(seen, support::set(&["d.example.com", "e.example.com"]));
    drop(b);
    terminate(&child);
    assert!(child.wait().unwrap().success());

    // Taken address: the pipeline does not start.
    let blocker = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = blocker.local_addr().unwrap().port();
    let config = write_config(
        dir.path(),
        &format!("type = \"tcp\"\naddress = \"127.0.0.1:{taken}\""),
    );
    let out = support::bin()
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen on"));
}

/// With `auth.token_file`, the `http` and `falco` receivers refuse a request without the
/// bearer token (401, counted, never parsed), take one with it, and follow a rotated token.
#[test]
fn receivers_with_a_token_refuse_requests_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let (http, falco, metrics) = (free_port(), free_port(), free_port());
    let config = dir.path().join("auth.toml");
    std::fs::write(
        &config,
        format!(
            "[inventory]\nupdate_interval_secs = 1\n\n[[sources]]\ntype = \"http\"\naddress = \"127.0.0.1:{http}\"\nformat = \"coredns\"\nauth = {{ token_file = \"token\" }}\n\n[[sources]]\ntype = \"falco\"\naddress = \"127.0.0.1:{falco}\"\nauth = {{ token_file = {token:?} }}\n\n[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\ntype = \"prometheus\"\naddress = \"127.0.0.1:{metrics}\"\n"
        ),
    )
    .unwrap();
    let check = support::bin().arg("check").arg(&config).output().unwrap();
    support::assert_ok(&check);
    let (mut child, rx) = spawn_run(&config);
    let _ = connect(http);
    let _ = connect(falco);
    let line = query("a.example.com") + "\n";
    let bearer = |t: &str| format!("Authorization: Bearer {t}\r\n");
    let post = |port: u16, content_type: &str, auth: &str, body: &str| {
        request_with(port, "POST", "/", content_type, auth, body.as_bytes())
    };
    // Probes need no token.
    assert_eq!(request(http, "GET", "/healthz", "text/plain", b""), 200);
    assert_eq!(request(falco, "GET", "/healthz", "text/plain", b""), 200);
    assert_eq!(post(http, "text/plain", "", &line), 401);
    assert_eq!(post(http, "text/plain", &bearer("wrong"), &line), 401);
    assert_eq!(
        post(
            http,
            "text/plain",
            "Authorization: Basic czNjcmV0\r\n",
            &line
        ),
        401
    );
    let alert = std::fs::read_to_string(support::repo("examples/falco.json")).unwrap();
    let alert = alert.lines().next().unwrap();
    assert_eq!(post(falco, "application/json", "", alert), 401);
    // Nothing refused reached the inventory; with the token, both get through.
    assert_eq!(post(http, "text/plain", &bearer("s3cret"), &line), 200);
    expect(&rx, "the authorized line", |v| {
        v["destination"] == "a.example.com"
    });
    assert_eq!(
        post(falco, "application/json", &bearer("s3cret"), alert),
        200
    );
    // A rotated Secret: the old token is refused at once, the new one taken.
    std::fs::write(&token, "r0tated").unwrap();
    let later = query("b.example.com") + "\n";
    assert_eq!(post(http, "text/plain", &bearer("s3cret"), &later), 401);
    assert_eq!(post(http, "text/plain", &bearer("r0tated"), &later), 200);
    expect(&rx, "the line of the new token", |v| {
        v["destination"] == "b.example.com"
    });
    let text = support::scrape_until(metrics, |t| t.contains("unauthorized"));
    let refused: u64 = text
        .lines()
        .filter(|l| l.contains("reason=\"unauthorized\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(refused, 5, "{text}");
    terminate(&child);
    assert!(child.wait().unwrap().success());
}

/// A receiver whose token file is empty fails `check` with its key; one that is missing where
/// it runs fails the start, naming it: it never runs refusing everything.
#[test]
fn a_receiver_without_its_token_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let port = free_port();
    for (file, check_fails) in [(empty.clone(), true), (dir.path().join("missing"), false)] {
        let config = write_config(
            dir.path(),
            &format!(
                "type = \"http\"\naddress = \"127.0.0.1:{port}\"\nauth = {{ token_file = {file:?} }}"
            ),
        );
        let check = support::bin().arg("check").arg(&config).output().unwrap();
        let text = String::from_utf8_lossy(&check.stdout).to_string();
        assert_eq!(!check.status.success(), check_fails, "{text}");
        if check_fails {
            assert!(text.contains("sources[0].auth.token_file"), "{text}");
            continue;
        }
        let run = support::bin()
            .args(["run", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(!run.status.success());
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(
            err.contains("auth.token_file") && err.contains("missing"),
            "{err}"
        );
    }
}
