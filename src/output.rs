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
    pub sources: Vec<SourceDoc<'a>>,
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

/// Who reached a destination: an [`Endpoint`], borrowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SourceDoc<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
}

impl<'a> From<&'a Endpoint> for SourceDoc<'a> {
    fn from(e: &'a Endpoint) -> Self {
        SourceDoc {
            namespace: e.namespace.as_deref(),
            pod: e.pod.as_deref(),
            workload: e.workload.as_deref(),
            workload_kind: e.workload_kind.as_deref(),
            ip: e.ip,
        }
    }
}

impl std::fmt::Display for SourceDoc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.namespace, self.pod, self.ip) {
            (Some(ns), Some(pod), _) => write!(f, "{ns}/{pod}"),
            (_, _, Some(ip)) => write!(f, "{ip}"),
            _ => f.write_str("-"),
        }
    }
}

/// An inventory entry as the documents read it: owned (a [`Key`] and its [`Entry`], as sinks
/// keep them) or borrowed from the inventory (`scan`, which would otherwise copy every string).
pub trait EntryView<'a> {
    /// Whether `other` is the same destination (name or IP, port, protocol).
    fn same_destination(&self, other: &Self) -> bool;
    fn port(&self) -> Option<u16>;
    fn protocol(&self) -> Option<Protocol>;
    fn names(&self) -> impl Iterator<Item = &'a str>;
    fn ips(&self) -> impl Iterator<Item = IpAddr>;
    fn source(&self) -> SourceDoc<'a>;
    fn count(&self) -> u64;
    fn first_seen(&self) -> OffsetDateTime;
    fn last_seen(&self) -> OffsetDateTime;
    fn evidence(&self) -> impl Iterator<Item = SourceKind>;
    fn verdicts(&self) -> impl Iterator<Item = Verdict>;
}

impl<'a> EntryView<'a> for (&'a Key, &'a Entry) {
    fn same_destination(&self, other: &Self) -> bool {
        let (a, b) = (self.0, other.0);
        a.dst == b.dst && a.port == b.port && a.proto == b.proto
    }
    fn port(&self) -> Option<u16> {
        self.0.port
    }
    fn protocol(&self) -> Option<Protocol> {
        self.0.proto
    }
    fn names(&self) -> impl Iterator<Item = &'a str> {
        self.1.names.iter().map(String::as_str)
    }
    fn ips(&self) -> impl Iterator<Item = IpAddr> {
        self.1.ips.iter().copied()
    }
    fn source(&self) -> SourceDoc<'a> {
        SourceDoc::from(&self.1.src)
    }
    fn count(&self) -> u64 {
        self.1.count
    }
    fn first_seen(&self) -> OffsetDateTime {
        self.1.first_seen
    }
    fn last_seen(&self) -> OffsetDateTime {
        self.1.last_seen
    }
    fn evidence(&self) -> impl Iterator<Item = SourceKind> {
        self.1.evidence.iter().copied()
    }
    fn verdicts(&self) -> impl Iterator<Item = Verdict> {
        self.1.verdicts.iter().copied()
    }
}

impl<'a> DestinationDoc<'a> {
    /// The document of one inventory entry (a single source).
    pub fn of(e: &impl EntryView<'a>) -> Self {
        let mut doc = DestinationDoc {
            names: Vec::new(),
            ips: Vec::new(),
            port: e.port(),
            protocol: e.protocol(),
            sources: Vec::new(),
            count: 0,
            first_seen: e.first_seen(),
            last_seen: e.last_seen(),
            evidence: Vec::new(),
            verdicts: Vec::new(),
        };
        doc.absorb(e);
        doc
    }

    /// Folds another source's entry for the same destination into this one: its sets stay
    /// sorted, each item once.
    fn absorb(&mut self, e: &impl EntryView<'a>) {
        merge_sorted(&mut self.names, e.names());
        merge_sorted(&mut self.ips, e.ips());
        self.sources.push(e.source());
        self.count += e.count();
        self.first_seen = self.first_seen.min(e.first_seen());
        self.last_seen = self.last_seen.max(e.last_seen());
        merge_sorted(&mut self.evidence, e.evidence());
        merge_sorted(&mut self.verdicts, e.verdicts());
    }
}

/// Adds the items `more` has that the sorted `have` lacks, keeping it sorted.
fn merge_sorted<T: Ord>(have: &mut Vec<T>, more: impl Iterator<Item = T>) {
    for item in more {
        if let Err(at) = have.binary_search(&item) {
            have.insert(at, item);
        }
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
pub fn inventory_doc<'a, E: EntryView<'a>>(
    entries: impl IntoIterator<Item = E>,
    stats: Totals,
) -> InventoryDoc<'a> {
    let mut destinations: Vec<DestinationDoc<'a>> = Vec::new();
    let mut last: Option<E> = None;
    for entry in entries {
        let same = last.as_ref().is_some_and(|l| l.same_destination(&entry));
        match destinations.last_mut() {
            Some(doc) if same => doc.absorb(&entry),
            _ => destinations.push(DestinationDoc::of(&entry)),
        }
        last = Some(entry);
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
            destination: DestinationDoc::of(&(&u.key, &u.entry)),
        }
    }
}

/// An aligned table, one row per (destination, port, protocol, source).
pub fn table<'a, E: EntryView<'a>>(entries: impl IntoIterator<Item = E>) -> String {
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
        .into_iter()
        .map(|e| {
            [
                cell(sorted(e.names())),
                cell(sorted(e.ips())),
                e.port().map_or("-".into(), |p| p.to_string()),
                e.protocol().map_or("-", Protocol::as_str).to_string(),
                e.source().to_string(),
                e.count().to_string(),
                rfc3339(e.last_seen()),
                cell(e.evidence().map(SourceKind::as_str)),
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

fn sorted<T: Ord>(items: impl Iterator<Item = T>) -> impl Iterator<Item = T> {
    let mut all: Vec<T> = items.collect();
    all.sort_unstable();
    all.into_iter()
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
