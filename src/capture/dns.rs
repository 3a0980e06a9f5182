//! DNS responses (hickory-proto): the name a client asked for and the addresses it got, CNAME
//! chains flattened (the addresses belong to the name asked), the smallest TTL. Malformed
//! messages (compression loops, bad labels, wrong counts) are refused by the decoder.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RData;

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
    let name = m.queries.first()?.name().to_ascii();
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
        name: name.trim_end_matches('.').to_ascii_lowercase(),
        ips,
        ttl,
    })
}
