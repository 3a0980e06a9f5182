//! `policy check`: every inventory edge (workload -> destination, port, protocol) judged by
//! the evaluator: allowed (by which rule), denied (by what, and what the observation says of
//! it), or unrestricted (nothing selects the workload: it would break under default deny);
//! and every declared allowance never used in the observation window.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use super::allowances::{self, Allowance};
use super::query::Resolver;
use super::{Connection, Target, Verdict};
use crate::cluster::{Pod, Unavailable};
use crate::event::{Protocol, SourceKind, Verdict as Observed};
use crate::inventory::{DestKey, Destination, Edge, SourceKey};

/// The version of the JSON document's shape; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Denied,
    /// Allowed because nothing selects the workload: it would break under default deny.
    Unrestricted,
    Allowed,
    /// The source is not a pod or workload of the cluster objects read.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Denied => "denied",
            Status::Unrestricted => "unrestricted",
            Status::Allowed => "allowed",
            Status::Unknown => "unknown",
        }
    }
}

/// One edge on one port, judged.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `namespace/name` of the workload (or pod, or the client IP).
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub destination: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub protocol: String,
    pub status: Status,
    /// The rules that allow it (every layer's), or the one that denies it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    pub reason: String,
    /// For a destination with several addresses: those denied when not all are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied_addresses: Vec<IpAddr>,
    /// For a denied edge: what the observation says (blocked, or connected anyway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    pub count: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub allowed: usize,
    pub denied: usize,
    pub unrestricted: usize,
    pub unknown: usize,
}

impl Counts {
    fn add(&mut self, status: Status) {
        match status {
            Status::Allowed => self.allowed += 1,
            Status::Denied => self.denied += 1,
            Status::Unrestricted => self.unrestricted += 1,
            Status::Unknown => self.unknown += 1,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub rows: Vec<Row>,
    /// Declared allowances no observed edge used.
    pub unused: Vec<Allowance>,
    pub by_workload: BTreeMap<String, Counts>,
    pub by_namespace: BTreeMap<String, Counts>,
    pub totals: Counts,
    pub unavailable: Vec<Unavailable>,
}

/// How a row names an edge's source: `namespace/name`, else the client IP, `-` when unknown.
pub fn source_label(key: &SourceKey) -> String {
    match key.qualified() {
        s if s.is_empty() => "-".to_string(),
        s => s,
    }
}

/// Judges every edge of `destinations`.
pub fn check(resolver: &Resolver, destinations: impl Iterator<Item = Destination>) -> Report {
    let mut rows = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for d in destinations {
        for edge in &d.edges {
            judge_edge(resolver, &d, edge, &mut rows, &mut used);
        }
    }
    rows.sort_by(|a, b| {
        (a.status, &a.source, &a.destination, a.port, &a.protocol).cmp(&(
            b.status,
            &b.source,
            &b.destination,
            b.port,
            &b.protocol,
        ))
    });
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        unused: allowances::declared(resolver.evaluator.cluster)
            .into_iter()
            .filter(|a| !used.contains(&a.rule))
            .collect(),
        by_workload: BTreeMap::new(),
        by_namespace: BTreeMap::new(),
        totals: Counts::default(),
        unavailable: resolver.evaluator.cluster.unavailable.clone(),
        rows: Vec::new(),
    };
    for row in &rows {
        report.totals.add(row.status);
        report
            .by_workload
            .entry(row.source.clone())
            .or_default()
            .add(row.status);
        let ns = row.namespace.clone().unwrap_or_else(|| "-".into());
        report.by_namespace.entry(ns).or_default().add(row.status);
    }
    report.rows = rows;
    report
}

/// The pod an edge's source names.
pub(super) fn source_pod<'c>(resolver: &Resolver<'c>, key: &SourceKey) -> Result<&'c Pod, String> {
    match key {
        SourceKey::Workload {
            namespace,
            kind,
            name,
        } => resolver
            .named(namespace, Some(kind), name)
            .or_else(|_| resolver.named(namespace, None, name)),
        SourceKey::Pod { namespace, pod } => resolver.named(namespace, None, pod),
        SourceKey::Ip(ip) => resolver.at(*ip),
        SourceKey::Unknown => Err("the source is unknown".into()),
        SourceKey::Other => Err("edges folded past inventory.max_entries: sources not kept".into()),
    }
}

fn judge_edge(
    resolver: &Resolver,
    d: &Destination,
    edge: &Edge,
    rows: &mut Vec<Row>,
    used: &mut BTreeSet<String>,
) {
    let key = edge.source.key();
    let name = d.destination.name_among(&d.names);
    let mut ips: Vec<Option<IpAddr>> = d.ips.iter().copied().map(Some).collect();
    if let DestKey::Ip(ip) = d.destination
        && !d.ips.contains(&ip)
    {
        ips.push(Some(ip));
    }
    if ips.is_empty() {
        ips.push(None);
    }
    let ports: Vec<(Option<u16>, Protocol, u64)> = if edge.usage.ports.is_empty() {
        vec![(None, Protocol::Tcp, edge.usage.lookups)]
    } else {
        edge.usage
            .ports
            .iter()
            .map(|p| (p.port, p.protocol, p.count))
            .collect()
    };
    let source = source_label(&key);
    let row = |port: Option<u16>, protocol: Protocol, count: u64| Row {
        source: source.clone(),
        namespace: key.namespace().map(str::to_string),
        destination: d.destination.to_string(),
        port,
        protocol: protocol.as_str().to_ascii_uppercase(),
        status: Status::Unknown,
        rules: Vec::new(),
        reason: String::new(),
        denied_addresses: Vec::new(),
        observed: None,
        count,
        notes: Vec::new(),
    };
    let from = match source_pod(resolver, &key) {
        Ok(pod) => pod,
        Err(why) => {
            for (port, protocol, count) in ports {
                let mut r = row(port, protocol, count);
                r.reason = why.clone();
                rows.push(r);
            }
            return;
        }
    };
    for (port, protocol, count) in ports {
        let mut r = row(port, protocol, count);
        let verdicts: Vec<(Option<IpAddr>, Verdict)> = ips
            .iter()
            .map(|ip| {
                let to = match ip {
                    Some(ip) => resolver.evaluator.target(*ip),
                    None => Target::External(None),
                };
                let conn = Connection {
                    from,
                    to,
                    name,
                    port,
                    protocol,
                };
                (*ip, resolver.evaluator.evaluate(&conn))
            })
            .collect();
        let denied: Vec<&(Option<IpAddr>, Verdict)> =
            verdicts.iter().filter(|(_, v)| !v.allowed).collect();
        let shown = denied.first().copied().unwrap_or(&verdicts[0]);
        let decisions = shown
            .1
            .egress
            .decisions
            .iter()
            .chain(shown.1.ingress.iter().flat_map(|s| &s.decisions));
        if denied.is_empty() {
            let v = &shown.1;
            let open = v.egress.decisions.iter().all(|d| d.rule.is_none());
            r.status = if !v.egress.isolated && open {
                Status::Unrestricted
            } else {
                Status::Allowed
            };
            for d in decisions {
                r.rules.extend(d.rule.iter().chain(&d.also).cloned());
            }
            r.reason = shown.1.egress.decisions[0].reason.clone();
            for (_, v) in &verdicts {
                for d in &v.egress.decisions {
                    used.extend(d.rule.iter().chain(&d.also).cloned());
                }
            }
        } else {
            r.status = Status::Denied;
            let deciding = decisions.into_iter().find(|d| !d.allowed);
            if let Some(d) = deciding {
                r.rules.extend(d.rule.clone());
                r.reason = d.reason.clone();
            }
            if denied.len() < verdicts.len() {
                r.denied_addresses = denied.iter().filter_map(|(ip, _)| *ip).collect();
            }
            r.observed = Some(observed(edge, port.is_some()));
        }
        let sides = shown
            .1
            .egress
            .notes
            .iter()
            .chain(shown.1.ingress.iter().flat_map(|s| &s.notes));
        r.notes = sides.cloned().collect();
        if r.status != Status::Denied && edge.usage.verdicts.contains(&Observed::Dropped) {
            r.observed = Some(format!(
                "{}, although the objects read allow it: a policy or the mesh config was not read",
                observed(edge, true)
            ));
        }
        if ips == [None] {
            r.notes.push("no address known (DNS logs carry no answers): address rules (ipBlock, toCIDR, networks) could not match".into());
        }
        if r.status == Status::Unrestricted {
            r.notes.push("would break under default deny".into());
        }
        rows.push(r);
    }
}

/// What the observation says of a denied edge.
fn observed(edge: &Edge, connected: bool) -> String {
    let by = |kind| edge.usage.evidence.contains(&kind);
    if edge.usage.verdicts.contains(&Observed::Dropped) {
        match (by(SourceKind::Hubble), by(SourceKind::Envoy)) {
            (false, true) => "blocked: the mesh refused it (Istio BlackHoleCluster)".into(),
            _ => "blocked: the datapath dropped it (Hubble DROPPED)".into(),
        }
    } else if connected {
        "seen connecting although denied: the policy is not enforced there, or came after the observation".into()
    } else {
        "looked up only: no connection was seen".into()
    }
}
