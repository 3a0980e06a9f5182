//! The server name of a TLS ClientHello at the start of a client's stream. The hello may span
//! several segments (post-quantum key shares make it larger than one) and several handshake
//! records; its fragments are joined, within the caller's bound.

use tls_parser::{
    SNIType, TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_extensions,
    parse_tls_message_handshake,
};

/// What the start of a client stream says.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// Not TLS.
    NotTls,
    /// TLS, but the ClientHello is not complete yet: at least this many bytes are needed.
    Need(usize),
    /// A ClientHello (or a handshake that is not one); its server name when it has one.
    Sni(Option<String>),
}

pub fn server_name(stream: &[u8]) -> Hello {
    let mut handshake = Vec::new();
    let mut at = 0;
    loop {
        let Some(header) = stream.get(at..at + 5) else {
            return if stream.first().is_some_and(|&b| b != 0x16) {
                Hello::NotTls
            } else {
                Hello::Need(at + 5)
            };
        };
        // Handshake records, record versions of TLS 1.0-1.3.
        if header[0] != 0x16 || header[1] != 3 {
            return if at == 0 {
                Hello::NotTls
            } else {
                Hello::Sni(None)
            };
        }
        let end = at + 5 + usize::from(u16::from_be_bytes([header[3], header[4]]));
        let Some(body) = stream.get(at + 5..end) else {
            return Hello::Need(end);
        };
        handshake.extend_from_slice(body);
        at = end;
        if handshake.len() >= 4 {
            if handshake[0] != 1 {
                return Hello::Sni(None);
            }
            let len = 4
                + (usize::from(handshake[1]) << 16
                    | usize::from(handshake[2]) << 8
                    | usize::from(handshake[3]));
            if handshake.len() >= len {
                return Hello::Sni(sni(&handshake[..len]));
            }
        }
    }
}

fn sni(message: &[u8]) -> Option<String> {
    let (_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello))) =
        parse_tls_message_handshake(message).ok()?
    else {
        return None;
    };
    let (_, extensions) = parse_tls_extensions(hello.ext?).ok()?;
    extensions.into_iter().find_map(|e| match e {
        TlsExtension::SNI(names) => names
            .iter()
            .find(|(t, _)| *t == SNIType::HostName)
            .and_then(|(_, name)| std::str::from_utf8(name).ok())
            .map(str::to_owned),
        _ => None,
    })
}
