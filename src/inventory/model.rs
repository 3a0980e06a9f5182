//! The inventory as everything outside it sees it: destinations with their edges (who reached
//! them, on which ports), owned and serializable. One shape serves the `scan` document, the
//! snapshot file, sink updates and what sinks keep. Strings are `Arc<str>`: copied out of the
//! inventory's interned strings without allocating.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::event::{Protocol, SourceKind, Verdict};
use crate::parse::time::format as rfc3339;

/// A destination: its first external name when it has one, else its IP. Written as that
/// name or address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DestKey {
    Name(Arc<str>),
    Ip(IpAddr),
}

impl DestKey {
    /// The name a destination is known by: its key's, else the first of `names` (the names
    /// an address was resolved from); none for an address nobody named.
    pub fn name_among<'a>(&'a self, names: &'a [Arc<str>]) -> Option<&'a str> {
        match self {
            DestKey::Name(n) => Some(n),
            DestKey::Ip(_) => names.first().map(AsRef::as_ref),
        }
    }
}

impl fmt::Display for DestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestKey::Name(name) => f.write_str(name),
            DestKey::Ip(ip) => ip.fmt(f),
        }
    }
}

impl Serialize for DestKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DestKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(match text.parse() {
            Ok(ip) => DestKey::Ip(ip),
            Err(_) => DestKey::Name(text.as_ref().into()),
        })
    }
}

/// Who an edge is keyed by: the workload when the pod table knows it, else the pod (a log
/// file's), else the client IP; `Other` holds what a destination got once edges were full.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKey {
    Workload {
        namespace: Arc<str>,
        kind: Arc<str>,
        name: Arc<str>,
    },
    Pod {
        namespace: Arc<str>,
        pod: Arc<str>,
    },
    Ip(IpAddr),
    Unknown,
    Other,
}

impl SourceKey {
    /// The namespace the key names, when it names one.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            SourceKey::Workload { namespace, .. } | SourceKey::Pod { namespace, .. } => {
                Some(namespace)
            }
            _ => None,
        }
    }

    /// Who, within its namespace: the workload, the pod or the client IP; `other` for a
    /// destination's folded edge, empty when unknown.
    pub fn name(&self) -> String {
        match self {
            SourceKey::Workload { name, .. } => name.to_string(),
            SourceKey::Pod { pod, .. } => pod.to_string(),
            SourceKey::Ip(ip) => ip.to_string(),
            SourceKey::Unknown => String::new(),
            SourceKey::Other => "other".into(),
        }
    }

    /// `namespace/name`, else the name: how Kafka keys and tables name a source.
    pub fn qualified(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{ns}/{}", self.name()),
            None => self.name(),
        }
    }
}

/// The source side of an edge, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<Arc<str>>,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, `Job`, or `Pod` for a bare pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_kind: Option<Arc<str>>,
    /// The first pods seen (at most [`super::MAX_PODS`]), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<Arc<str>>,
    /// Further distinct pods seen, not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_pods: u64,
    /// The client IP, for an edge keyed by it (or a pod's, when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// The edge of everything folded once `inventory.max_entries` edges existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub other_sources: bool,
}

impl Source {
    pub fn key(&self) -> SourceKey {
        if self.other_sources {
            return SourceKey::Other;
        }
        match (&self.namespace, &self.workload, self.pods.first(), self.ip) {
            (Some(ns), Some(name), _, _) => SourceKey::Workload {
                namespace: ns.clone(),
                kind: self.workload_kind.clone().unwrap_or_else(|| "".into()),
                name: name.clone(),
            },
            (Some(ns), None, Some(pod), _) => SourceKey::Pod {
                namespace: ns.clone(),
                pod: pod.clone(),
            },
            (_, _, _, Some(ip)) => SourceKey::Ip(ip),
            _ => SourceKey::Unknown,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.key() {
            SourceKey::Unknown => f.write_str("-"),
            SourceKey::Other => f.write_str("(other sources)"),
            key => f.write_str(&key.qualified()),
        }
    }
}

/// Connections on one port and protocol (no port: ICMP, or a record that did not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortUse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub protocol: Protocol,
    pub count: u64,
}

impl fmt::Display for PortUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{port}/{}", self.protocol.as_str()),
            None => f.write_str(self.protocol.as_str()),
        }
    }
}

/// How a destination was used: DNS lookups and connections by port, when, on what evidence.
/// An edge's own, or a destination's summed over its edges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lookups: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortUse>,
    /// Connections on ports past an edge's first [`super::MAX_PORTS`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_ports: u64,
    pub count: u64,
    #[serde(serialize_with = "time_out", deserialize_with = "time_in")]
    pub first_seen: OffsetDateTime,
    #[serde(serialize_with = "time_out", deserialize_with = "time_in")]
    pub last_seen: OffsetDateTime,
    pub evidence: Vec<SourceKind>,
    /// Verdicts other than forwarded: attempts a policy dropped, refused, unanswered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Verdict>,
}

impl Usage {
    /// Adds `other`'s counts, ports, times and sets to these.
    fn absorb(&mut self, other: &Usage) {
        self.lookups += other.lookups;
        for p in &other.ports {
            add_port(&mut self.ports, *p);
        }
        self.other_ports += other.other_ports;
        self.count += other.count;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        merge_sorted(&mut self.evidence, other.evidence.iter().copied());
        merge_sorted(&mut self.verdicts, other.verdicts.iter().copied());
    }
}

/// One source's use of one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub source: Source,
    #[serde(flatten)]
    pub usage: Usage,
}

/// A destination with everything known of it and every edge that reaches it; its usage is
/// the sum of its edges'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub destination: DestKey,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<Arc<str>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
    /// Connections to addresses past the first [`super::MAX_IPS`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_ips: u64,
    #[serde(flatten)]
    pub usage: Usage,
    /// Edges other than the folded one.
    pub source_count: u64,
    pub edges: Vec<Edge>,
}

/// What a destination is called and where it is, as an update carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub names: Vec<Arc<str>>,
    pub ips: Vec<IpAddr>,
    pub other_ips: u64,
}

impl Destination {
    /// `edges` (sorted here by source) with their totals.
    pub fn new(destination: DestKey, place: Place, mut edges: Vec<Edge>) -> Self {
        edges.sort_by_cached_key(|e| e.source.key());
        let mut usage = Usage {
            lookups: 0,
            ports: Vec::new(),
            other_ports: 0,
            count: 0,
            first_seen: edges
                .first()
                .map_or(OffsetDateTime::UNIX_EPOCH, |e| e.usage.first_seen),
            last_seen: OffsetDateTime::UNIX_EPOCH,
            evidence: Vec::new(),
            verdicts: Vec::new(),
        };
        for e in &edges {
            usage.absorb(&e.usage);
        }
        Destination {
            destination,
            names: place.names,
            ips: place.ips,
            other_ips: place.other_ips,
            usage,
            source_count: edges.iter().filter(|e| !e.source.other_sources).count() as u64,
            edges,
        }
    }

    pub fn place(&self) -> Place {
        Place {
            names: self.names.clone(),
            ips: self.ips.clone(),
            other_ips: self.other_ips,
        }
    }
}

/// Adds `p`'s count to its port in the sorted `ports`.
fn add_port(ports: &mut Vec<PortUse>, p: PortUse) {
    match ports.binary_search_by_key(&(p.port, p.protocol), |q| (q.port, q.protocol)) {
        Ok(at) => ports[at].count += p.count,
        Err(at) => ports.insert(at, p),
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

/// A change sinks are told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// An edge seen for the first time, sent at once.
    New,
    /// Counts or last-seen of a known edge, coalesced per interval.
    Changed,
}

/// One edge as it now stands, with its destination's names and addresses.
#[derive(Debug, Clone)]
pub struct Update {
    pub kind: UpdateKind,
    pub destination: DestKey,
    pub place: Place,
    pub edge: Edge,
}

/// The inventory a sink rebuilds from updates (or a snapshot): the latest state of every
/// edge, grouped by destination.
#[derive(Debug, Default)]
pub struct Collected {
    destinations: BTreeMap<DestKey, (Place, BTreeMap<SourceKey, Edge>)>,
}

impl Collected {
    pub fn from_destinations(all: Vec<Destination>) -> Self {
        let mut c = Collected::default();
        for d in all {
            let place = d.place();
            let edges = d.edges.into_iter().map(|e| (e.source.key(), e)).collect();
            c.destinations.insert(d.destination, (place, edges));
        }
        c
    }

    pub fn apply(&mut self, u: &Update) {
        let (place, edges) = self.destinations.entry(u.destination.clone()).or_default();
        // Names and addresses only grow: the latest update knows the most.
        place.clone_from(&u.place);
        edges.insert(u.edge.source.key(), u.edge.clone());
    }

    /// Every destination, sorted, with its totals; built one at a time.
    pub fn destinations(&self) -> impl Iterator<Item = Destination> + '_ {
        self.destinations.iter().map(|(key, (place, edges))| {
            Destination::new(
                key.clone(),
                place.clone(),
                edges.values().cloned().collect(),
            )
        })
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn time_out<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

fn time_in<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
    time::serde::rfc3339::deserialize(d)
}
