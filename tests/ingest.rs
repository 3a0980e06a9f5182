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
    let mut s = connect(port);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
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
