//! DNS responses (hickory-proto): the name a client asked for and the addresses it got, CNAME
//! chains flattened (the addresses belong to the name asked), the smallest TTL. Malformed
//! messages (compression loops, bad labels, wrong counts) are refused by the decoder.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RData};

pub struct Answer {
    pub name: String,
    pub ips: Vec<IpAddr>,
    pub ttl: u32,
}

/// The answer in a DNS message, when it is a successful response with addresses.
pub fn answer(message: &[u8]) -> Option<Answer> {
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
    let plain = name.iter().all(|label| {
        label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    });
    if !plain {
        return name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    }
    let mut out = String::with_capacity(name.len());
    for label in name.iter() {
        if !out.is_empty() {
            out.push('.');
        }
        out.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
