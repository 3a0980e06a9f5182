//! DNS responses: the name a client asked for and the addresses it got, CNAME chains flattened
//! (the addresses belong to the name asked), the smallest TTL. The common shape (one question
//! of hostname labels; A, AAAA and CNAME answers; at most an EDNS OPT record besides) is read
//! in place: hickory's full decode was a tenth of a capture scan. Anything else goes to
//! hickory-proto, which refuses malformed messages (compression loops, bad labels, wrong
//! counts); a test holds both to the same answers, for every message cut short or corrupted.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RData};

use crate::classify::is_hostname_byte;

#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub name: String,
    pub ips: Vec<IpAddr>,
    pub ttl: u32,
}

/// The answer in a DNS message, when it is a successful response with addresses.
pub fn answer(message: &[u8]) -> Option<Answer> {
    match plain(message) {
        Plain::Answer(a) => Some(a),
        Plain::NotAnswer => None,
        Plain::Other => decoded(message),
    }
}

enum Plain {
    Answer(Answer),
    /// Certainly not a successful response with addresses.
    NotAnswer,
    /// Not the common shape: hickory decides.
    Other,
}

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;

/// The common shape read in place; [`Plain::Other`] for anything else.
fn plain(m: &[u8]) -> Plain {
    let Some(header) = m.get(..12) else {
        return Plain::Other;
    };
    let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    // A query, or an error code in the header: no extended code makes either a success.
    if header[2] & 0x80 == 0 || header[3] & 0x0f != 0 {
        return Plain::NotAnswer;
    }
    if qd != 1 || ns != 0 || ar > 1 {
        return Plain::Other;
    }
    let Some((name, mut at)) = question_name(m, 12) else {
        return Plain::Other;
    };
    at += 4;
    let mut ips = Vec::new();
    let mut ttl = u32::MAX;
    for i in 0..usize::from(an) + usize::from(ar) {
        let Some(end) = name_end(m, at) else {
            return Plain::Other;
        };
        let Some(fixed) = m.get(end..end + 10) else {
            return Plain::Other;
        };
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let record_ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let Some(data) = m.get(end + 10..end + 10 + len) else {
            return Plain::Other;
        };
        let answer_section = i < usize::from(an);
        match (answer_section, rtype, len) {
            (true, TYPE_A, 4) => {
                ips.push(IpAddr::from(<[u8; 4]>::try_from(data).unwrap_or_default()))
            }
            (true, TYPE_AAAA, 16) => {
                ips.push(IpAddr::from(<[u8; 16]>::try_from(data).unwrap_or_default()))
            }
            (true, TYPE_CNAME, _) if name_end(m, end + 10) == Some(end + 10 + len) => {}
            // EDNS: its owner is the root; the TTL's first byte extends the response code.
            (false, TYPE_OPT, _) if end == at + 1 && m[at] == 0 && options_fit(data) => {
                if fixed[4] != 0 {
                    return Plain::NotAnswer;
                }
            }
            _ => return Plain::Other,
        }
        if matches!(rtype, TYPE_A | TYPE_AAAA) {
            ttl = ttl.min(record_ttl);
        }
        at = end + 10 + len;
    }
    if ips.is_empty() {
        return Plain::NotAnswer;
    }
    Plain::Answer(Answer { name, ips, ttl })
}

/// Whether EDNS options (code, length, data) fill `data` exactly.
fn options_fit(mut data: &[u8]) -> bool {
    while let Some(len) = data.get(2..4) {
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        match data.get(4 + len..) {
            Some(rest) => data = rest,
            None => return false,
        }
    }
    data.is_empty()
}

/// A question's name of hostname labels, uncompressed, lower-cased; and where it ends.
fn question_name(m: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    loop {
        let len = usize::from(*m.get(at)?);
        if len == 0 {
            return (name.len() < 254).then_some((name, at + 1));
        }
        let label = m.get(at + 1..at + 1 + len).filter(|_| len <= 63)?;
        if !push_label(&mut name, label) {
            return None;
        }
        at += 1 + len;
    }
}

/// Where the name at `at` ends, after checking all of it: labels of at most 63 bytes,
/// compression pointers only backwards (so no loops), 255 bytes in all.
fn name_end(m: &[u8], start: usize) -> Option<usize> {
    let (mut at, mut end, mut total) = (start, None, 0usize);
    loop {
        let len = *m.get(at)?;
        match len {
            0 => return Some(end.unwrap_or(at + 1)),
            1..=63 => {
                total += usize::from(len) + 1;
                if total > 254 {
                    return None;
                }
                m.get(at + 1..at + 1 + usize::from(len))?;
                at += 1 + usize::from(len);
            }
            0xc0..=0xff => {
                let target = usize::from(u16::from_be_bytes([len, *m.get(at + 1)?]) & 0x3fff);
                end.get_or_insert(at + 2);
                if target >= at {
                    return None;
                }
                at = target;
            }
            _ => return None,
        }
    }
}

/// The answer as hickory-proto decodes the whole message.
fn decoded(message: &[u8]) -> Option<Answer> {
    let m = Message::from_vec(message).ok()?;
    if m.metadata.message_type != MessageType::Response
        || m.metadata.response_code != ResponseCode::NoError
    {
        return None;
    }
    let name = m.queries.first()?.name();
    let mut ips = Vec::new();
    let mut ttl = u32::MAX;
    for record in &m.answers {
        let ip = match &record.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        ips.push(ip);
        ttl = ttl.min(record.ttl);
    }
    (!ips.is_empty()).then(|| Answer {
        name: text(name),
        ips,
        ttl,
    })
}

/// The name in lower case without the root's dot. Labels of hostname characters are joined
/// as they are (hickory's `to_ascii` escapes byte by byte: it was a tenth of DNS decoding);
/// anything else goes through it, so odd bytes come out escaped as before.
fn text(name: &Name) -> String {
    let mut out = String::with_capacity(name.len());
    if name.iter().all(|label| push_label(&mut out, label)) {
        return out;
    }
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// Appends a label of hostname characters, lower-cased, after a dot unless it is the first;
/// false (and nothing appended) for any other byte.
fn push_label(name: &mut String, label: &[u8]) -> bool {
    if !label.iter().all(|&b| is_hostname_byte(b)) {
        return false;
    }
    if !name.is_empty() {
        name.push('.');
    }
    name.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, OpCode, Query};
    use hickory_proto::rr::{Record, RecordType, rdata};

    fn name(n: &str) -> Name {
        Name::from_ascii(n).unwrap()
    }

    /// Responses of the common shape and around it, as hickory writes them (compressed).
    fn messages() -> Vec<Vec<u8>> {
        let a = |owner: &str, ip: [u8; 4], ttl| {
            Record::from_rdata(
                name(owner),
                ttl,
                RData::A(rdata::A::from(std::net::Ipv4Addr::from(ip))),
            )
        };
        let cname = |owner: &str, to: &str| {
            Record::from_rdata(name(owner), 60, RData::CNAME(rdata::CNAME(name(to))))
        };
        let response = |q: &str, answers: Vec<Record>, edns: bool, code: ResponseCode| {
            let mut m = Message::response(7, OpCode::Query);
            m.metadata.response_code = code;
            m.add_query(Query::query(name(q), RecordType::A));
            for r in answers {
                m.add_answer(r);
            }
            if edns {
                m.set_edns(Edns::new());
            }
            m.to_vec().unwrap()
        };
        let aaaa = Record::from_rdata(
            name("v6.example.com."),
            30,
            RData::AAAA(rdata::AAAA::from(std::net::Ipv6Addr::LOCALHOST)),
        );
        let mut with_authority = Message::response(9, OpCode::Query);
        with_authority.add_query(Query::query(name("ns.example.com."), RecordType::A));
        with_authority.add_answer(a("ns.example.com.", [198, 51, 100, 3], 5));
        with_authority.add_authority(a("ns.example.com.", [198, 51, 100, 4], 5));
        let query = Message::query()
            .add_query(Query::query(name("q.example.com."), RecordType::A))
            .to_vec()
            .unwrap();
        vec![
            response(
                "api.example.com.",
                vec![a("api.example.com.", [198, 51, 100, 1], 300)],
                false,
                ResponseCode::NoError,
            ),
            response(
                "www.Example.com.",
                vec![
                    cname("www.example.com.", "edge.example.net."),
                    a("edge.example.net.", [198, 51, 100, 2], 20),
                    a("edge.example.net.", [198, 51, 100, 3], 10),
                ],
                true,
                ResponseCode::NoError,
            ),
            response("v6.example.com.", vec![aaaa], true, ResponseCode::NoError),
            response("gone.example.com.", vec![], true, ResponseCode::NXDomain),
            response(
                "_svc._tcp.example.com.",
                vec![cname("_svc._tcp.example.com.", "x.example.com.")],
                false,
                ResponseCode::NoError,
            ),
            with_authority.to_vec().unwrap(),
            query,
        ]
    }

    #[test]
    fn read_in_place_as_hickory_reads_it_whole_cut_or_corrupted() {
        let mut checked = 0;
        for m in messages() {
            assert_eq!(answer(&m), decoded(&m), "{m:02x?}");
            for cut in 0..m.len() {
                assert_eq!(
                    answer(&m[..cut]),
                    decoded(&m[..cut]),
                    "cut at {cut}: {m:02x?}"
                );
            }
            for at in 0..m.len() {
                for value in [0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xff, m[at] ^ 0x20] {
                    let mut bad = m.clone();
                    bad[at] = value;
                    assert_eq!(
                        answer(&bad),
                        decoded(&bad),
                        "byte {at} = {value:#x}: {bad:02x?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000);
        // The common shapes are read in place, the rest left to hickory.
        let shapes: Vec<&str> = messages()
            .iter()
            .map(|m| match plain(m) {
                Plain::Answer(_) => "answer",
                Plain::NotAnswer => "not",
                Plain::Other => "other",
            })
            .collect();
        assert_eq!(
            shapes,
            ["answer", "answer", "answer", "not", "not", "other", "not"]
        );
        let found = answer(&messages()[1]).unwrap();
        assert_eq!(found.name, "www.example.com");
        assert_eq!(found.ttl, 10);
        assert_eq!(found.ips.len(), 2);
    }

    /// Every DNS message (UDP, port 53) in ../shared/samples/pcap, when present.
    #[test]
    fn sample_captures_read_as_hickory_reads_them() {
        use crate::capture::{link, reader, transport};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples/pcap");
        let Ok(files) = std::fs::read_dir(&dir) else {
            eprintln!("skipped: no {}", dir.display());
            return;
        };
        let mut messages = 0;
        for file in files.flatten() {
            let Ok(bytes) = std::fs::read(file.path()) else {
                continue;
            };
            let _ = reader::read_all(&bytes[..], |p| {
                if let Ok(ip) = link::ip_packet(p.linktype, p.data)
                    && let Some(transport::Transport::Udp { src, dst, payload }) =
                        transport::transport(ip)
                    && (src.port() == 53 || dst.port() == 53)
                {
                    assert_eq!(answer(payload), decoded(payload), "{:?}", file.path());
                    messages += 1;
                }
                true
            });
        }
        assert!(messages > 10, "{messages} DNS messages");
    }

    #[test]
    fn names_read_as_hickory_writes_them() {
        for (wire, text) in [
            (
                Name::from_ascii("API.Example.com.").unwrap(),
                "api.example.com",
            ),
            (
                Name::from_ascii("_svc._tcp.example.com").unwrap(),
                "_svc._tcp.example.com",
            ),
            (Name::root(), ""),
            (
                Name::from_labels([b"a.b".as_slice(), b"ex ample"]).unwrap(),
                "a\\.b.ex\\040ample",
            ),
        ] {
            assert_eq!(super::text(&wire), text);
            assert_eq!(
                super::text(&wire),
                wire.to_ascii().trim_end_matches('.').to_ascii_lowercase()
            );
        }
    }
}
