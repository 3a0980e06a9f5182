//! The `policy check` report for people: aligned tables (rows, unused allowances, a summary
//! per namespace) or Markdown for a ticket or pull request. JSON is the report serialized.

use std::fmt::Write as _;

use super::check::{Counts, Report, Row};
use crate::output::aligned;

const HEADER: [&str; 5] = ["STATUS", "SOURCE", "DESTINATION", "PORT", "RULE / REASON"];

fn row(r: &Row) -> [String; 5] {
    let port = match r.port {
        Some(p) => format!("{p}/{}", r.protocol),
        None => format!("-/{} (lookup)", r.protocol),
    };
    let mut why = if r.rules.is_empty() {
        r.reason.clone()
    } else {
        r.rules.join(" + ")
    };
    if !r.denied_addresses.is_empty() {
        let ips: Vec<String> = r.denied_addresses.iter().map(ToString::to_string).collect();
        let _ = write!(why, " [denied for {}]", ips.join(", "));
    }
    if let Some(o) = &r.observed {
        let _ = write!(why, " ({o})");
    }
    [
        r.status.as_str().to_string(),
        r.source.clone(),
        r.destination.clone(),
        port,
        why,
    ]
}

fn counts(c: &Counts) -> String {
    format!(
        "{} allowed, {} denied, {} unrestricted, {} unknown",
        c.allowed, c.denied, c.unrestricted, c.unknown
    )
}

pub fn table(report: &Report) -> String {
    let mut out = String::new();
    if report.rows.is_empty() {
        out.push_str("No observed edges to check.\n");
    } else {
        let rows: Vec<[String; 5]> = report.rows.iter().map(row).collect();
        out.push_str(&aligned(HEADER, &rows));
    }
    if !report.unused.is_empty() {
        out.push_str("\nDeclared allowances not used in the observation window:\n");
        let rows: Vec<[String; 2]> = report
            .unused
            .iter()
            .map(|a| [a.rule.clone(), a.allows.clone()])
            .collect();
        out.push_str(&aligned(["RULE", "ALLOWS"], &rows));
    }
    out.push_str("\nBy namespace:\n");
    for (ns, c) in &report.by_namespace {
        let _ = writeln!(out, "  {ns}: {}", counts(c));
    }
    for u in &report.unavailable {
        let _ = writeln!(out, "not read: {}: {}", u.resource, u.reason);
    }
    let _ = writeln!(
        out,
        "\n{} edges: {}",
        report.rows.len(),
        counts(&report.totals)
    );
    out
}

/// A Markdown cell: pipes escaped, on one line.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(report: &Report) -> String {
    let mut out = String::from("# Egress policy check\n\n");
    let _ = writeln!(
        out,
        "{} edges: {}.\n",
        report.rows.len(),
        counts(&report.totals)
    );
    if !report.rows.is_empty() {
        let _ = writeln!(out, "| {} |", HEADER.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(HEADER.len()));
        for r in &report.rows {
            let cells: Vec<String> = row(r).iter().map(|c| cell(c)).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    }
    if !report.unused.is_empty() {
        out.push_str("\n## Declared allowances not used\n\n| RULE | ALLOWS |\n|---|---|\n");
        for a in &report.unused {
            let _ = writeln!(out, "| {} | {} |", cell(&a.rule), cell(&a.allows));
        }
    }
    out.push_str("\n## By namespace\n\n| NAMESPACE | ALLOWED | DENIED | UNRESTRICTED | UNKNOWN |\n|---|---|---|---|---|\n");
    for (ns, c) in &report.by_namespace {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(ns),
            c.allowed,
            c.denied,
            c.unrestricted,
            c.unknown
        );
    }
    out
}
