//! Pure, zero-copy parsers: each turns one borrowed line into a borrowed record, a skip by
//! design (a line of the stream that is not a record, such as a banner) or a [`ParseError`].

pub mod container;
pub mod coredns;
pub mod envoy;
pub mod observation;
pub mod time;

use serde::{Deserialize, Serialize};

/// The record format of a source, as named in configuration and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Detect per source from the first line that parses.
    #[default]
    Auto,
    /// CoreDNS `log` plugin query lines.
    Coredns,
    /// Envoy / Istio access logs, TEXT or JSON.
    Envoy,
    /// Observation records of another egress-scout (its kafka sink's `observations_topic`);
    /// never detected, always named.
    Observation,
}

/// A parsed line of any supported format, borrowing from the input.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    Dns(coredns::Query<'a>),
    Access(envoy::AccessLog<'a>),
    Observation(Box<crate::wire::Stamped>),
}

/// What one line turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<'a> {
    Record(Record<'a>),
    /// A line that belongs in the stream but carries no record; the reason names it.
    Skip(&'static str),
}

/// Why a line could not be parsed; the variant name is the counted reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line is not valid UTF-8")]
    Utf8,
    #[error("line does not match the {0} format")]
    Syntax(&'static str),
    #[error("invalid {0}")]
    Field(&'static str),
}

impl ParseError {
    /// Short snake_case reason for counters and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            ParseError::Utf8 => "invalid_utf8",
            ParseError::Syntax(_) => "syntax",
            ParseError::Field(_) => "invalid_field",
        }
    }
}

/// Parses `line` as `format`; callers that fix the format per source use [`detect`] for
/// `Auto` instead.
pub fn parse(format: Format, line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    match format {
        Format::Coredns => coredns::parse(line),
        Format::Envoy => envoy::parse(line),
        Format::Observation => observation::parse(line),
        Format::Auto => detect(line).map(|(_, parsed)| parsed),
    }
}

/// Tries every format on one line. Returns the format that produced a record (to be fixed
/// for the rest of the source) or a skip if any format recognises the line as its own.
pub fn detect(line: &[u8]) -> Result<(Option<Format>, Parsed<'_>), ParseError> {
    let dns = coredns::parse(line);
    if let Ok(parsed @ Parsed::Record(_)) = dns {
        return Ok((Some(Format::Coredns), parsed));
    }
    let access = envoy::parse(line);
    if let Ok(parsed @ Parsed::Record(_)) = access {
        return Ok((Some(Format::Envoy), parsed));
    }
    match (dns, access) {
        (Ok(skip), _) | (_, Ok(skip)) => Ok((None, skip)),
        (Err(e), _) => Err(e),
    }
}
