//! Packet captures through `scan`: the project's own generated fixtures (a ClientHello split
//! over segments and records behind a VLAN tag, an HTTP request over IPv6 with its Host in the
//! second segment, DNS over TCP naming a later connection, refused and unanswered attempts,
//! UDP), a truncated capture that keeps what came before, and every real capture in
//! ../shared/samples/pcap.

mod support;

use std::net::Ipv4Addr;
use std::path::Path;

use egress_scout::capture::is_capture;
use etherparse::PacketBuilder;
use serde_json::Value;
use support::netns::{Namespaces, dns_response, serve};
use support::{dest, ips, names, on_port, scan, set, source, stat};

const CLIENT: [u8; 4] = [10, 244, 1, 5];
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// A microsecond pcap of Ethernet frames, one per microsecond.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    for v in [
        0xa1b2_c3d4u32.to_le_bytes().as_slice(),
        &2u16.to_le_bytes(),
        &4u16.to_le_bytes(),
    ] {
        out.extend_from_slice(v);
    }
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        for v in [1_795_000_000u32, i as u32, f.len() as u32, f.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

/// A TCP segment over IPv4 (VLAN-tagged when `vlan`); flags: S(YN), A(CK), R(ST).
fn tcp4(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    flags: &str,
    vlan: bool,
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(MAC, MAC);
    let ip = if vlan {
        eth.single_vlan(10.try_into().unwrap()).ipv4(src, dst, 64)
    } else {
        eth.ipv4(src, dst, 64)
    };
    let mut t = ip.tcp(sport, dport, 1, 65535);
    if flags.contains('S') {
        t = t.syn();
    }
    if flags.contains('A') {
        t = t.ack(1);
    }
    if flags.contains('R') {
        t = t.rst();
    }
    let mut out = Vec::new();
    t.write(&mut out, payload).unwrap();
    out
}

/// A ClientHello for `name`, padded to about `size` bytes, in TLS records of at most `record`.
fn client_hello(name: &str, size: usize, record: usize) -> Vec<u8> {
    let mut ext = Vec::new();
    let sni_list_len = 3 + name.len();
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&((sni_list_len + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(sni_list_len as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name.as_bytes());
    // A padding extension stands for a post-quantum key share.
    let pad = size.saturating_sub(100);
    ext.extend_from_slice(&[0, 21]);
    ext.extend_from_slice(&(pad as u16).to_be_bytes());
    ext.extend(std::iter::repeat_n(0, pad));
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut handshake = vec![1];
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut stream = Vec::new();
    for chunk in handshake.chunks(record) {
        stream.extend_from_slice(&[0x16, 3, 1]);
        stream.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        stream.extend_from_slice(chunk);
    }
    stream
}

fn fixture_frames() -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    // A 4 KB ClientHello in two TLS records, over three segments, behind a VLAN tag.
    let server = [198, 51, 100, 10];
    frames.push(tcp4(CLIENT, 40000, server, 443, "S", true, b""));
    frames.push(tcp4(server, 443, CLIENT, 40000, "SA", true, b""));
    let hello = client_hello("split.example.com", 4000, 2500);
    for part in hello.chunks(1400) {
        frames.push(tcp4(CLIENT, 40000, server, 443, "A", true, part));
    }
    // DNS over TCP: two answers in one segment, a third split over two.
    let resolver = [198, 51, 100, 53];
    frames.push(tcp4(CLIENT, 40001, resolver, 53, "S", false, b""));
    frames.push(tcp4(resolver, 53, CLIENT, 40001, "SA", false, b""));
    let mut answers = Vec::new();
    for (name, ip) in [
        ("a.example.net.", Ipv4Addr::new(198, 51, 100, 20)),
        ("b.example.net.", Ipv4Addr::new(198, 51, 100, 21)),
        ("c.example.net.", Ipv4Addr::new(198, 51, 100, 22)),
    ] {
        let m = dns_response(name, ip);
        answers.extend_from_slice(&(m.len() as u16).to_be_bytes());
        answers.extend_from_slice(&m);
    }
    let cut = answers.len() - 10;
    for part in [&answers[..cut], &answers[cut..]] {
        frames.push(tcp4(resolver, 53, CLIENT, 40001, "A", false, part));
    }
    // A connection to a resolved address that nobody answers (its SYN sent twice).
    for _ in 0..2 {
        frames.push(tcp4(
            CLIENT,
            40002,
            [198, 51, 100, 20],
            443,
            "S",
            false,
            b"",
        ));
    }
    // A refused one.
    frames.push(tcp4(CLIENT, 40003, [203, 0, 113, 5], 25, "S", false, b""));
    frames.push(tcp4([203, 0, 113, 5], 25, CLIENT, 40003, "RA", false, b""));
    // HTTP over IPv6, the Host line in the second segment.
    let v6 = |src: [u8; 16], dst: [u8; 16], sport, dport, syn: bool, payload: &[u8]| {
        let mut t = PacketBuilder::ethernet2(MAC, MAC)
            .ipv6(src, dst, 64)
            .tcp(sport, dport, 1, 65535);
        t = if syn { t.syn() } else { t.ack(1) };
        let mut out = Vec::new();
        t.write(&mut out, payload).unwrap();
        out
    };
    let c6: [u8; 16] = "fd00:10:244::5"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    let s6: [u8; 16] = "2001:db8::10"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    frames.push(v6(c6, s6, 40004, 80, true, b""));
    for part in [
        &b"GET /index.html HTTP/1.1\r\n"[..],
        b"Host: v6.example.org:80\r\nAccept: */*\r\n\r\n",
    ] {
        frames.push(v6(c6, s6, 40004, 80, false, part));
    }
    // UDP: the first datagram starts the flow, the reply belongs to it.
    let udp = |src: [u8; 4], sport, dst: [u8; 4], dport| {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(MAC, MAC)
            .ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut out, b"ntp")
            .unwrap();
        out
    };
    frames.push(udp(CLIENT, 40005, [203, 0, 113, 9], 123));
    frames.push(udp([203, 0, 113, 9], 123, CLIENT, 40005));
    frames
}

fn destination<'a>(doc: &'a Value, ip_or_name: &str) -> &'a Value {
    doc["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["ips"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == ip_or_name))
                || d["names"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == ip_or_name))
        })
        .unwrap_or_else(|| panic!("{ip_or_name} not in {doc}"))
}

#[test]
fn generated_fixtures_give_the_whole_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixtures.pcap");
    write_pcap(&path, &fixture_frames());
    let doc = scan(&["--cluster-cidr", "10.244.0.0/16", path.to_str().unwrap()]);
    let split = destination(&doc, "split.example.com");
    assert_eq!(split["ips"][0], "198.51.100.10");
    assert_eq!(on_port(split, 443), Some(1));
    assert_eq!(source(split, 0)["ip"], "10.244.1.5");
    // The lookups over TCP, and the connection their answer names.
    for name in ["a.example.net", "b.example.net", "c.example.net"] {
        assert!(names(&doc).contains(name), "{name}");
    }
    let named = dest(&doc, "a.example.net");
    assert_eq!(named["verdicts"][0], "unanswered");
    assert_eq!(
        on_port(named, 443),
        Some(1),
        "a retransmitted SYN is one attempt"
    );
    assert_eq!(destination(&doc, "203.0.113.5")["verdicts"][0], "refused");
    let v6 = destination(&doc, "v6.example.org");
    assert_eq!(v6["ips"][0], "2001:db8::10");
    let ntp = destination(&doc, "203.0.113.9");
    assert_eq!(
        (ntp["ports"][0]["protocol"].as_str(), ntp["count"].as_u64()),
        (Some("udp"), Some(1))
    );
    assert_eq!(stat(&doc, "malformed"), 0);
    // Also the resolver on 198.51.100.53:53 itself: 8 destinations in all (a.example.net's
    // lookup and connection are one).
    assert_eq!(doc["destinations"].as_array().unwrap().len(), 8, "{doc}");
}

#[test]
fn a_truncated_capture_keeps_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcap");
    write_pcap(&path, &fixture_frames());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
    assert!(is_capture(&bytes));
    let doc = scan(&["--cluster-cidr", "10.244.0.0/16", path.to_str().unwrap()]);
    assert!(names(&doc).contains("split.example.com"));
    assert_eq!(stat(&doc, "malformed"), 1, "the cut is counted");
    // Garbage after a valid header, and a file that is no capture at all.
    let junk = dir.path().join("junk.pcap");
    let mut b = bytes[..24].to_vec();
    b.extend_from_slice(&[0xff; 64]);
    std::fs::write(&junk, b).unwrap();
    let doc = scan(&[junk.to_str().unwrap()]);
    assert_eq!(stat(&doc, "malformed"), 1);
}

#[test]
fn every_sample_capture_reads_and_its_names_are_found() {
    let dir = support::repo("../shared/samples/pcap");
    if !dir.is_dir() {
        support::skipped(&format!("{} does not exist", dir.display()));
        return;
    }
    let mut all_names = std::collections::BTreeSet::new();
    let mut all_ips = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng")
        {
            continue;
        }
        // Every one, the malformed ones included, reads to an end without failing.
        let doc = scan(&[path.to_str().unwrap()]);
        all_names.extend(names(&doc));
        all_ips.extend(ips(&doc));
    }
    for name in [
        "www.google.com",   // SNI (SSL-ClientHello1, and over IPv6 in tls1_3)
        "secure.adnxs.com", // SNI with GREASE values
        "www.tcpdump.org",  // DNS answers over UDP and TCP
        "auth.wi-fi.ru",    // Host of a request cut short
        "example.com",      // SNI in a pcapng with large blocks
    ] {
        assert!(all_names.contains(name), "{name} in {all_names:?}");
    }
    // The SLL2 flow (`tcpdump -i any`), met in the middle.
    assert!(all_ips.contains("116.63.66.108"), "{all_ips:?}");
    assert!(all_ips.is_superset(&set(&["2607:f8b0:4005:80a::2004"])));
}

/// A capture of headers only (`tcpdump -s 64`, as capture appliances and careful operators
/// take them) cuts a SYN inside its TCP options: its connections are still reported.
#[test]
fn a_header_only_tcpdump_capture_reports_its_connections() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let tcpdump = Command::new("tcpdump").arg("--version").output().ok();
    if support::service(tcpdump, "no tcpdump (Debian package tcpdump)").is_none() {
        return;
    }
    let Some((ns, va, _)) = Namespaces::joined("eh") else {
        return;
    };
    let mut server = serve(
        &ns.b,
        "import socket\nls=[]\nfor p in (443, 80, 8443):\n  s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('198.51.100.2', p)); s.listen(); ls.append(s)\nprint('ready', flush=True)\nfor s in ls:\n  c,_=s.accept(); c.recv(4096); c.close()",
    );
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("snap64.pcap");
    let mut capture = Command::new("ip")
        .args([
            "netns", "exec", &ns.a, "tcpdump", "-i", &va, "-s", "64", "-U", "-w",
        ])
        .arg(&pcap)
        .arg("tcp")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::fs::metadata(&pcap).map_or(0, |m| m.len()) < 24 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "tcpdump did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // tcpdump opens the file before its capture is live.
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new("ip")
        .args(["netns", "exec", &ns.a, "python3", "-c"])
        .arg("import socket\nfor p in (443, 80, 8443):\n  s=socket.create_connection(('198.51.100.2', p), timeout=10); s.sendall(b'x' * 300); s.close()")
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &capture.id().to_string()])
        .status();
    capture.wait().unwrap();
    assert!(
        server.wait().unwrap().success(),
        "the server took three connections"
    );
    let doc = scan(&[pcap.to_str().unwrap()]);
    let d = dest(&doc, "198.51.100.2");
    for port in [443, 80, 8443] {
        assert_eq!(on_port(d, port), Some(1), "{doc}");
    }
    assert_eq!(d["ports"][0]["protocol"], "tcp");
    assert_eq!(source(d, 0)["ip"], "198.51.100.1");
}

#[cfg(feature = "live")]
#[test]
fn live_capture_across_a_veth_pair() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let Some((ns, va, vb)) = Namespaces::joined("es") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("live.toml");
    std::fs::write(
        &config,
        format!("[[sources]]\ntype = \"pcap\"\ninterface = \"{va}\"\nfilter = \"not arp\"\n"),
    )
    .unwrap();
    let log = dir.path().join("run.log");
    let mut run = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.a,
            env!("CARGO_BIN_EXE_egress-scout"),
            "run",
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(&log).unwrap().contains("capturing") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // B sends a frame whose IPv4 header is cut short (counted, not fatal), answers a DNS query
    // nobody sent (the capture only needs the answer) and serves TLS.
    let answer = dns_response("dns.example.org.", Ipv4Addr::new(198, 51, 100, 2));
    let mut server = serve(
        &ns.b,
        &format!(
            "import socket\nr=socket.socket(socket.AF_PACKET, socket.SOCK_RAW); r.bind(('{vb}', 0))\nr.send(b'\\xff' * 6 + b'\\x02' + bytes(5) + b'\\x08\\x00' + b'\\x42' + bytes(30))\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('198.51.100.2', 443)); s.listen()\nu=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('198.51.100.2', 53))\nu.sendto(bytes.fromhex('{}'), ('198.51.100.1', 40000))\nprint('ready', flush=True)\nc,_=s.accept(); c.recv(65536); c.close()",
            support::netns::hex(&answer)
        ),
    );
    let hello = client_hello("live.example.com", 1800, 16384);
    let status = Command::new("ip")
        .args(["netns", "exec", &ns.a, "python3", "-c"])
        .arg(format!(
            "import socket\ns=socket.create_connection(('198.51.100.2', 443), timeout=10)\ns.sendall(bytes.fromhex('{}'))\ns.close()",
            support::netns::hex(&hello)
        ))
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        server.wait().unwrap().success(),
        "the TLS server got the hello"
    );
    let stdout = run.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str::<Value>(&line).unwrap());
        }
    });
    let mut found = std::collections::BTreeSet::new();
    while !(found.contains("live.example.com") && found.contains("dns.example.org")) {
        let v = support::expect(&rx, "a new destination", |v| v["update"] == "new");
        found.extend(
            v["names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(String::from)),
        );
    }
    support::terminate(&run);
    assert!(run.wait().unwrap().success());
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("live capture lost packets") && log.contains("undecodable_packet"),
        "{log}"
    );
}
