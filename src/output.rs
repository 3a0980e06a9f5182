//! The documented output shapes: the inventory document of `scan`, the per-update lines of
//! the stdout sink, and the aligned table for people.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;
use time::OffsetDateTime;

use crate::event::{Endpoint, Protocol, SourceKind, Verdict};
use crate::inventory::{Entry, Key, Update, UpdateKind};
use crate::parse::time::format as rfc3339;
use crate::telemetry::Totals;

pub const SCHEMA_VERSION: u32 = 1;

/// One destination (names and/or IPs, port, protocol) and who reached it.
#[derive(Debug, Serialize)]
pub struct DestinationDoc<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    pub sources: Vec<&'a Endpoint>,
    pub count: u64,
    #[serde(serialize_with = "serialize_time")]
    pub first_seen: OffsetDateTime,
    #[serde(serialize_with = "serialize_time")]
    pub last_seen: OffsetDateTime,
    pub evidence: Vec<SourceKind>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Verdict>,
}

fn serialize_time<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

impl<'a> DestinationDoc<'a> {
    /// The document of one inventory entry (a single source).
    pub fn of(key: &Key, e: &'a Entry) -> Self {
        DestinationDoc {
            names: e.names.iter().map(String::as_str).collect(),
            ips: e.ips.iter().copied().collect(),
            port: key.port,
            protocol: key.proto,
            sources: vec![&e.src],
            count: e.count,
            first_seen: e.first_seen,
            last_seen: e.last_seen,
            evidence: e.evidence.iter().copied().collect(),
            verdicts: e.verdicts.iter().copied().collect(),
        }
    }

    /// Folds another source's entry for the same destination into this one.
    fn absorb(&mut self, e: &'a Entry) {
        for n in &e.names {
            if !self.names.contains(&n.as_str()) {
                self.names.push(n);
            }
        }
        for ip in &e.ips {
            if !self.ips.contains(ip) {
                self.ips.push(*ip);
            }
        }
        self.sources.push(&e.src);
        self.count += e.count;
        self.first_seen = self.first_seen.min(e.first_seen);
        self.last_seen = self.last_seen.max(e.last_seen);
        for k in &e.evidence {
            if !self.evidence.contains(k) {
                self.evidence.push(*k);
            }
        }
        self.names.sort_unstable();
        self.ips.sort_unstable();
        for v in &e.verdicts {
            if !self.verdicts.contains(v) {
                self.verdicts.push(*v);
            }
        }
        self.evidence.sort_unstable();
        self.verdicts.sort_unstable();
    }
}

/// The `scan` document: destinations grouped over sources, and the run's counters.
#[derive(Debug, Serialize)]
pub struct InventoryDoc<'a> {
    pub schema_version: u32,
    pub destinations: Vec<DestinationDoc<'a>>,
    pub stats: Totals,
}

/// Groups sorted entries by (destination, port, protocol).
pub fn inventory_doc<'a>(entries: &[(&Key, &'a Entry)], stats: Totals) -> InventoryDoc<'a> {
    let mut destinations: Vec<DestinationDoc<'a>> = Vec::new();
    let mut last: Option<&Key> = None;
    for &(key, entry) in entries {
        let same =
            last.is_some_and(|l| l.dst == key.dst && l.port == key.port && l.proto == key.proto);
        match destinations.last_mut() {
            Some(doc) if same => doc.absorb(entry),
            _ => destinations.push(DestinationDoc::of(key, entry)),
        }
        last = Some(key);
    }
    InventoryDoc {
        schema_version: SCHEMA_VERSION,
        destinations,
        stats,
    }
}

/// One line of the stdout sink: the entry shape plus what changed.
#[derive(Debug, Serialize)]
pub struct UpdateDoc<'a> {
    pub schema_version: u32,
    pub update: &'static str,
    #[serde(flatten)]
    pub destination: DestinationDoc<'a>,
}

impl<'a> UpdateDoc<'a> {
    pub fn of(u: &'a Update) -> Self {
        UpdateDoc {
            schema_version: SCHEMA_VERSION,
            update: match u.kind {
                UpdateKind::New => "new",
                UpdateKind::Changed => "changed",
            },
            destination: DestinationDoc::of(&u.key, &u.entry),
        }
    }
}

/// An aligned table, one row per (destination, port, protocol, source).
pub fn table(entries: &[(&Key, &Entry)]) -> String {
    const HEADER: [&str; 8] = [
        "DESTINATION",
        "IPS",
        "PORT",
        "PROTO",
        "SOURCE",
        "COUNT",
        "LAST SEEN",
        "EVIDENCE",
    ];
    let rows: Vec<[String; 8]> = entries
        .iter()
        .map(|(key, e)| {
            [
                cell(e.names.iter()),
                cell(e.ips.iter()),
                key.port.map_or("-".into(), |p| p.to_string()),
                key.proto.map_or("-", Protocol::as_str).to_string(),
                e.src.to_string(),
                e.count.to_string(),
                rfc3339(e.last_seen),
                cell(e.evidence.iter().map(|k| k.as_str())),
            ]
        })
        .collect();
    aligned(HEADER, &rows)
}

/// Columns padded to their widest cell, two spaces apart.
pub fn aligned<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (cell, w) in cells.zip(widths) {
            let _ = write!(l, "{cell:<w$}  ");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Comma-separated items, or `-` for none.
fn cell<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        let _ = write!(out, "{}{item}", if i == 0 { "" } else { "," });
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// The closing line under a table.
pub fn summary(destinations: usize, t: &Totals) -> String {
    format!(
        "{destinations} external destinations; {} lines: {} records ({} internal, {} dropped), {} skipped, {} malformed",
        t.lines, t.records, t.internal, t.dropped, t.skipped, t.malformed
    )
}
