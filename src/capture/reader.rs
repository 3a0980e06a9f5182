//! pcap (microsecond and nanosecond, both byte orders, the modified format; its 16-byte record
//! headers read here) and pcapng (several sections and interfaces, per-interface link types and
//! time resolutions; read with `pcap-parser`) through a bounded buffer, so files far larger than
//! memory stream. A truncated file ends the read with an error after every packet before it was
//! handed on.

use std::io::{self, Read};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError, PcapNGReader};

/// Bytes buffered; grown (up to [`MAX_BUFFER`]) only for a block that does not fit. Small
/// enough that packets are still in the core's cache when read after the copy.
const BUFFER: usize = 1 << 18;
const MAX_BUFFER: usize = 64 << 20;

/// One captured packet, borrowed from the reader's buffer.
pub struct Packet<'a> {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i128,
    /// The interface's link type (`LINKTYPE_*`).
    pub linktype: i32,
    /// The bytes as captured (possibly fewer than were on the wire).
    pub data: &'a [u8],
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("not a pcap or pcapng file")]
    NotACapture,
    #[error("cannot read: {0}")]
    Io(String),
    #[error("truncated after {packets} packets")]
    Truncated { packets: u64 },
    #[error("malformed after {packets} packets: {why}")]
    Malformed { packets: u64, why: &'static str },
}

/// Hands every packet of `input` to `each`, until it returns false; returns how many there
/// were.
pub fn read_all(
    mut input: impl Read + Send,
    each: impl FnMut(Packet<'_>) -> bool,
) -> Result<u64, CaptureError> {
    // One read as pcap-parser would make, topped up to a pcap file header.
    let mut head = vec![0; BUFFER];
    let mut len = read_some(&mut input, &mut head)?;
    while len > 0 && len < LEGACY_HEADER {
        match read_some(&mut input, &mut head[len..])? {
            0 => break,
            n => len += n,
        }
    }
    head.truncate(len);
    if len == 0 {
        return Ok(0);
    }
    match Legacy::of(&head) {
        Some(legacy) => legacy.read_all(head, input, each),
        None => read_pcapng(io::Cursor::new(head).chain(input), each),
    }
}

/// One `read`, retried when interrupted.
fn read_some(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, CaptureError> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r.map_err(|e| CaptureError::Io(e.to_string())),
        }
    }
}

const LEGACY_HEADER: usize = 24;

/// A pcap file's format, from its header. Read here rather than with pcap-parser: its
/// per-record parse behind a boxed iterator was a fifth of the whole `scan` of a capture;
/// this loop reads 16 bytes and hands the frame on (`cargo bench --bench parse -- capture`).
struct Legacy {
    big_endian: bool,
    nanos: bool,
    /// 16 bytes, 24 in the modified format (interface index, protocol, packet type).
    record_header: usize,
    linktype: i32,
}

impl Legacy {
    fn of(head: &[u8]) -> Option<Legacy> {
        let magic: [u8; 4] = head.get(..4)?.try_into().ok()?;
        let (big_endian, nanos, modified) = match u32::from_le_bytes(magic) {
            0xa1b2_c3d4 => (false, false, false),
            0xa1b2_3c4d => (false, true, false),
            0xa1b2_cd34 => (false, false, true),
            0xd4c3_b2a1 => (true, false, false),
            0x4d3c_b2a1 => (true, true, false),
            0x34cd_b2a1 => (true, false, true),
            _ => return None,
        };
        let network: [u8; 4] = head.get(20..24)?.try_into().ok()?;
        let network = if big_endian {
            u32::from_be_bytes(network)
        } else {
            u32::from_le_bytes(network)
        };
        Some(Legacy {
            big_endian,
            nanos,
            record_header: if modified { 24 } else { 16 },
            // The upper bits hold the FCS length, not the link type.
            linktype: (network & 0xffff) as i32,
        })
    }

    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    /// Reads the records after the header in `buf` (what was read so far) and then `input`.
    fn read_all(
        &self,
        mut buf: Vec<u8>,
        mut input: impl Read,
        mut each: impl FnMut(Packet<'_>) -> bool,
    ) -> Result<u64, CaptureError> {
        let rh = self.record_header;
        let frac_ns = if self.nanos { 1 } else { 1000 };
        let (mut start, mut end) = (LEGACY_HEADER, buf.len());
        buf.resize(buf.len().max(BUFFER), 0);
        let mut packets = 0u64;
        loop {
            // Every whole record in the buffer.
            let mut need = rh;
            while end - start >= rh {
                let h = &buf[start..start + rh];
                let caplen = self.u32_at(h, 8) as usize;
                if caplen > MAX_BUFFER - rh {
                    return Err(CaptureError::Malformed {
                        packets,
                        why: "a record larger than 64 MiB",
                    });
                }
                if end - start < rh + caplen {
                    need = rh + caplen;
                    break;
                }
                let time_ns = i128::from(self.u32_at(h, 0)) * 1_000_000_000
                    + i128::from(self.u32_at(h, 4)) * frac_ns;
                packets += 1;
                let data = &buf[start + rh..start + rh + caplen];
                if !each(Packet {
                    time_ns,
                    linktype: self.linktype,
                    data,
                }) {
                    return Ok(packets);
                }
                start += rh + caplen;
            }
            // The partial record to the front, then more; the buffer grows for a record
            // larger than it.
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
            if need > buf.len() {
                buf.resize(need, 0);
            }
            match read_some(&mut input, &mut buf[end..])? {
                0 if end == 0 => return Ok(packets),
                0 => return Err(CaptureError::Truncated { packets }),
                n => end += n,
            }
        }
    }
}

/// pcapng through pcap-parser: sections, interfaces and their time resolutions.
fn read_pcapng(
    input: impl Read + Send,
    mut each: impl FnMut(Packet<'_>) -> bool,
) -> Result<u64, CaptureError> {
    let mut reader = match PcapNGReader::new(BUFFER, input) {
        Ok(r) => r,
        Err(PcapError::ReadError) => return Err(CaptureError::Io("read failed".into())),
        Err(_) => return Err(CaptureError::NotACapture),
    };
    let mut packets = 0u64;
    // Per interface of the current section: its link type, resolution and offset.
    let mut interfaces: Vec<(i32, u64, i64)> = Vec::new();
    let mut last_time = 0i128;
    let mut capacity = BUFFER;
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                let packet = match &block {
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        interfaces.clear();
                        None
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let resolution = idb.ts_resolution().unwrap_or(1_000_000);
                        interfaces.push((idb.linktype.0, resolution, idb.ts_offset()));
                        None
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => interfaces
                        .get(epb.if_id as usize)
                        .map(|&(linktype, res, off)| {
                            let (secs, frac) = epb.decode_ts(off as u64, res);
                            let time = i128::from(secs) * 1_000_000_000
                                + i128::from(frac) * 1_000_000_000 / i128::from(res.max(1));
                            let len = (epb.caplen as usize).min(epb.data.len());
                            (time, linktype, &epb.data[..len])
                        }),
                    // Simple packet blocks carry no time: they get the previous packet's.
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => interfaces
                        .first()
                        .map(|&(linktype, _, _)| (last_time, linktype, spb.data)),
                    _ => None,
                };
                if let Some((time_ns, linktype, data)) = packet {
                    packets += 1;
                    last_time = time_ns;
                    if !each(Packet {
                        time_ns,
                        linktype,
                        data,
                    }) {
                        return Ok(packets);
                    }
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => return Ok(packets),
            Err(PcapError::Incomplete(_)) => {
                if reader.refill().is_err() {
                    return Err(CaptureError::Io("read failed".into()));
                }
            }
            Err(PcapError::UnexpectedEof) => return Err(CaptureError::Truncated { packets }),
            // A block larger than the buffer: grow it, within a bound.
            Err(PcapError::BufferTooSmall) if capacity < MAX_BUFFER => {
                capacity *= 4;
                if !reader.grow(capacity) {
                    return Err(CaptureError::Malformed {
                        packets,
                        why: "a block larger than the read buffer",
                    });
                }
                if reader.refill().is_err() {
                    return Err(CaptureError::Io("read failed".into()));
                }
            }
            Err(PcapError::BufferTooSmall) => {
                return Err(CaptureError::Malformed {
                    packets,
                    why: "a block larger than 64 MiB",
                });
            }
            Err(PcapError::ReadError) => return Err(CaptureError::Io("read failed".into())),
            Err(_) => {
                return Err(CaptureError::Malformed {
                    packets,
                    why: "invalid block",
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out a few bytes per read, so records and the file header span reads.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// A pcap with `magic` in the given byte order, link type 101 (raw IP), and one record per
    /// frame at second 1, fraction `i + 1`.
    fn pcap(magic: u32, big_endian: bool, record_extra: usize, frames: &[&[u8]]) -> Vec<u8> {
        let word = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = word(magic).to_vec();
        out.extend_from_slice(&[0, 2, 0, 4]);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&word(65535));
        out.extend_from_slice(&word(101));
        for (i, f) in frames.iter().enumerate() {
            for v in [1, i as u32 + 1, f.len() as u32, f.len() as u32] {
                out.extend_from_slice(&word(v));
            }
            out.extend(std::iter::repeat_n(0, record_extra));
            out.extend_from_slice(f);
        }
        out
    }

    /// Time, link type and bytes of one packet read.
    type Seen = (i128, i32, Vec<u8>);

    fn packets(input: &[u8]) -> (Result<u64, CaptureError>, Vec<Seen>) {
        let mut seen = Vec::new();
        let result = read_all(Trickle(input), |p| {
            seen.push((p.time_ns, p.linktype, p.data.to_vec()));
            true
        });
        (result, seen)
    }

    #[test]
    fn pcap_in_every_byte_order_precision_and_the_modified_format() {
        let frames: [&[u8]; 3] = [b"first", &[7; 300], b""];
        for (magic, big_endian, extra, frac_ns) in [
            (0xa1b2_c3d4, false, 0, 1000),
            (0xa1b2_c3d4, true, 0, 1000),
            (0xa1b2_3c4d, false, 0, 1),
            (0xa1b2_3c4d, true, 0, 1),
            (0xa1b2_cd34, false, 8, 1000),
            (0xa1b2_cd34, true, 8, 1000),
        ] {
            let (result, seen) = packets(&pcap(magic, big_endian, extra, &frames));
            assert_eq!(result.unwrap(), 3, "{magic:x} big endian {big_endian}");
            for (i, (time, linktype, data)) in seen.iter().enumerate() {
                assert_eq!(*time, 1_000_000_000 + (i as i128 + 1) * frac_ns);
                assert_eq!(*linktype, 101);
                assert_eq!(data, frames[i]);
            }
        }
    }

    #[test]
    fn a_cut_record_is_reported_after_the_whole_ones() {
        let file = pcap(0xa1b2_c3d4, false, 0, &[b"whole", b"cut short"]);
        for cut in [3, 12] {
            let (result, seen) = packets(&file[..file.len() - cut]);
            assert!(matches!(
                result,
                Err(CaptureError::Truncated { packets: 1 })
            ));
            assert_eq!(seen.len(), 1);
        }
        let (result, _) = packets(&file[..10]);
        assert!(matches!(result, Err(CaptureError::NotACapture)));
        assert_eq!(packets(&[]).0.unwrap(), 0);
    }

    #[test]
    fn a_record_claiming_more_than_the_bound_is_malformed() {
        let mut file = pcap(0xa1b2_c3d4, false, 0, &[b"ok"]);
        file.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let (result, seen) = packets(&file);
        assert!(matches!(
            result,
            Err(CaptureError::Malformed { packets: 1, .. })
        ));
        assert_eq!(seen.len(), 1);
    }
}
