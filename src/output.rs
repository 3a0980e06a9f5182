//! The documented output shapes: the inventory document of `scan`, the per-update lines of
//! the stdout sink and Kafka, and the aligned table for people.

use std::cell::Cell;
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
#[derive(Serialize)]
#[serde(bound(serialize = "I: Iterator, I::Item: Serialize"))]
pub struct InventoryDoc<I> {
    pub schema_version: u32,
    pub destinations: Streamed<I>,
    pub stats: Totals,
}

impl<I> InventoryDoc<I> {
    pub fn new(destinations: I, stats: Totals) -> Self {
        InventoryDoc {
            schema_version: SCHEMA_VERSION,
            destinations: Streamed::new(destinations),
            stats,
        }
    }
}

/// A sequence serialized as its iterator yields it (once), so a document of every
/// destination is written without holding them all.
pub struct Streamed<I>(Cell<Option<I>>);

impl<I> Streamed<I> {
    pub fn new(items: I) -> Self {
        Streamed(Cell::new(Some(items)))
    }
}

impl<I: Iterator> Serialize for Streamed<I>
where
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.take().into_iter().flatten())
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

/// An aligned table, one row per edge: (destination, source) with its ports. `destinations`
/// is asked twice (widths, then rows), so no more than a destination's rows are held.
pub fn write_table<I: Iterator<Item = Destination>>(
    out: &mut impl std::io::Write,
    destinations: impl Fn() -> I,
) -> std::io::Result<()> {
    let mut widths = HEADER.map(str::len);
    for d in destinations() {
        for row in rows(&d) {
            widen(&mut widths, &row);
        }
    }
    let mut line = String::new();
    pad(&mut line, HEADER.iter().copied(), widths);
    out.write_all(line.as_bytes())?;
    for d in destinations() {
        for row in rows(&d) {
            line.clear();
            pad(&mut line, row.iter().map(String::as_str), widths);
            out.write_all(line.as_bytes())?;
        }
    }
    Ok(())
}

/// The table rows of one destination's edges.
fn rows(d: &Destination) -> impl Iterator<Item = [String; 8]> + '_ {
    let names = match cell(d.names.iter(), 0) {
        none if none == "-" => d.destination.to_string(),
        names => names,
    };
    let ips = cell(d.ips.iter(), d.other_ips);
    d.edges.iter().map(move |e| {
        let u = &e.usage;
        let lookups = (u.lookups > 0).then_some("dns");
        let ports = lookups
            .into_iter()
            .map(str::to_string)
            .chain(u.ports.iter().map(PortUse::to_string));
        let pods = e.source.pods.len() as u64 + e.source.other_pods;
        [
            names.clone(),
            ips.clone(),
            cell(ports, u.other_ports),
            e.source.to_string(),
            if pods == 0 {
                "-".into()
            } else {
                pods.to_string()
            },
            u.count.to_string(),
            rfc3339(u.last_seen),
            cell(u.evidence.iter().map(|k| k.as_str()), 0),
        ]
    })
}

/// Columns padded to their widest cell, two spaces apart.
pub fn aligned<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        widen(&mut widths, row);
    }
    let mut out = String::new();
    pad(&mut out, header.iter().copied(), widths);
    for row in rows {
        pad(&mut out, row.iter().map(String::as_str), widths);
    }
    out
}

fn widen<const N: usize>(widths: &mut [usize; N], row: &[String; N]) {
    for (w, cell) in widths.iter_mut().zip(row) {
        *w = (*w).max(cell.chars().count());
    }
}

/// One line of cells padded to `widths`, appended to `out`.
fn pad<'a, const N: usize>(
    out: &mut String,
    cells: impl Iterator<Item = &'a str>,
    widths: [usize; N],
) {
    let start = out.len();
    for (cell, w) in cells.zip(widths) {
        let _ = write!(out, "{cell:<w$}  ");
    }
    out.truncate(start + out[start..].trim_end().len());
    out.push('\n');
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
pub fn summary(destinations: usize, edges: usize, t: &Totals) -> String {
    format!(
        "{destinations} external destinations, {edges} edges; {} lines: {} records ({} internal, {} folded, {} dropped), {} skipped, {} malformed",
        t.lines, t.records, t.internal, t.folded, t.dropped, t.skipped, t.malformed
    )
}
