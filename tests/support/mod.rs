//! Shared helpers: run the real binary and read its JSON.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod netns;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_egress-scout"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("RUST_LOG");
    c
}

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Says a test skipped, straight to stderr: the harness would hide an `eprintln!` of a
/// passing test.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// A service a test needs, when found. Missing, the test skips, unless the README's test
/// command (`tests/run.sh`) runs it: there a missing service is a failure.
pub fn service<T>(found: Option<T>, missing: &str) -> Option<T> {
    if found.is_none() {
        assert!(
            std::env::var_os("EGRESS_SCOUT_REQUIRE_SERVICES").is_none(),
            "{missing}"
        );
        skipped(missing);
    }
    found
}

/// Runs `run --config <config>` to its end; panics unless it exits 0.
pub fn run_to_end(config: &Path) -> Output {
    let out = bin()
        .args(["run", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert_ok(&out);
    out
}

/// A port that was free a moment ago, for a listener of the test.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CoreDNS query log line (no newline) of `client` looking up `name`.
pub fn coredns_query(client: &str, name: &str) -> String {
    format!(
        "[INFO] {client}:41000 - 7 \"A IN {name}. udp 41 false 512\" NOERROR qr,rd,ra 68 0.001s"
    )
}

/// Appends `text` to the file at `path`, creating it.
pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// `scan --output json` over `args`; panics unless it exits 0.
pub fn scan(args: &[&str]) -> Value {
    let out = bin()
        .arg("scan")
        .args(["--output", "json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ok(&out);
    serde_json::from_slice(&out.stdout).expect("scan prints one JSON document")
}

pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every name of every destination.
pub fn names(doc: &Value) -> BTreeSet<String> {
    strings(doc, "names")
}

pub fn ips(doc: &Value) -> BTreeSet<String> {
    strings(doc, "ips")
}

fn strings(doc: &Value, field: &str) -> BTreeSet<String> {
    doc["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d[field].as_array().cloned().unwrap_or_default())
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The destination whose key (its name, else its IP) is `key`.
pub fn dest<'a>(doc: &'a Value, key: &str) -> &'a Value {
    doc["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == key)
        .unwrap_or_else(|| panic!("{key} not in {doc}"))
}

/// Connections of a destination or an edge on `port`, when it has that port.
pub fn on_port(d: &Value, port: u64) -> Option<u64> {
    d["ports"]
        .as_array()?
        .iter()
        .find_map(|p| (p["port"] == port).then(|| p["count"].as_u64().unwrap()))
}

/// The source of a destination's edge `i`.
pub fn source(d: &Value, i: usize) -> &Value {
    &d["edges"][i]["source"]
}

pub fn stat(doc: &Value, key: &str) -> u64 {
    doc["stats"][key].as_u64().unwrap()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Starts `run --config <config>`; its stdout JSON lines arrive on the receiver.
pub fn spawn_run(config: &Path) -> (Child, mpsc::Receiver<Value>) {
    let mut child = bin()
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx
                .send(serde_json::from_str::<Value>(&line).unwrap())
                .is_err()
            {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for an output line matching `pred`; a generous bound so a slow machine never fails.
pub fn expect(rx: &mpsc::Receiver<Value>, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(v) if pred(&v) => return v,
            Ok(_) => continue,
            Err(e) => panic!("no output for {what}: {e}"),
        }
    }
}

/// A child process killed when the test ends, passing or failing: a failed test leaves no
/// server or pipeline behind.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM.
pub fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Serves gRPC `routes` on `port`. Shutting down the returned set kills the server: its
/// listener and every connection go at once, as when the process dies. (The server sits
/// behind a TCP relay of the test's own: tonic alone keeps open connections alive after its
/// accept loop stops.)
pub async fn serve_killable(port: u16, routes: tonic::service::Routes) -> tokio::task::JoinSet<()> {
    let inner = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inner_addr = inner.local_addr().unwrap();
    let outer = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(async move {
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(inner))
            .await
            .unwrap();
    });
    tasks.spawn(async move {
        // Aborting this task drops the set, and with it every relayed connection.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let (mut client, _) = outer.accept().await.unwrap();
            let mut server = tokio::net::TcpStream::connect(inner_addr).await.unwrap();
            connections.spawn(async move {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    tasks
}

/// Count per edge (destination and source) in a `file` sink snapshot; empty before its
/// first write.
pub fn snapshot_counts(snapshot: &Path) -> std::collections::BTreeMap<String, u64> {
    let Ok(text) = std::fs::read_to_string(snapshot) else {
        return Default::default();
    };
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| {
            d["edges"].as_array().unwrap().iter().map(|e| {
                let key = format!("{} {}", d["destination"], e["source"]);
                (key, e["count"].as_u64().unwrap())
            })
        })
        .collect()
}

/// Runs `cmd` with `input` on its stdin to its end; stdout and stderr captured.
pub fn with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// The body of `GET /metrics` on a local port.
pub fn scrape(port: u16) -> Option<String> {
    get(port, "/metrics")
}

/// The body of `GET path` (already URL-encoded) on a local port.
pub fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// Scrapes until `ready` holds; a generous bound so a slow machine never fails.
pub fn scrape_until(port: u16, ready: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        if let Some(text) = scrape(port).filter(|t| ready(t)) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "metrics never got there"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
