//! The flow tracker: packets in, findings out as typed events (see [`super::finding`]).
//! A TCP connection starts with a SYN without ACK (retransmissions counted once); it is
//! reported once its client's first bytes say what it is (a TLS ClientHello's server name, an
//! HTTP request's `Host`, or neither), or when it ends or goes idle (then noted refused or
//! unanswered when nothing got through). A UDP flow starts with the first datagram of its
//! 5-tuple. DNS responses over UDP and TCP become answers. Tables are bounded: idle flows
//! expire, and a full table reports its oldest flows early.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use etherparse::{IpNumber, LaxNetSlice, LaxSlicedPacket, TransportSlice};

use super::finding::{Finding, State};
use super::transport::{self, Transport};
use super::{dns, http, link, tls};
use crate::event::Protocol;

/// Client bytes kept per connection to find its name: a ClientHello's first record is at
/// most 16 KiB plus its header.
const MAX_FIRST_BYTES: usize = 16 * 1024 + 5;
/// DNS-over-TCP bytes kept per server stream.
const MAX_DNS_TCP: usize = 64 * 1024;
const SECOND: i64 = 1_000_000_000;
/// A connection without client bytes for this long is reported as it stands.
const TCP_IDLE: i64 = 30 * SECOND;
/// A closed connection is forgotten once its teardown has been quiet this long.
const CLOSED_LINGER: i64 = 5 * SECOND;
/// A UDP flow idle this long is forgotten; its next datagram starts a new flow.
const UDP_IDLE: i64 = 120 * SECOND;
/// Names whose last answer is remembered; the memory is cleared when full.
const MAX_SENT_ANSWERS: usize = 65_536;
/// Encapsulations followed at most (VXLAN in Geneve in ...).
const MAX_DEPTH: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    client: SocketAddr,
    server: SocketAddr,
}

/// Both ends of a flow in a fixed order (by port, then address), so either direction finds
/// it with one lookup. Packed into words built in registers: each address as IPv6 (IPv4
/// mapped), the two ports and the two families in one word. 40 bytes, so a table entry with
/// its flow is one cache line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pair {
    /// The addresses' high and low halves (`u128` would align the pair to 16 bytes).
    ips: [u64; 4],
    ports: u64,
}

/// One end: port, address as IPv6 bits, whether it is IPv6 (an IPv4-mapped IPv6 address
/// stays distinct from the IPv4 address).
type End = (u16, u128, bool);

fn end(addr: SocketAddr) -> End {
    match addr.ip() {
        IpAddr::V4(v4) => (addr.port(), v4.to_ipv6_mapped().to_bits(), false),
        IpAddr::V6(v6) => (addr.port(), v6.to_bits(), true),
    }
}

fn socket_addr((port, bits, v6): End) -> SocketAddr {
    let ip = Ipv6Addr::from_bits(bits);
    let ip = match ip.to_ipv4_mapped() {
        Some(v4) if !v6 => IpAddr::V4(v4),
        _ => IpAddr::V6(ip),
    };
    SocketAddr::new(ip, port)
}

impl Pair {
    /// The pair, and whether `a` is its first end.
    fn of(a: SocketAddr, b: SocketAddr) -> (Pair, bool) {
        let (a, b) = (end(a), end(b));
        let a_first = a <= b;
        let (x, y) = if a_first { (a, b) } else { (b, a) };
        let pair = Pair {
            ips: [
                (x.1 >> 64) as u64,
                x.1 as u64,
                (y.1 >> 64) as u64,
                y.1 as u64,
            ],
            ports: u64::from(x.0) << 32
                | u64::from(y.0) << 16
                | u64::from(x.2) << 1
                | u64::from(y.2),
        };
        (pair, a_first)
    }

    fn ends(self) -> (SocketAddr, SocketAddr) {
        let ip = |hi: u64, lo: u64| u128::from(hi) << 64 | u128::from(lo);
        let [a_hi, a_lo, b_hi, b_lo] = self.ips;
        let ports = self.ports;
        (
            socket_addr(((ports >> 32) as u16, ip(a_hi, a_lo), ports & 2 != 0)),
            socket_addr(((ports >> 16) as u16, ip(b_hi, b_lo), ports & 1 != 0)),
        )
    }
}

impl std::hash::Hash for Pair {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for word in self.ips {
            state.write_u64(word);
        }
        state.write_u64(self.ports);
    }
}

/// The fields of a TCP segment the tracker reads.
struct Segment<'a> {
    syn: bool,
    ack: bool,
    rst: bool,
    fin: bool,
    payload: &'a [u8],
}

/// Maps keyed by addresses: foldhash, as SipHash was the tracker's largest cost.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

struct Tcp {
    /// Whether the client is the pair's first end.
    client_first: bool,
    start: i64,
    last: i64,
    answered: bool,
    refused: bool,
    /// Reported already; kept until it ends so its later packets are not a new connection.
    reported: bool,
    /// A FIN or RST was seen: the teardown's last packets still belong to it.
    closed: bool,
    /// The client sent bytes (kept in the tracker's `partial` while they may still name
    /// the connection: the table's entries stay one cache line).
    spoke: bool,
}

impl Tcp {
    fn key(&self, pair: Pair) -> Key {
        let (first, second) = pair.ends();
        let (client, server) = if self.client_first {
            (first, second)
        } else {
            (second, first)
        };
        Key { client, server }
    }
}

/// One segment of a tracked connection.
fn advance(
    flow: &mut Tcp,
    partial: &mut Map<Pair, Vec<u8>>,
    pair: Pair,
    from_client: bool,
    time: i64,
    seg: &Segment<'_>,
    out: &mut Vec<Finding>,
) {
    flow.last = time;
    if !from_client {
        if seg.syn && seg.ack {
            flow.answered = true;
        } else if seg.rst && !flow.answered {
            flow.refused = true;
        }
    }
    if from_client && !seg.payload.is_empty() && !flow.reported {
        // Most first segments hold the whole hello or request: read them where they are.
        let found = if flow.spoke {
            let bytes = partial.entry(pair).or_default();
            let room = MAX_FIRST_BYTES.saturating_sub(bytes.len());
            bytes.extend_from_slice(&seg.payload[..seg.payload.len().min(room)]);
            name_in(bytes)
        } else {
            flow.spoke = true;
            let found = name_in(seg.payload);
            if found.is_none() {
                let kept = seg.payload.len().min(MAX_FIRST_BYTES);
                partial.insert(pair, seg.payload[..kept].to_vec());
            }
            found
        };
        if let Some(name) = found {
            flow.reported = true;
            partial.remove(&pair);
            emit_connection(out, flow.key(pair), flow, name);
        }
    }
    if (seg.rst || seg.fin) && !flow.closed {
        flow.closed = true;
        if !flow.reported {
            flow.reported = true;
            partial.remove(&pair);
            emit_connection(out, flow.key(pair), flow, None);
        }
    }
}

/// Whether a client's first bytes open TLS or an HTTP request.
fn opens_stream(payload: &[u8]) -> bool {
    payload.starts_with(&[0x16, 0x03])
        || matches!(
            http::host(payload),
            http::Request::Host(_) | http::Request::Partial
        )
}

/// The name in a client's first bytes: `Some(Some(name))`, `Some(None)` when they cannot
/// hold one, `None` while more bytes may still tell.
fn name_in(first_bytes: &[u8]) -> Option<Option<String>> {
    let full = first_bytes.len() >= MAX_FIRST_BYTES;
    match tls::server_name(first_bytes) {
        tls::Hello::Sni(name) => Some(name),
        tls::Hello::Need(n) if n <= MAX_FIRST_BYTES && !full => None,
        tls::Hello::Need(_) => Some(None),
        tls::Hello::NotTls => match http::host(first_bytes) {
            http::Request::Host(h) => Some(h.map(str::to_owned)),
            http::Request::Partial if !full => None,
            _ => Some(None),
        },
    }
}

/// Packets that gave nothing, by reason, for the source's log and counters.
#[derive(Debug, Default)]
pub struct Skipped {
    pub not_ip: u64,
    pub undecodable: u64,
    pub unsupported_link: u64,
}

pub struct Tracker {
    tcp: Map<Pair, Tcp>,
    /// First bytes of connections whose name may still come (a hello over segments).
    partial: Map<Pair, Vec<u8>>,
    udp: Map<Pair, i64>,
    /// The DNS answers passed on lately, by name: repeats are not passed on again.
    sent_answers: Map<String, (Vec<IpAddr>, i64)>,
    dns_tcp: Map<Key, Vec<u8>>,
    max_flows: usize,
    /// Time of the latest packet: what idle is measured against.
    now: i64,
    last_sweep: i64,
    pub skipped: Skipped,
}

impl Tracker {
    pub fn new(max_flows: usize) -> Self {
        Tracker {
            tcp: Map::default(),
            partial: Map::default(),
            udp: Map::default(),
            sent_answers: Map::default(),
            dns_tcp: Map::default(),
            max_flows: max_flows.max(1),
            now: 0,
            last_sweep: 0,
            skipped: Skipped::default(),
        }
    }

    /// One captured frame; findings are appended to `out`.
    pub fn frame(&mut self, time_ns: i128, linktype: i32, frame: &[u8], out: &mut Vec<Finding>) {
        let time_ns = nanos(time_ns);
        self.now = self.now.max(time_ns);
        match link::ip_packet(linktype, frame) {
            Ok(ip) => self.ip(time_ns, ip, out, 0),
            Err("unsupported_link") => self.skipped.unsupported_link += 1,
            Err("not_ip") => self.skipped.not_ip += 1,
            Err(_) => self.skipped.undecodable += 1,
        }
        if self.now - self.last_sweep > SECOND {
            self.last_sweep = self.now;
            self.expire(out, false);
        }
    }

    /// Live capture: idle flows expire by the wall clock even when no packet arrives.
    pub fn tick(&mut self, now_ns: i128, out: &mut Vec<Finding>) {
        self.now = self.now.max(nanos(now_ns));
        self.expire(out, false);
    }

    /// Reports every connection still waiting for its first bytes (end of the capture).
    pub fn finish(&mut self, out: &mut Vec<Finding>) {
        self.expire(out, true);
    }

    fn ip(&mut self, time: i64, packet: &[u8], out: &mut Vec<Finding>, depth: u8) {
        match transport::transport(packet) {
            Some(Transport::Tcp {
                src,
                dst,
                flags,
                payload,
            }) => {
                let segment = Segment {
                    syn: flags & transport::SYN != 0,
                    ack: flags & transport::ACK != 0,
                    rst: flags & transport::RST != 0,
                    fin: flags & transport::FIN != 0,
                    payload,
                };
                return self.tcp_segment(time, src, dst, segment, out);
            }
            Some(Transport::Udp { src, dst, payload }) => {
                let key = Key {
                    client: src,
                    server: dst,
                };
                return self.udp_datagram(time, key, payload, out, depth);
            }
            // Fragments, extension headers, IP in IP: the thorough path.
            None => {}
        }
        let Ok(p) = LaxSlicedPacket::from_ip(packet) else {
            self.skipped.undecodable += 1;
            return;
        };
        let (src, dst): (IpAddr, IpAddr) = match &p.net {
            Some(LaxNetSlice::Ipv4(v4)) => (
                v4.header().source_addr().into(),
                v4.header().destination_addr().into(),
            ),
            Some(LaxNetSlice::Ipv6(v6)) => (
                v6.header().source_addr().into(),
                v6.header().destination_addr().into(),
            ),
            _ => {
                self.skipped.undecodable += 1;
                return;
            }
        };
        match &p.transport {
            Some(TransportSlice::Tcp(t)) => {
                let segment = Segment {
                    syn: t.syn(),
                    ack: t.ack(),
                    rst: t.rst(),
                    fin: t.fin(),
                    payload: t.payload(),
                };
                let src = SocketAddr::new(src, t.source_port());
                let dst = SocketAddr::new(dst, t.destination_port());
                self.tcp_segment(time, src, dst, segment, out);
            }
            Some(TransportSlice::Udp(u)) => {
                let key = Key {
                    client: SocketAddr::new(src, u.source_port()),
                    server: SocketAddr::new(dst, u.destination_port()),
                };
                self.udp_datagram(time, key, u.payload(), out, depth);
            }
            _ => {
                // IP in IP (6in4, 4in4): the inner packet is the one that says something.
                if let Some(payload) = p.net.as_ref().and_then(|n| n.ip_payload_ref())
                    && matches!(payload.ip_number, IpNumber::IPV4 | IpNumber::IPV6)
                    && depth < MAX_DEPTH
                {
                    self.ip(time, payload.payload, out, depth + 1);
                }
            }
        }
    }

    fn tcp_segment(
        &mut self,
        time: i64,
        src: SocketAddr,
        dst: SocketAddr,
        seg: Segment<'_>,
        out: &mut Vec<Finding>,
    ) {
        if src.port() == 53 && !seg.payload.is_empty() {
            let key = Key {
                client: src,
                server: dst,
            };
            self.dns_over_tcp(time, key, seg.payload, out);
        }
        let (pair, src_first) = Pair::of(src, dst);
        if let Some(flow) = self.tcp.get_mut(&pair) {
            // A new SYN on the 5-tuple of a closed connection (port reuse) is a new one.
            if !(seg.syn && !seg.ack && flow.closed) {
                let from_client = src_first == flow.client_first;
                advance(flow, &mut self.partial, pair, from_client, time, &seg, out);
                return;
            }
            self.forget(pair);
        }
        if seg.rst || seg.fin {
            return;
        }
        // A new connection: from its SYN, or met in the middle (the capture started later,
        // or missed the SYN): then its client is the side that speaks first in TLS or HTTP,
        // else the one on the higher (ephemeral) port.
        let (src_is_client, answered) = match (seg.syn, seg.ack) {
            (true, false) => (true, false),
            (true, true) => (false, true),
            _ => (opens_stream(seg.payload) || src.port() > dst.port(), true),
        };
        self.make_room(out);
        let flow = self.tcp.entry(pair).or_insert(Tcp {
            client_first: src_first == src_is_client,
            start: time,
            last: time,
            answered,
            refused: false,
            reported: false,
            closed: false,
            spoke: false,
        });
        advance(
            flow,
            &mut self.partial,
            pair,
            src_is_client,
            time,
            &seg,
            out,
        );
    }

    /// DNS over TCP from a server: 2-byte length-prefixed messages, several per segment or
    /// one over several.
    fn dns_over_tcp(&mut self, time: i64, key: Key, payload: &[u8], out: &mut Vec<Finding>) {
        let buf = self.dns_tcp.entry(key).or_default();
        if buf.len() + payload.len() > MAX_DNS_TCP {
            buf.clear();
            return;
        }
        buf.extend_from_slice(payload);
        let mut at = 0;
        while let Some(len) = buf
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        {
            let Some(message) = buf.get(at + 2..at + 2 + len) else {
                break;
            };
            if let Some(a) = dns::answer(message) {
                emit_answer(out, &mut self.sent_answers, time, key.server.ip(), a);
            }
            at += 2 + len;
        }
        buf.drain(..at);
        if buf.is_empty() {
            self.dns_tcp.remove(&key);
        }
    }

    fn udp_datagram(
        &mut self,
        time: i64,
        key: Key,
        payload: &[u8],
        out: &mut Vec<Finding>,
        depth: u8,
    ) {
        // Overlay networks: the inner frame is the pod's traffic.
        if depth < MAX_DEPTH {
            match key.server.port() {
                4789 | 8472 if payload.len() > 8 => {
                    if let Ok(ip) = link::ethernet(&payload[8..]) {
                        return self.ip(time, ip, out, depth + 1);
                    }
                }
                6081 if payload.len() >= 8 => {
                    let options = usize::from(payload[0] & 0x3f) * 4;
                    let protocol = u16::from_be_bytes([payload[2], payload[3]]);
                    let inner = payload.get(8 + options..).unwrap_or_default();
                    let ip = match protocol {
                        0x6558 => link::ethernet(inner),
                        0x0800 | 0x86dd => Ok(inner),
                        _ => Err("not_ip"),
                    };
                    if let Ok(ip) = ip {
                        return self.ip(time, ip, out, depth + 1);
                    }
                }
                _ => {}
            }
        }
        if key.client.port() == 53 {
            if let Some(a) = dns::answer(payload) {
                emit_answer(out, &mut self.sent_answers, time, key.server.ip(), a);
            }
            return;
        }
        let (pair, _) = Pair::of(key.client, key.server);
        if let Some(last) = self.udp.get_mut(&pair) {
            *last = time;
            return;
        }
        self.make_room(out);
        self.udp.insert(pair, time);
        out.push(Finding::Connection {
            time_ns: time,
            protocol: Protocol::Udp,
            src: key.client.ip(),
            sport: key.client.port(),
            dst: key.server.ip(),
            dport: key.server.port(),
            name: None,
            state: None,
        });
    }

    /// Removes a connection and its kept bytes.
    fn forget(&mut self, pair: Pair) -> Option<Tcp> {
        self.partial.remove(&pair);
        self.tcp.remove(&pair)
    }

    /// Keeps the tables within `max_flows`: idle flows go first, then the oldest.
    fn make_room(&mut self, out: &mut Vec<Finding>) {
        if self.tcp.len() + self.udp.len() < self.max_flows {
            return;
        }
        self.expire(out, false);
        if self.tcp.len() + self.udp.len() >= self.max_flows {
            self.udp.clear();
            let mut oldest: Vec<(Pair, i64)> =
                self.tcp.iter().map(|(p, f)| (*p, f.start)).collect();
            // The older half, in no particular order: a selection, not a sort.
            let half = (self.max_flows / 2 + 1).min(oldest.len());
            if half < oldest.len() {
                oldest.select_nth_unstable_by_key(half, |&(_, t)| t);
            }
            for &(pair, _) in &oldest[..half] {
                if let Some(flow) = self.forget(pair)
                    && !flow.reported
                {
                    emit_connection(out, flow.key(pair), &flow, None);
                }
            }
        }
    }

    fn expire(&mut self, out: &mut Vec<Finding>, all: bool) {
        let now = self.now;
        let idle: Vec<Pair> = self
            .tcp
            .iter()
            .filter(|(_, f)| all || now - f.last > if f.closed { CLOSED_LINGER } else { TCP_IDLE })
            .map(|(k, _)| *k)
            .collect();
        for pair in idle {
            if let Some(flow) = self.forget(pair)
                && !flow.reported
            {
                emit_connection(out, flow.key(pair), &flow, None);
            }
        }
        self.udp.retain(|_, last| now - *last <= UDP_IDLE);
    }
}

/// Capture times as i64 nanoseconds (until 2262), saturating.
fn nanos(t: i128) -> i64 {
    i64::try_from(t).unwrap_or(if t < 0 { i64::MIN } else { i64::MAX })
}

fn emit_connection(out: &mut Vec<Finding>, key: Key, flow: &Tcp, name: Option<String>) {
    let state = match (flow.answered, flow.refused) {
        (_, true) => Some(State::Refused),
        (false, false) if !flow.spoke => Some(State::Unanswered),
        _ => None,
    };
    out.push(Finding::Connection {
        time_ns: flow.start,
        protocol: Protocol::Tcp,
        src: key.client.ip(),
        sport: key.client.port(),
        dst: key.server.ip(),
        dport: key.server.port(),
        name,
        state,
    });
}

/// A DNS response to `client`: its lookup, then the addresses it got, unless the same
/// addresses of the name went out less than half their TTL ago (the name cache still holds
/// them; a busy name is answered thousands of times a minute).
fn emit_answer(
    out: &mut Vec<Finding>,
    sent: &mut Map<String, (Vec<IpAddr>, i64)>,
    time: i64,
    client: IpAddr,
    a: dns::Answer,
) {
    out.push(Finding::Lookup {
        time_ns: time,
        client,
        name: a.name.clone(),
    });
    let fresh_for = i64::from(a.ttl / 2) * SECOND;
    if let Some((ips, at)) = sent.get(&a.name)
        && *ips == a.ips
        && time.saturating_sub(*at) < fresh_for
    {
        return;
    }
    if sent.len() >= MAX_SENT_ANSWERS {
        sent.clear();
    }
    sent.insert(a.name.clone(), (a.ips.clone(), time));
    out.push(Finding::DnsAnswer {
        time_ns: time,
        name: a.name,
        ips: a.ips,
        ttl: a.ttl,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_the_same_both_ways_and_gives_back_its_ends() {
        let addrs: [SocketAddr; 4] = [
            "10.244.0.5:40000".parse().unwrap(),
            "198.51.100.7:443".parse().unwrap(),
            "[2001:db8::1]:443".parse().unwrap(),
            "[::ffff:198.51.100.7]:443".parse().unwrap(),
        ];
        for a in addrs {
            for b in addrs.into_iter().filter(|b| *b != a) {
                let (ab, a_first) = Pair::of(a, b);
                let (ba, b_first) = Pair::of(b, a);
                assert_eq!(ab, ba);
                assert_ne!(a_first, b_first);
                let ends = if a_first { (a, b) } else { (b, a) };
                assert_eq!(ab.ends(), ends);
            }
        }
        // An IPv4-mapped IPv6 address is not the IPv4 address.
        assert_ne!(
            Pair::of(addrs[0], addrs[1]).0,
            Pair::of(addrs[0], addrs[3]).0
        );
    }

    #[test]
    fn repeated_answers_are_passed_on_once_per_half_ttl() {
        let answer = |ips: &[&str]| dns::Answer {
            name: "api.example.com".into(),
            ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
            ttl: 60,
        };
        let client: IpAddr = "10.244.0.5".parse().unwrap();
        let (mut out, mut sent) = (Vec::new(), Map::default());
        let mut answers_at = |time: i64, ips: &[&str]| {
            out.clear();
            emit_answer(&mut out, &mut sent, time, client, answer(ips));
            let lookups = out
                .iter()
                .filter(|f| matches!(f, Finding::Lookup { .. }))
                .count();
            assert_eq!(lookups, 1, "every lookup counts");
            out.iter()
                .filter(|f| matches!(f, Finding::DnsAnswer { .. }))
                .count()
        };
        assert_eq!(answers_at(0, &["198.51.100.1"]), 1);
        assert_eq!(answers_at(29 * SECOND, &["198.51.100.1"]), 0);
        assert_eq!(
            answers_at(30 * SECOND, &["198.51.100.1"]),
            1,
            "half the TTL"
        );
        assert_eq!(
            answers_at(31 * SECOND, &["198.51.100.2"]),
            1,
            "new addresses"
        );
    }
}
