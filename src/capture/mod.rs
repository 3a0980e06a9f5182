//! Packet captures: pcap and pcapng files streamed through a bounded buffer, link layers down
//! to IP, and a flow tracker that turns packets into connection starts (TCP SYN, the first UDP
//! datagram of a flow) named by TLS SNI, HTTP `Host` or an earlier DNS answer. The tracker's
//! findings go to the stage as typed events (see [`finding`]), which it
//! judges like any other record.

mod dns;
pub mod finding;
pub mod flows;
mod http;
pub mod link;
pub mod reader;
mod tls;
mod transport;

/// The first bytes of a pcap (both byte orders, micro/nanosecond, modified) or pcapng file.
pub fn is_capture(head: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 7] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x34, 0xcd, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xcd, 0x34],
        [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    head.len() >= 4 && MAGICS.iter().any(|m| head[..4] == *m)
}
