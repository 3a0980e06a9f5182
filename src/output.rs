//! The documented output shapes: the inventory document of `scan`, the per-update lines of
//! the stdout sink and Kafka, and the aligned table for people.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::inventory::{DestKey, Destination, Edge, PortUse, Update, UpdateKind};
use crate::parse::time::format as rfc3339;
use crate::telemetry::Totals;

/// Version of the documents below (and of the snapshot file, which is the `scan` document
/// without `stats`). Version 1 had one entry per (source, destination, port, protocol).
pub const SCHEMA_VERSION: u32 = 2;

/// The `scan` document: every destination with its edges, and the run's counters.
#[derive(Debug, Serialize)]
pub struct InventoryDoc<'a> {
    pub schema_version: u32,
    pub destinations: &'a [Destination],
    pub stats: Totals,
}

impl<'a> InventoryDoc<'a> {
    pub fn new(destinations: &'a [Destination], stats: Totals) -> Self {
        InventoryDoc {
            schema_version: SCHEMA_VERSION,
            destinations,
            stats,
        }
    }
}

/// One line of the stdout sink and one Kafka record: an edge as it now stands, with its
/// destination's names and addresses.
#[derive(Debug, Serialize)]
pub struct UpdateDoc<'a> {
    pub schema_version: u32,
    pub update: &'static str,
    pub destination: &'a DestKey,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub names: &'a [Arc<str>],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub ips: &'a [IpAddr],
    #[serde(skip_serializing_if = "is_zero")]
    pub other_ips: u64,
    #[serde(flatten)]
    pub edge: &'a Edge,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl<'a> UpdateDoc<'a> {
    pub fn of(u: &'a Update) -> Self {
        UpdateDoc {
            schema_version: SCHEMA_VERSION,
            update: match u.kind {
                UpdateKind::New => "new",
                UpdateKind::Changed => "changed",
            },
            destination: &u.destination,
            names: &u.place.names,
            ips: &u.place.ips,
            other_ips: u.place.other_ips,
            edge: &u.edge,
        }
    }
}

/// Items shown in a table cell at most; the rest are counted (`+N`).
const CELL_ITEMS: usize = 4;

/// An aligned table, one row per edge: (destination, source) with its ports.
pub fn table(destinations: &[Destination]) -> String {
    const HEADER: [&str; 8] = [
        "DESTINATION",
        "IPS",
        "PORTS",
        "SOURCE",
        "PODS",
        "COUNT",
        "LAST SEEN",
        "EVIDENCE",
    ];
    let mut rows: Vec<[String; 8]> = Vec::new();
    for d in destinations {
        let names = cell(d.names.iter(), 0);
        let ips = cell(d.ips.iter(), d.other_ips);
        for e in &d.edges {
            let lookups = (e.lookups > 0).then_some("dns");
            let ports = lookups
                .into_iter()
                .map(str::to_string)
                .chain(e.ports.iter().map(PortUse::to_string));
            let pods = e.source.pods.len() as u64 + e.source.other_pods;
            rows.push([
                if names == "-" {
                    d.destination.to_string()
                } else {
                    names.clone()
                },
                ips.clone(),
                cell(ports, e.other_ports),
                e.source.to_string(),
                if pods == 0 {
                    "-".into()
                } else {
                    pods.to_string()
                },
                e.count.to_string(),
                rfc3339(e.last_seen),
                cell(e.evidence.iter().map(|k| k.as_str()), 0),
            ]);
        }
    }
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

/// The first few items comma-separated, `+N` for the others (and `more` beyond those), or
/// `-` for none.
fn cell<T: std::fmt::Display>(items: impl Iterator<Item = T>, more: u64) -> String {
    let mut out = String::new();
    let mut hidden = more;
    for (i, item) in items.enumerate() {
        match i {
            0 => write!(out, "{item}"),
            i if i < CELL_ITEMS => write!(out, ",{item}"),
            _ => {
                hidden += 1;
                Ok(())
            }
        }
        .unwrap_or_default();
    }
    if hidden > 0 {
        let _ = write!(out, "{}+{hidden}", if out.is_empty() { "" } else { "," });
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// The closing line under a table.
pub fn summary(destinations: &[Destination], t: &Totals) -> String {
    let edges: usize = destinations.iter().map(|d| d.edges.len()).sum();
    format!(
        "{} external destinations, {edges} edges; {} lines: {} records ({} internal, {} folded, {} dropped), {} skipped, {} malformed",
        destinations.len(),
        t.lines,
        t.records,
        t.internal,
        t.folded,
        t.dropped,
        t.skipped,
        t.malformed
    )
}
