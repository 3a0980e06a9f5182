//! Pure, zero-copy parsers: each turns one borrowed line into a borrowed record, a skip by
//! design (a line of the stream that is not a record, such as a banner) or a [`ParseError`].

pub mod container;
pub mod coredns;
pub mod envoy;
pub mod falco;
pub mod hubble;
pub mod observation;
pub mod prefix;
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
    /// Cilium Hubble flows as JSON (`hubble observe -o json`, exporter files).
    Hubble,
    /// Falco alerts as JSON (`json_output`, `http_output`, falcosidekick payloads).
    Falco,
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
    Flow(Box<hubble::Flow<'a>>),
    Alert(Box<falco::Alert<'a>>),
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
        Format::Hubble => hubble::parse(line),
        Format::Falco => falco::parse(line),
        Format::Auto => detect(line).map(|(_, parsed)| parsed),
    }
}

/// Tries every format on one line. Returns the format that produced a record (to be fixed
/// for the rest of the source) or a skip if any format recognises the line as its own.
pub fn detect(line: &[u8]) -> Result<(Option<Format>, Parsed<'_>), ParseError> {
    const DETECTED: [(Format, Parser); 4] = [
        (Format::Coredns, coredns::parse),
        (Format::Envoy, envoy::parse),
        (Format::Hubble, hubble::parse),
        (Format::Falco, falco::parse),
    ];
    let mut first: Option<Result<Parsed<'_>, ParseError>> = None;
    for (format, parse) in DETECTED {
        match parse(line) {
            Ok(parsed @ Parsed::Record(_)) => return Ok((Some(format), parsed)),
            Ok(skip) if !matches!(first, Some(Ok(_))) => first = Some(Ok(skip)),
            Err(e) if first.is_none() => first = Some(Err(e)),
            _ => {}
        }
    }
    first
        .unwrap_or(Err(ParseError::Syntax("any format")))
        .map(|skip| (None, skip))
}

type Parser = for<'a> fn(&'a [u8]) -> Result<Parsed<'a>, ParseError>;
