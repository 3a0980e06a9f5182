//! pcap (microsecond and nanosecond, both byte orders, the modified format) and pcapng (several
//! sections and interfaces, per-interface link types and time resolutions) read with
//! `pcap-parser` through a bounded buffer, so files far larger than memory stream. A truncated
//! file ends the read with an error after every packet before it was handed on.

use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError};

/// Bytes buffered; grown (up to [`MAX_BUFFER`]) only for a block that does not fit.
const BUFFER: usize = 1 << 20;
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
    input: impl Read + Send,
    mut each: impl FnMut(Packet<'_>) -> bool,
) -> Result<u64, CaptureError> {
    let mut reader = match pcap_parser::create_reader(BUFFER, input) {
        Ok(r) => r,
        Err(PcapError::Eof) => return Ok(0),
        Err(PcapError::HeaderNotRecognized) => return Err(CaptureError::NotACapture),
        Err(PcapError::ReadError) => return Err(CaptureError::Io("read failed".into())),
        Err(_) => return Err(CaptureError::NotACapture),
    };
    let mut packets = 0u64;
    // pcap: one link type and precision for the file.
    let mut legacy = (1, false);
    // pcapng: per interface of the current section, its link type, resolution and offset.
    let mut interfaces: Vec<(i32, u64, i64)> = Vec::new();
    let mut last_time = 0i128;
    let mut capacity = BUFFER;
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                let packet = match &block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy = (h.network.0, h.is_nanosecond_precision());
                        None
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let frac = i128::from(b.ts_usec) * if legacy.1 { 1 } else { 1000 };
                        Some((
                            i128::from(b.ts_sec) * 1_000_000_000 + frac,
                            legacy.0,
                            b.data,
                        ))
                    }
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
                    PcapBlockOwned::NG(_) => None,
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
