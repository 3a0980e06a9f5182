//! From a link-layer frame to the IP packet inside: Ethernet (802.1Q / 802.1ad tags), Linux
//! SLL and SLL2, NULL/loopback, RAW, IPv4, IPv6 and NFLOG. Hand-written: each is a fixed header
//! or a short tag walk, and this runs for every packet.

const ETHERNET: i32 = 1;
const NULL: i32 = 0;
const RAW: i32 = 101;
const LOOP: i32 = 108;
const SLL: i32 = 113;
const IPV4: i32 = 228;
const IPV6: i32 = 229;
const NFLOG: i32 = 239;
const SLL2: i32 = 276;

/// The IP packet of a frame, or why there is none.
pub fn ip_packet(linktype: i32, frame: &[u8]) -> Result<&[u8], &'static str> {
    match linktype {
        ETHERNET => ethernet(frame),
        SLL => ether_typed(u16_at(frame, 14), frame.get(16..)),
        SLL2 => ether_typed(u16_at(frame, 0), frame.get(20..)),
        NULL | LOOP => {
            let family = frame.get(..4).ok_or("truncated")?;
            let le = u32::from_le_bytes(family.try_into().unwrap_or_default());
            let be = u32::from_be_bytes(family.try_into().unwrap_or_default());
            // AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 by operating system.
            match (le, be) {
                (2, _) | (_, 2) | (10 | 24 | 28 | 30, _) | (_, 10 | 24 | 28 | 30) => {
                    ip(&frame[4..])
                }
                _ => Err("not_ip"),
            }
        }
        RAW | IPV4 | IPV6 => ip(frame),
        NFLOG => nflog(frame),
        _ => Err("unsupported_link"),
    }
}

/// An Ethernet frame: VLAN tags skipped.
pub fn ethernet(frame: &[u8]) -> Result<&[u8], &'static str> {
    let mut offset = 12;
    loop {
        match u16_at(frame, offset) {
            Some(0x8100 | 0x88a8 | 0x9100) => offset += 4,
            kind => return ether_typed(kind, frame.get(offset + 2..)),
        }
    }
}

fn ether_typed(kind: Option<u16>, payload: Option<&[u8]>) -> Result<&[u8], &'static str> {
    let payload = payload.ok_or("truncated")?;
    match kind {
        Some(0x0800 | 0x86dd) => ip(payload),
        Some(_) => Err("not_ip"),
        None => Err("truncated"),
    }
}

fn ip(packet: &[u8]) -> Result<&[u8], &'static str> {
    match packet.first().map(|b| b >> 4) {
        Some(4 | 6) => Ok(packet),
        Some(_) => Err("not_ip"),
        None => Err("truncated"),
    }
}

/// NFLOG: a 4-byte header, then TLVs (length and type little-endian, padded to 4 bytes);
/// type 9 holds the packet.
fn nflog(frame: &[u8]) -> Result<&[u8], &'static str> {
    let mut rest = frame.get(4..).ok_or("truncated")?;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let kind = u16::from_le_bytes([rest[2], rest[3]]);
        if len < 4 || len > rest.len() {
            return Err("truncated");
        }
        if kind == 9 {
            return ip(&rest[4..len]);
        }
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Err("not_ip")
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_down_to_ip() {
        let ipv4 = [0x45u8, 0, 0, 20];
        let mut eth = vec![0u8; 12];
        eth.extend([0x81, 0x00, 0, 1, 0x88, 0xa8, 0, 2, 0x08, 0x00]);
        eth.extend(ipv4);
        assert_eq!(ip_packet(ETHERNET, &eth), Ok(&ipv4[..]));
        let mut sll2 = vec![0x86, 0xdd];
        sll2.extend([0u8; 18]);
        sll2.extend([0x60, 0, 0, 0]);
        assert_eq!(ip_packet(SLL2, &sll2).unwrap()[0], 0x60);
        assert_eq!(ip_packet(NULL, &[2, 0, 0, 0, 0x45, 0]).unwrap()[0], 0x45);
        assert_eq!(ip_packet(NULL, &[0, 0, 0, 30, 0x60]).unwrap()[0], 0x60);
        let mut nf = vec![2u8, 0, 0, 0];
        nf.extend([8, 0, 1, 0, 0, 0, 0, 0]);
        nf.extend([8, 0, 9, 0, 0x45, 0, 0, 0]);
        assert_eq!(ip_packet(NFLOG, &nf).unwrap(), &[0x45, 0, 0, 0]);
        for junk in [&[][..], &[0x08], &[0xff; 13]] {
            assert!(ip_packet(ETHERNET, junk).is_err());
            assert!(ip_packet(NFLOG, junk).is_err());
            assert!(ip_packet(SLL2, junk).is_err());
        }
        assert_eq!(ip_packet(147, &[1, 2, 3]), Err("unsupported_link"));
    }
}
