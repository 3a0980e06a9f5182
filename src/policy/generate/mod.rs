//! `policy generate`: least-privilege egress policies from what was observed, per workload
//! (NetworkPolicy, CiliumNetworkPolicy), per destination host (Istio ServiceEntries, with a
//! Sidecar per namespace) or per namespace (AdminNetworkPolicy). Deterministic: the same
//! inventory and cluster give byte-identical YAML. The evaluator proves them (tests).

mod admin;
mod cilium;
mod diff;
mod istio;
mod netpol;
#[cfg(test)]
mod tests;
pub mod yaml;

pub use diff::diff;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::query::Resolver;
use crate::cluster::{Cluster, Pod};
use crate::event::{Protocol, Verdict};
use crate::inventory::{DestKey, Destination};
use crate::parse::time::format as rfc3339;

/// Labels that differ between revisions of one workload: never in a generated selector.
const REVISION_LABELS: [&str; 8] = [
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
    "security.istio.io/tlsMode",
];

/// Node-local DNS's link-local address (its default `-localip`).
const NODE_LOCAL_DNS: &str = "169.254.20.10";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    NetworkPolicy,
    Cilium,
    Istio,
    AdminNetworkPolicy,
}

impl Kind {
    /// The file `--out DIR` writes this kind to.
    pub fn file_name(self) -> &'static str {
        match self {
            Kind::NetworkPolicy => "networkpolicies.yaml",
            Kind::Cilium => "ciliumnetworkpolicies.yaml",
            Kind::Istio => "istio.yaml",
            Kind::AdminNetworkPolicy => "adminnetworkpolicies.yaml",
        }
    }
}

/// In-cluster egress in the generated policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InCluster {
    /// Every pod of every namespace stays reachable.
    Allow,
    /// Only what was observed; the inventory holds only destinations outside, so only DNS.
    Observed,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub kinds: Vec<Kind>,
    pub in_cluster: InCluster,
    /// Group IPv4 addresses into this prefix when at least `aggregate_min` share one.
    pub aggregate_ipv4: Option<u8>,
    pub aggregate_min: usize,
    /// Cilium: `matchPattern` for names that share a parent domain.
    pub fqdn_patterns: bool,
    /// Cilium 1.19 or later: `**.` patterns across labels.
    pub cilium_double_star: bool,
    /// Istio: a Sidecar per workload instead of per namespace.
    pub per_workload_sidecar: bool,
    /// AdminNetworkPolicy priority.
    pub priority: i32,
    /// The cluster DNS domain (Sidecar hosts of in-cluster services).
    pub cluster_domain: String,
    /// The cluster's CIDRs (`--cluster-cidr`): in-cluster addresses that are not pods (nodes,
    /// the API server), kept reachable with `InCluster::Allow`.
    pub cluster_cidrs: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kinds: vec![Kind::NetworkPolicy],
            in_cluster: InCluster::Allow,
            aggregate_ipv4: None,
            aggregate_min: 2,
            fqdn_patterns: false,
            cilium_double_star: false,
            per_workload_sidecar: false,
            priority: 50,
            cluster_domain: "cluster.local".into(),
            cluster_cidrs: Vec::new(),
        }
    }
}

/// One generated object with the comments on its rules (by JSON pointer).
#[derive(Debug, Clone)]
pub struct Document {
    pub kind: Kind,
    pub value: Value,
    pub comments: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default)]
pub struct Generated {
    pub documents: Vec<Document>,
    /// What could not be expressed, sources not found, steps left to the user.
    pub notes: Vec<String>,
}

impl Generated {
    /// The documents of `kinds` as one multi-document YAML stream.
    pub fn yaml(&self, kinds: &[Kind]) -> String {
        let mut out = String::new();
        for note in &self.notes {
            out.push_str(&format!("# {note}\n"));
        }
        for doc in self.documents.iter().filter(|d| kinds.contains(&d.kind)) {
            out.push_str("---\n");
            let commented = yaml::Commented {
                value: &doc.value,
                comments: &doc.comments,
            };
            yaml::write(&commented, &mut out);
        }
        out
    }
}

/// One destination as one workload used it.
#[derive(Debug, Clone)]
pub(crate) struct Use {
    /// The destination's name, when it has one.
    pub name: Option<String>,
    pub ips: Vec<IpAddr>,
    /// Observed ports; empty when only looked up.
    pub ports: BTreeSet<(u16, Protocol)>,
    /// A connection without a port (ICMP): every port must stay open.
    pub any_port: bool,
    pub first: OffsetDateTime,
    pub last: OffsetDateTime,
    pub count: u64,
}

impl Use {
    /// The observed ports with their protocol in capitals; None when every port must stay
    /// open (only looked up, or a connection without a port).
    pub fn port_list(&self) -> Option<Vec<(u16, String)>> {
        if self.any_port || self.ports.is_empty() {
            return None;
        }
        let upper = |p: &Protocol| p.as_str().to_ascii_uppercase();
        Some(
            self.ports
                .iter()
                .map(|(port, p)| (*port, upper(p)))
                .collect(),
        )
    }

    pub fn label(&self) -> String {
        match (&self.name, self.ips.first()) {
            (Some(n), _) => n.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => "-".into(),
        }
    }

    /// `api.x.com: first seen .., last seen .., N observations`, for comments.
    pub fn comment(&self) -> String {
        let mut text = self.label();
        if self.name.is_some() && !self.ips.is_empty() {
            let ips: Vec<String> = self.ips.iter().map(ToString::to_string).collect();
            text.push_str(&format!(" ({})", ips.join(", ")));
        }
        format!(
            "{text}: first seen {}, last seen {}, {} observations",
            rfc3339(self.first),
            rfc3339(self.last),
            self.count
        )
    }
}

/// A policy's egress rules with the comment above each.
#[derive(Debug, Default)]
pub(crate) struct Rules {
    pub list: Vec<Value>,
    pub comments: BTreeMap<String, Vec<String>>,
}

impl Rules {
    pub fn push(&mut self, rule: Value, comment: Vec<String>) {
        if !comment.is_empty() {
            let at = format!("/spec/egress/{}", self.list.len());
            self.comments.insert(at, comment);
        }
        self.list.push(rule);
    }
}

/// Everything one workload was seen reaching outside.
#[derive(Debug)]
pub(crate) struct WorkloadEgress<'c> {
    pub pod: &'c Pod,
    pub selector: BTreeMap<String, String>,
    pub uses: Vec<Use>,
    pub first: OffsetDateTime,
    pub last: OffsetDateTime,
}

impl WorkloadEgress<'_> {
    pub fn namespace(&self) -> &str {
        &self.pod.namespace
    }

    /// `egress-scout-<workload>`.
    pub fn object_name(&self) -> String {
        object_name(&self.pod.workload.name)
    }

    pub fn metadata(&self) -> Value {
        metadata(
            &self.object_name(),
            Some(self.namespace()),
            self.first,
            self.last,
        )
    }
}

/// The observation window of several workloads (a namespace's): first and last seen.
pub(crate) fn window<'a, 'c: 'a>(
    ws: impl Iterator<Item = &'a WorkloadEgress<'c>>,
) -> (OffsetDateTime, OffsetDateTime) {
    ws.fold(None, |acc: Option<(OffsetDateTime, OffsetDateTime)>, w| {
        Some(acc.map_or((w.first, w.last), |(f, l)| (f.min(w.first), l.max(w.last))))
    })
    .unwrap_or((OffsetDateTime::UNIX_EPOCH, OffsetDateTime::UNIX_EPOCH))
}

/// A DNS-1123 name `egress-scout-<what>`, at most 63 characters.
pub(crate) fn object_name(what: &str) -> String {
    let mut name: String = format!("egress-scout-{what}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if name.len() > 63 {
        let hash = xxhash_rust::xxh3::xxh3_64(name.as_bytes());
        name.truncate(54);
        name = format!("{}-{:08x}", name.trim_end_matches('-'), hash as u32);
    }
    name.trim_end_matches('-').to_string()
}

/// Metadata every generated object carries.
pub(crate) fn metadata(
    name: &str,
    namespace: Option<&str>,
    first: OffsetDateTime,
    last: OffsetDateTime,
) -> Value {
    let mut m = json!({"name": name});
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m["labels"] = json!({"app.kubernetes.io/managed-by": "egress-scout"});
    m["annotations"] =
        json!({"egress-scout.io/observed": format!("{}/{}", rfc3339(first), rfc3339(last))});
    m
}

/// The resolvers pods really use: the kube-dns Service's pods (by the Service's own
/// selector, else the pods labelled as kube-dns), and node-local-dns when it runs.
#[derive(Debug, Clone)]
pub(crate) struct Resolvers {
    /// Namespace and labels of the cluster DNS pods.
    pub pods: Option<(String, BTreeMap<String, String>)>,
    pub node_local: Option<String>,
}

impl Resolvers {
    pub fn of(cluster: &Cluster) -> Resolvers {
        let service = cluster
            .services
            .iter()
            .find(|s| s.namespace == "kube-system" && s.name == "kube-dns");
        let pods = match service.and_then(|s| s.selector.clone()) {
            Some(selector) => Some(("kube-system".to_string(), selector)),
            None => cluster
                .pods
                .iter()
                .find(|p| {
                    p.labels
                        .get("k8s-app")
                        .is_some_and(|v| v == "kube-dns" || v == "coredns")
                })
                .map(|p| {
                    let label = ("k8s-app".to_string(), p.labels["k8s-app"].clone());
                    (p.namespace.clone(), BTreeMap::from([label]))
                }),
        };
        let node_local = cluster
            .pods
            .iter()
            .any(|p| {
                p.labels
                    .get("k8s-app")
                    .is_some_and(|v| v == "node-local-dns")
            })
            .then(|| NODE_LOCAL_DNS.to_string());
        Resolvers { pods, node_local }
    }
}

/// The observed edges by workload, sorted by namespace and name.
fn workloads<'c>(
    resolver: &Resolver<'c>,
    destinations: &[Destination],
    notes: &mut Vec<String>,
) -> Vec<WorkloadEgress<'c>> {
    let mut by: BTreeMap<(String, String), WorkloadEgress<'c>> = BTreeMap::new();
    let mut missing = BTreeSet::new();
    for d in destinations {
        let name = match &d.destination {
            DestKey::Name(n) => Some(n.to_string()),
            DestKey::Ip(_) => None,
        };
        let mut ips = d.ips.clone();
        if let DestKey::Ip(ip) = d.destination
            && !ips.contains(&ip)
        {
            ips.push(ip);
        }
        for edge in &d.edges {
            let key = edge.source.key();
            // Least privilege: what the datapath or the mesh refused stays refused.
            if edge.usage.verdicts.contains(&Verdict::Dropped) {
                notes.push(format!(
                    "not allowed: {} -> {} was blocked when observed; allow it by hand if it is needed",
                    key.qualified(),
                    d.destination
                ));
                continue;
            }
            let pod = match super::check::source_pod(resolver, &key) {
                Ok(pod) => pod,
                Err(why) => {
                    missing.insert(format!("{}: {why}", key.qualified()));
                    continue;
                }
            };
            let u = &edge.usage;
            let entry = by
                .entry((pod.namespace.clone(), pod.workload.name.clone()))
                .or_insert_with(|| WorkloadEgress {
                    pod,
                    selector: selector(pod),
                    uses: Vec::new(),
                    first: u.first_seen,
                    last: u.last_seen,
                });
            entry.first = entry.first.min(u.first_seen);
            entry.last = entry.last.max(u.last_seen);
            entry.uses.push(Use {
                name: name.clone(),
                ips: ips.clone(),
                ports: u
                    .ports
                    .iter()
                    .filter_map(|p| Some((p.port?, p.protocol)))
                    .collect(),
                any_port: u.ports.iter().any(|p| p.port.is_none()),
                first: u.first_seen,
                last: u.last_seen,
                count: u.count,
            });
        }
    }
    for m in missing {
        notes.push(format!("not generated for {m}"));
    }
    let mut all: Vec<WorkloadEgress> = by.into_values().collect();
    for w in &mut all {
        w.uses.sort_by_key(Use::label);
    }
    all
}

/// The workload's pods' labels without per-revision ones.
fn selector(pod: &Pod) -> BTreeMap<String, String> {
    pod.labels
        .iter()
        .filter(|(k, _)| !REVISION_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Policies of every asked kind for the observed edges.
pub fn generate(resolver: &Resolver, destinations: &[Destination], opts: &Options) -> Generated {
    let mut generated = Generated::default();
    let workloads = workloads(resolver, destinations, &mut generated.notes);
    let cluster = resolver.evaluator.cluster;
    generated
        .notes
        .extend(workloads.iter().filter_map(|w| shared_selector(cluster, w)));
    let resolvers = Resolvers::of(cluster);
    if resolvers.pods.is_none() {
        generated.notes.push(
            "no kube-dns Service or pods in the cluster objects read: DNS is allowed on port 53 to any address".into(),
        );
    }
    let mut kinds = opts.kinds.clone();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let (docs, notes) = match kind {
            Kind::NetworkPolicy => netpol::documents(&workloads, &resolvers, opts),
            Kind::Cilium => cilium::documents(&workloads, &resolvers, opts),
            Kind::Istio => istio::documents(&workloads, opts),
            Kind::AdminNetworkPolicy => admin::documents(&workloads, &resolvers, opts),
        };
        generated.documents.extend(docs);
        generated.notes.extend(notes);
    }
    generated
}

/// Selectors on a workload that also pick other workloads' pods, for a note.
pub(crate) fn shared_selector(cluster: &Cluster, w: &WorkloadEgress) -> Option<String> {
    let others: BTreeSet<String> = cluster
        .pods
        .iter()
        .filter(|p| p.namespace == w.pod.namespace && p.workload != w.pod.workload)
        .filter(|p| p.has_labels(&w.selector))
        .map(|p| p.workload.to_string())
        .collect();
    (!others.is_empty()).then(|| {
        format!(
            "the selector of {}/{} also selects {}: give the workload a label of its own",
            w.pod.namespace,
            w.pod.workload,
            others.into_iter().collect::<Vec<_>>().join(", ")
        )
    })
}
