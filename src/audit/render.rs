//! The audit report for people: an aligned table grouped by finding kind with a summary, or
//! Markdown for a ticket or pull request. (JSON is the report serialized as it is.)

use std::fmt::Write as _;

use super::{Finding, Report};
use crate::output::aligned;

const HEADER: [&str; 6] = [
    "SEVERITY",
    "NAMESPACE",
    "OBJECT",
    "DESTINATION",
    "PORT",
    "DETAIL",
];

fn row(f: &Finding) -> [String; 6] {
    [
        f.severity.as_str().to_string(),
        f.namespace.clone().unwrap_or_else(|| "-".into()),
        f.object.clone(),
        f.destination.clone().unwrap_or_else(|| "*".into()),
        f.port
            .as_ref()
            .map_or_else(|| "*".into(), ToString::to_string),
        f.detail.clone(),
    ]
}

/// Findings in kind order (the report is sorted by severity, then kind).
fn by_kind(report: &Report) -> Vec<(&'static str, Vec<&Finding>)> {
    let mut groups: Vec<(&'static str, Vec<&Finding>)> = Vec::new();
    for f in &report.findings {
        match groups.iter_mut().find(|(k, _)| *k == f.kind.as_str()) {
            Some((_, list)) => list.push(f),
            None => groups.push((f.kind.as_str(), vec![f])),
        }
    }
    groups
}

fn summary_lines(report: &Report) -> Vec<String> {
    let s = &report.summary;
    let mut lines = vec![format!(
        "{} findings; {} of {} workloads ({} of {} pods) unrestricted by any egress policy",
        report.findings.len(),
        s.unrestricted_workloads,
        s.workloads,
        s.unrestricted_pods,
        s.pods
    )];
    if !s.unrestricted_by_namespace.is_empty() {
        let per: Vec<String> = s
            .unrestricted_by_namespace
            .iter()
            .map(|(ns, n)| format!("{ns} {n}"))
            .collect();
        lines.push(format!(
            "unrestricted workloads by namespace: {}",
            per.join(", ")
        ));
    }
    if let Some(mode) = &s.mesh_outbound_policy {
        lines.push(format!("mesh outboundTrafficPolicy: {mode}"));
    }
    for u in &s.unavailable {
        lines.push(format!("not read: {}: {}", u.resource, u.reason));
    }
    lines
}

pub fn table(report: &Report) -> String {
    let mut out = String::new();
    for (kind, findings) in by_kind(report) {
        let rows: Vec<[String; 6]> = findings.into_iter().map(row).collect();
        let _ = writeln!(out, "{kind} ({})", rows.len());
        out.push_str(&aligned(HEADER, &rows));
        out.push('\n');
    }
    for line in summary_lines(report) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Markdown: a section per kind with a table; cells escaped so names cannot break rows.
pub fn markdown(report: &Report) -> String {
    let escape = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = String::from("# Egress audit\n\n");
    for line in summary_lines(report) {
        let _ = writeln!(out, "- {}", escape(&line));
    }
    for (kind, findings) in by_kind(report) {
        let _ = write!(out, "\n## {kind} ({})\n\n", findings.len());
        let _ = writeln!(out, "| {} |", HEADER.map(str::to_lowercase).join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(HEADER.len()));
        for f in findings {
            let cells = row(f).map(|c| escape(&c));
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    }
    let map = crate::report::graph::Graph::of_findings(&report.findings);
    if !map.edges.is_empty() {
        let _ = write!(out, "\n## Egress map\n\n```mermaid\n{}```\n", map.mermaid());
    }
    out
}
