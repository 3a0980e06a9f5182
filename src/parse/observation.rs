//! Observation records (see [`crate::wire`]) as published by another egress-scout's kafka
//! sink. Unlike the log parsers this one allocates: the record is already a survivor.

use super::{ParseError, Parsed, Record};
use crate::wire::{SCHEMA_VERSION, Stamped};

pub fn parse(line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let stamped: Stamped =
        serde_json::from_slice(line).map_err(|_| ParseError::Syntax("observation"))?;
    if stamped.schema_version != SCHEMA_VERSION {
        return Err(ParseError::Field("schema_version"));
    }
    Ok(Parsed::Record(Record::Observation(Box::new(stamped))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_records_and_refuses_other_versions_and_junk() {
        let line = br#"{"schema_version":1,"id":"000000000000000000000000000000ff","time":"2026-11-26T12:00:00Z","evidence":"coredns","source":{"ip":"10.0.0.7"},"destination":{"kind":"dns","name":"api.stripe.com"}}"#;
        let Ok(Parsed::Record(Record::Observation(s))) = parse(line) else {
            panic!("not parsed");
        };
        assert_eq!(s.id, 255);
        let v2 = String::from_utf8_lossy(line).replace(":1,", ":2,");
        assert_eq!(
            parse(v2.as_bytes()),
            Err(ParseError::Field("schema_version"))
        );
        for junk in [
            &b"{"[..],
            b"not json",
            b"{\"schema_version\":1}",
            b"\xff\xfe",
        ] {
            assert!(parse(junk).is_err());
        }
    }
}
