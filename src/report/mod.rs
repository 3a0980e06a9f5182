//! `egress-scout report`: the inventory as one self-contained HTML page (a map of workloads to
//! external destinations, tables, first sightings per hour, the scan's counters), and the same
//! page served live by the prometheus sink. The page's script, style and data are inline; its
//! Content-Security-Policy forbids any request but to the server that served it.

pub mod graph;
pub mod live;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::Finding;
use crate::inventory::{Destination, SourceKey};
use crate::policy::check::{self, Row, Status};
use crate::telemetry::Totals;

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// What the page draws: sources and destinations as nodes, edges between them by index.
#[derive(Debug, Default, Serialize)]
pub struct Page {
    /// The live page fetches `/api/inventory` and follows `/api/updates`.
    pub live: bool,
    pub workloads: Vec<WorkloadNode>,
    pub destinations: Vec<DestNode>,
    pub edges: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Row>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Totals>,
}

#[derive(Debug, Serialize)]
pub struct WorkloadNode {
    /// `namespace/name` (else the pod, the client IP, `other`): the policy check's source.
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub kind: String,
    /// With cluster objects: whether no egress policy selects it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unrestricted: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct DestNode {
    pub name: String,
    /// The registrable domain (public suffix + 1) the map groups it by.
    pub domain: String,
    pub ips: Vec<String>,
    pub ports: Vec<String>,
    pub evidence: Vec<&'static str>,
    pub first_seen: String,
    pub last_seen: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct Link {
    pub w: usize,
    pub d: usize,
    pub count: u64,
    pub ports: Vec<String>,
    /// The policy check's verdict, the worst of its ports': `allowed`, `denied`,
    /// `unrestricted`; none without cluster objects or for a source the cluster does not know.
    pub status: Option<&'static str>,
}

/// The group a destination is drawn in: its registrable domain, else its name, else
/// `addresses` for a bare IP.
pub fn domain_of(d: &Destination) -> String {
    domain_for(d.destination.name_among(&d.names))
}

/// The group of a destination named `name` (none: known by its address only).
pub fn domain_for(name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() => psl::domain_str(n).unwrap_or(n).to_string(),
        Some(_) => "unnamed".into(),
        None => "addresses".into(),
    }
}

fn ports(usage: &crate::inventory::Usage) -> Vec<String> {
    let mut out: Vec<String> = usage
        .ports
        .iter()
        .map(|p| match p.port {
            Some(port) => format!("{port}/{}", p.protocol.as_str()),
            None => p.protocol.as_str().to_string(),
        })
        .collect();
    if usage.lookups > 0 {
        out.push("dns".into());
    }
    out
}

impl Page {
    /// The page of `destinations`, with the policy check's verdicts when there is one.
    pub fn new(destinations: &[Destination], checked: Option<&check::Report>) -> Page {
        let mut statuses: BTreeMap<(&str, &str), Status> = BTreeMap::new();
        for row in checked.iter().flat_map(|r| &r.rows) {
            let s = statuses
                .entry((row.source.as_str(), row.destination.as_str()))
                .or_insert(row.status);
            // Denied < Unrestricted < Allowed < Unknown: the worst is the least.
            *s = (*s).min(row.status);
        }
        let mut keys: BTreeMap<String, (SourceKey, &crate::inventory::Source)> = BTreeMap::new();
        for e in destinations.iter().flat_map(|d| &d.edges) {
            let key = e.source.key();
            keys.entry(check::source_label(&key))
                .or_insert((key, &e.source));
        }
        let index: BTreeMap<&str, usize> = keys
            .keys()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let workloads = keys
            .iter()
            .map(|(k, (key, source))| WorkloadNode {
                key: k.clone(),
                namespace: key.namespace().unwrap_or("").to_string(),
                name: key.name(),
                kind: source.workload_kind.as_deref().unwrap_or("").to_string(),
                unrestricted: checked
                    .and_then(|r| r.by_workload.get(k))
                    .map(|c| c.unrestricted > 0),
            })
            .collect();
        let mut page = Page {
            workloads,
            checks: checked.map(|r| r.rows.clone()).unwrap_or_default(),
            ..Page::default()
        };
        for (di, d) in destinations.iter().enumerate() {
            let name = d.destination.to_string();
            for e in &d.edges {
                let key = check::source_label(&e.source.key());
                let status = statuses
                    .get(&(key.as_str(), name.as_str()))
                    .filter(|s| **s != Status::Unknown)
                    .map(|s| s.as_str());
                page.edges.push(Link {
                    w: index[key.as_str()],
                    d: di,
                    count: e.usage.count,
                    ports: ports(&e.usage),
                    status,
                });
            }
            let time = |t| crate::parse::time::format(t);
            page.destinations.push(DestNode {
                domain: domain_of(d),
                ips: d.ips.iter().map(ToString::to_string).collect(),
                ports: ports(&d.usage),
                evidence: d.usage.evidence.iter().map(|k| k.as_str()).collect(),
                first_seen: time(d.usage.first_seen),
                last_seen: time(d.usage.last_seen),
                count: d.usage.count,
                name,
            });
        }
        page
    }

    /// The page as one HTML document, its data inline.
    pub fn html(&self) -> String {
        let data = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        page_with(&data)
    }
}

/// The page with `data` (the JSON of a [`Page`]) inline. `<` is escaped so that no name in
/// the data can close the script element it sits in.
pub fn page_with(data: &str) -> String {
    let data = data.replace('<', "\\u003c");
    TEMPLATE
        .replacen("/*STYLE*/", STYLE, 1)
        .replacen("/*SCRIPT*/", SCRIPT, 1)
        .replacen("/*DATA*/", &data, 1)
}

#[cfg(test)]
mod tests;
