//! One socket call as the BPF programs write it to the ring (`struct event` in
//! connect.bpf.c), read without unsafe code; a record of another size is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::event::Protocol;

/// `sizeof(struct event)`.
const SIZE: usize = 56;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketCall {
    /// CLOCK_MONOTONIC nanoseconds.
    pub monotonic_ns: u64,
    pub cgroup_id: u64,
    pub pid: u32,
    pub dst: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub command: String,
}

/// Decodes one ring record; none when it is not an event of this layout, or a protocol that
/// is neither TCP nor UDP (ICMP sockets, SCTP).
pub fn decode(raw: &[u8]) -> Option<SocketCall> {
    if raw.len() != SIZE {
        return None;
    }
    let u64_at = |at: usize| u64::from_ne_bytes(raw[at..at + 8].try_into().unwrap());
    let addr: [u8; 16] = raw[24..40].try_into().unwrap();
    let dst = match raw[22] {
        4 => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
        6 => IpAddr::V6(Ipv6Addr::from(addr)),
        _ => return None,
    };
    let protocol = match raw[23] {
        IPPROTO_TCP => Protocol::Tcp,
        IPPROTO_UDP => Protocol::Udp,
        _ => return None,
    };
    let comm = &raw[40..56];
    let comm = &comm[..memchr::memchr(0, comm).unwrap_or(comm.len())];
    Some(SocketCall {
        monotonic_ns: u64_at(0),
        cgroup_id: u64_at(8),
        pid: u32::from_ne_bytes(raw[16..20].try_into().unwrap()),
        port: u16::from_ne_bytes(raw[20..22].try_into().unwrap()),
        dst,
        protocol,
        command: String::from_utf8_lossy(comm).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(family: u8, protocol: u8, addr: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&5u64.to_ne_bytes());
        r.extend_from_slice(&77u64.to_ne_bytes());
        r.extend_from_slice(&4242u32.to_ne_bytes());
        r.extend_from_slice(&443u16.to_ne_bytes());
        r.extend_from_slice(&[family, protocol]);
        let mut a = [0u8; 16];
        a[..addr.len()].copy_from_slice(addr);
        r.extend_from_slice(&a);
        r.extend_from_slice(b"curl\0\0\0\0\0\0\0\0\0\0\0\0");
        r
    }

    #[test]
    fn decodes_both_families_and_refuses_the_rest() {
        let e = decode(&raw(4, 6, &[198, 51, 100, 7])).unwrap();
        assert_eq!(
            e,
            SocketCall {
                monotonic_ns: 5,
                cgroup_id: 77,
                pid: 4242,
                dst: "198.51.100.7".parse().unwrap(),
                port: 443,
                protocol: Protocol::Tcp,
                command: "curl".into(),
            }
        );
        let v6 = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets();
        assert_eq!(
            decode(&raw(6, 17, &v6)).unwrap().dst,
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(decode(&raw(6, 132, &v6)), None);
        assert_eq!(decode(&raw(9, 6, &v6)), None);
        assert_eq!(decode(&raw(4, 6, &v6)[..55]), None);
    }
}
