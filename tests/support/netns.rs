//! Test hosts: network namespaces joined by a veth pair, documentation addresses only, and
//! the DNS answers their servers send.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};

use hickory_proto::op::{Message, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType, rdata};

/// A DNS response (id 7) answering `name` with `ip`.
pub fn dns_response(name: &str, ip: Ipv4Addr) -> Vec<u8> {
    let name = Name::from_ascii(name).unwrap();
    let mut m = Message::response(7, OpCode::Query);
    m.add_query(Query::query(name.clone(), RecordType::A));
    m.add_answer(Record::from_rdata(name, 300, RData::A(rdata::A(ip))));
    m.to_vec().unwrap()
}

/// Bytes as the hex `bytes.fromhex` takes, for Python servers.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts a Python `script` in network namespace `ns` and waits until it prints `ready`.
pub fn serve(ns: &str, script: &str) -> Child {
    let mut server = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready", "{script}");
    server
}

/// Runs `ip` with `args`; panics on failure.
pub fn ip(args: &[&str]) {
    let status = std::process::Command::new("ip")
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "ip {args:?}");
}

/// Two network namespaces joined by a veth pair, documentation-range addresses only:
/// nothing leaves the machine. Removed when dropped.
pub struct Namespaces {
    pub a: String,
    pub b: String,
}

impl Namespaces {
    /// Namespaces `{tag}a{id}` (198.51.100.1 on veth `{tag}va{id}`) and `{tag}b{id}`
    /// (198.51.100.2 on `{tag}vb{id}`); none when not root or without iproute2.
    pub fn joined(tag: &str) -> Option<(Namespaces, String, String)> {
        use std::process::Command;
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        if !root || Command::new("ip").arg("-V").output().is_err() {
            super::skipped("network namespaces need root and iproute2");
            return None;
        }
        let id = std::process::id() % 100_000;
        let ns = Namespaces {
            a: format!("{tag}a{id}"),
            b: format!("{tag}b{id}"),
        };
        let (va, vb) = (format!("{tag}va{id}"), format!("{tag}vb{id}"));
        ip(&["netns", "add", &ns.a]);
        ip(&["netns", "add", &ns.b]);
        ip(&[
            "link", "add", &va, "netns", &ns.a, "type", "veth", "peer", "name", &vb, "netns", &ns.b,
        ]);
        for (n, dev, addr) in [
            (&ns.a, &va, "198.51.100.1/24"),
            (&ns.b, &vb, "198.51.100.2/24"),
        ] {
            ip(&["-n", n, "addr", "add", addr, "dev", dev]);
            ip(&["-n", n, "link", "set", dev, "up"]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        Some((ns, va, vb))
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .status();
        }
    }
}
