//! Timestamps as the formats write them. Parsed only for records that survive
//! classification, so a bad timestamp never costs more than a fallback to the read time.

use time::{OffsetDateTime, format_description::well_known::Rfc3339, macros::format_description};

/// `2020-11-25T21:26:18.409Z`, any number of fraction digits.
pub fn rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Common Log Format date: `11/Jan/2019:19:59:01 +0000`.
pub fn clf(s: &str) -> Option<OffsetDateTime> {
    let fmt = format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    OffsetDateTime::parse(s, fmt).ok()
}

/// RFC3339 in UTC with the fraction trimmed, as every output of the project writes times.
pub fn format(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| String::from("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = rfc3339("2016-10-20T18:39:20.57606443Z").unwrap();
        assert_eq!(format(t), "2016-10-20T18:39:20.57606443Z");
        let t = clf("11/Jan/2019:19:59:01 +0100").unwrap();
        assert_eq!(format(t), "2019-01-11T18:59:01Z");
        assert!(rfc3339("2016-13-20T18:39:20Z").is_none());
        assert!(clf("yesterday").is_none());
    }
}
