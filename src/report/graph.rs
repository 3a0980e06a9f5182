//! The egress map as text: Mermaid (GitHub renders it in Markdown) and Graphviz dot. Sources
//! are grouped by namespace on the left, destinations by registrable domain on the right.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Page, domain_for};
use crate::audit::Finding;

/// Nodes in groups on two sides, and labelled edges between them.
#[derive(Debug, Default)]
pub struct Graph {
    /// (group, label) of each source.
    pub left: Vec<(String, String)>,
    /// (group, label) of each destination.
    pub right: Vec<(String, String)>,
    /// (left index, right index, label, policy verdict).
    pub edges: Vec<(usize, usize, String, Option<&'static str>)>,
}

impl Graph {
    pub fn of(page: &Page) -> Graph {
        Graph {
            left: page
                .workloads
                .iter()
                .map(|w| {
                    let name = match w.kind.as_str() {
                        "" => w.name.clone(),
                        kind => format!("{kind}/{}", w.name),
                    };
                    (w.namespace.clone(), name)
                })
                .collect(),
            right: page
                .destinations
                .iter()
                .map(|d| (d.domain.clone(), d.name.clone()))
                .collect(),
            edges: page
                .edges
                .iter()
                .map(|e| {
                    let label = match e.ports.as_slice() {
                        [] => e.count.to_string(),
                        ports => format!("{} x{}", ports.join(" "), e.count),
                    };
                    (e.w, e.d, label, e.status)
                })
                .collect(),
        }
    }

    /// The audit's map: each object that declares or allows an external destination, to it.
    pub fn of_findings(findings: &[Finding]) -> Graph {
        let mut graph = Graph::default();
        let mut left: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut right: BTreeMap<String, usize> = BTreeMap::new();
        let mut edges: BTreeMap<(usize, usize), Vec<&str>> = BTreeMap::new();
        for f in findings {
            let Some(destination) = &f.destination else {
                continue;
            };
            let namespace = f.namespace.clone().unwrap_or_default();
            let next = left.len();
            let w = *left
                .entry((namespace.clone(), f.object.clone()))
                .or_insert_with(|| {
                    graph.left.push((namespace, f.object.clone()));
                    next
                });
            let next = right.len();
            let d = *right.entry(destination.clone()).or_insert_with(|| {
                let name = destination
                    .parse::<std::net::IpAddr>()
                    .is_err()
                    .then_some(destination.as_str());
                graph.right.push((domain_for(name), destination.clone()));
                next
            });
            let kinds = edges.entry((w, d)).or_default();
            if !kinds.contains(&f.kind.as_str()) {
                kinds.push(f.kind.as_str());
            }
        }
        graph.edges = edges
            .into_iter()
            .map(|((w, d), kinds)| (w, d, kinds.join(", "), None))
            .collect();
        graph
    }

    /// `flowchart LR` with a subgraph per namespace and per domain.
    pub fn mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        let mut group = 0;
        for (side, nodes) in [("w", &self.left), ("d", &self.right)] {
            for (name, members) in groups(nodes) {
                let title = if name.is_empty() { "-" } else { name };
                let _ = writeln!(out, "  subgraph g{group}[\"{}\"]", mermaid_text(title));
                group += 1;
                for i in members {
                    let _ = writeln!(out, "    {side}{i}[\"{}\"]", mermaid_text(&nodes[i].1));
                }
                out.push_str("  end\n");
            }
        }
        for (i, (w, d, label, _)) in self.edges.iter().enumerate() {
            let _ = writeln!(out, "  w{w} -->|\"{}\"| d{d}", mermaid_text(label));
            if let Some(color) = self.edges[i].3.map(color) {
                let _ = writeln!(out, "  linkStyle {i} stroke:{color}");
            }
        }
        out
    }

    /// A `digraph` with a cluster per namespace and per domain.
    pub fn dot(&self) -> String {
        let mut out =
            String::from("digraph egress {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n");
        let mut group = 0;
        for (side, nodes) in [("w", &self.left), ("d", &self.right)] {
            for (name, members) in groups(nodes) {
                let _ = writeln!(
                    out,
                    "  subgraph cluster_{group} {{\n    label=\"{}\";",
                    dot_text(name)
                );
                group += 1;
                for i in members {
                    let _ = writeln!(out, "    {side}{i} [label=\"{}\"];", dot_text(&nodes[i].1));
                }
                out.push_str("  }\n");
            }
        }
        for (w, d, label, status) in &self.edges {
            let color = status.map(color).unwrap_or("#8c959f");
            let _ = writeln!(
                out,
                "  w{w} -> d{d} [label=\"{}\", color=\"{color}\"];",
                dot_text(label)
            );
        }
        out.push_str("}\n");
        out
    }
}

/// Members of each group, groups in name order.
fn groups(nodes: &[(String, String)]) -> BTreeMap<&str, Vec<usize>> {
    let mut out: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (group, _)) in nodes.iter().enumerate() {
        out.entry(group.as_str()).or_default().push(i);
    }
    out
}

fn color(status: &str) -> &'static str {
    match status {
        "allowed" => "#1a7f37",
        "denied" => "#cf222e",
        "unrestricted" => "#bc4c00",
        _ => "#8c959f",
    }
}

/// Text inside Mermaid's quotes: its entity codes for what would end them or break a line.
fn mermaid_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => "#quot;".to_string(),
            '\n' | '\r' => " ".to_string(),
            '<' => "#lt;".to_string(),
            '>' => "#gt;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Text inside dot's quotes.
fn dot_text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(['\n', '\r'], " ")
}
