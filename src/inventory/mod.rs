//! The deduplicated inventory, in two tiers. Destinations: every distinct external name (else
//! IP) with its names and addresses, never dropped short of `max_destinations`. Edges: who
//! reached each destination (the workload when known, else the pod, else the client IP) with
//! lookups and connections by port, bounded by `max_edges`; once edges are full an observation
//! still counts on its destination's one "other sources" edge, so no destination and no count
//! is lost.

mod model;
mod recent;
mod strings;
mod tally;

use std::collections::HashMap;
use std::net::IpAddr;

use time::OffsetDateTime;

use crate::event::{Endpoint, Fact, Observation, SourceKind, Verdict};
pub use model::{
    Collected, DestKey, Destination, Edge, Place, PortUse, Source, SourceKey, Update, UpdateKind,
    Usage,
};
use recent::RecentIds;
use strings::Strings;
use tally::{DestTally, Dst, EdgeSlot, EdgeTally, Sighting, Src, bit};

/// Pods listed per edge; further ones are counted.
pub const MAX_PODS: usize = 10;
/// Ports listed per edge; connections on further ones are counted.
pub const MAX_PORTS: usize = 32;
/// Names kept per destination besides its own.
pub const MAX_NAMES: usize = 32;
/// Addresses listed per destination; connections to further ones are counted.
pub const MAX_IPS: usize = 256;

/// Keys are hashed with foldhash: SipHash measured 11% of the whole stage, and foldhash's
/// per-process seed still keeps crafted names from colliding on purpose.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What recording one observation did.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new edge.
    New,
    Updated,
    /// Edges are full: counted on the destination's "other sources" edge.
    Folded,
    /// Destinations are full: a new destination was dropped.
    Dropped,
}

/// What a restore did with a snapshot's edges.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub edges: usize,
    /// Restored onto their destination's "other sources" edge: the edge bound was reached.
    pub folded: usize,
    /// Lost with their destination: the destination bound was reached.
    pub dropped: usize,
}

pub struct Inventory {
    strings: Strings,
    dest_index: Map<Dst, u32>,
    dests: Vec<DestTally>,
    edge_index: Map<EdgeSlot, u32>,
    edges: Vec<EdgeTally>,
    /// Edges other than the folded ones, which `max_edges` bounds.
    regular_edges: usize,
    /// Ids of recent observation records, so a redelivered record is counted once.
    recent: RecentIds,
    /// Edges changed since the last [`Inventory::take_changed`], each once.
    changed: Vec<u32>,
    max_destinations: usize,
    max_edges: usize,
}

/// A destination as an observation (or a snapshot) names it.
#[derive(Clone, Copy)]
enum DstRef<'a> {
    Name(&'a str),
    Ip(IpAddr),
}

/// A source as an observation names it.
enum SourceRef<'a> {
    Workload(&'a str, &'a str, &'a str),
    Pod(&'a str, &'a str),
    Ip(IpAddr),
    Unknown,
}

/// Who the source is keyed by: the workload when known, else the pod, else its IP.
fn source(src: &Endpoint) -> SourceRef<'_> {
    match (&src.namespace, &src.workload, &src.pod, src.ip) {
        (Some(ns), Some(w), _, _) => {
            SourceRef::Workload(ns, src.workload_kind.as_deref().unwrap_or(""), w)
        }
        (Some(ns), None, Some(pod), _) => SourceRef::Pod(ns, pod),
        (_, _, _, Some(ip)) => SourceRef::Ip(ip),
        _ => SourceRef::Unknown,
    }
}

/// The interned key of `src`, with strings as `id` gives them.
fn src_slot(src: &SourceRef<'_>, mut id: impl FnMut(&str) -> Option<u32>) -> Option<Src> {
    Some(match *src {
        SourceRef::Workload(ns, kind, name) => Src::Workload {
            namespace: id(ns)?,
            kind: id(kind)?,
            name: id(name)?,
        },
        SourceRef::Pod(ns, pod) => Src::Pod {
            namespace: id(ns)?,
            pod: id(pod)?,
        },
        SourceRef::Ip(ip) => Src::Ip(ip),
        SourceRef::Unknown => Src::Unknown,
    })
}

impl Inventory {
    /// At most `max_destinations` destinations and `max_edges` edges (besides one folded edge
    /// per destination); the last `dedupe_window` observation ids (at least) are remembered.
    pub fn new(max_destinations: usize, max_edges: usize, dedupe_window: usize) -> Self {
        Inventory {
            strings: Strings::default(),
            dest_index: Map::default(),
            dests: Vec::new(),
            edge_index: Map::default(),
            edges: Vec::new(),
            regular_edges: 0,
            recent: RecentIds::new(dedupe_window),
            changed: Vec::new(),
            max_destinations,
            max_edges,
        }
    }

    /// Destinations known.
    pub fn len(&self) -> usize {
        self.dests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dests.is_empty()
    }

    /// Edges known, the folded ones included.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// False when the observation record `id` was seen within the dedupe window.
    pub fn first_sighting(&mut self, id: u128) -> bool {
        self.recent.insert(id)
    }

    /// Counts `obs`; with `track`, remembers the edge so sinks hear of the change, and
    /// returns a new edge's update.
    pub fn record(&mut self, obs: Observation, track: bool) -> (Recorded, Option<Update>) {
        let Observation {
            time,
            kind,
            src,
            fact,
            verdict,
            count,
        } = obs;
        let (dst, connection, names, dst_ip) = match &fact {
            Fact::Dns { qname } => (DstRef::Name(qname), None, &[][..], None),
            Fact::Connection {
                dst_ip,
                dst_port,
                proto,
                names,
            } => {
                let dst = match (names.first(), dst_ip) {
                    (Some(name), _) => DstRef::Name(name),
                    (None, Some(ip)) => DstRef::Ip(*ip),
                    (None, None) => DstRef::Name(""),
                };
                (
                    dst,
                    Some((*dst_port, *proto)),
                    names.get(1..).unwrap_or(&[]),
                    *dst_ip,
                )
            }
        };
        let Some(dest) = self.destination(dst) else {
            return (Recorded::Dropped, None);
        };
        let d = &mut self.dests[dest as usize];
        for name in names {
            d.add_name(name, &mut self.strings);
        }
        if let Some(ip) = dst_ip {
            d.add_ip(ip);
        }
        let src_ref = source(&src);
        let (edge, folded) = self.edge(&src_ref, dest, time);
        let sighting = Sighting {
            time,
            kind,
            verdict,
            connection,
            pod: src.pod.as_deref(),
            namespace: src.namespace.as_deref(),
            ip: src.ip,
            count: count.max(1),
        };
        let e = &mut self.edges[edge as usize];
        let new = e.count() == 0;
        e.add(&sighting, &mut self.strings);
        let recorded = match (folded, new) {
            (true, _) => Recorded::Folded,
            (false, true) => Recorded::New,
            (false, false) => Recorded::Updated,
        };
        if !track {
            return (recorded, None);
        }
        if new {
            return (recorded, Some(self.update(edge, UpdateKind::New)));
        }
        if !e.changed {
            e.changed = true;
            self.changed.push(edge);
        }
        (recorded, None)
    }

    /// The index of the destination named `name` (or at `ip`), added when new and there is
    /// room.
    fn destination(&mut self, dst: DstRef<'_>) -> Option<u32> {
        let found = match dst {
            DstRef::Ip(ip) => Some(Dst::Ip(ip)),
            DstRef::Name(name) => self.strings.get(name).map(Dst::Name),
        };
        if let Some(key) = found
            && let Some(&i) = self.dest_index.get(&key)
        {
            return Some(i);
        }
        if self.dests.len() >= self.max_destinations {
            return None;
        }
        let key = match dst {
            DstRef::Ip(ip) => Dst::Ip(ip),
            DstRef::Name(name) => Dst::Name(self.strings.intern(name)?),
        };
        let i = u32::try_from(self.dests.len()).ok()?;
        self.dests.push(DestTally::new(key));
        self.dest_index.insert(key, i);
        Some(i)
    }

    /// The edge of `src` to `dest`: found, added while there is room, else the destination's
    /// folded edge (true). New edges start empty (count 0) at `time`.
    fn edge(&mut self, src: &SourceRef<'_>, dest: u32, time: OffsetDateTime) -> (u32, bool) {
        if let Some(src) = src_slot(src, |s| self.strings.get(s))
            && let Some(&i) = self.edge_index.get(&EdgeSlot { src, dest })
        {
            return (i, false);
        }
        let own = (self.regular_edges < self.max_edges)
            .then(|| src_slot(src, |s| self.strings.intern(s)))
            .flatten();
        let src = own.unwrap_or(Src::Other);
        (self.add_edge(EdgeSlot { src, dest }, time), own.is_none())
    }

    /// The index of the edge at `slot`, added (empty) when new.
    fn add_edge(&mut self, slot: EdgeSlot, time: OffsetDateTime) -> u32 {
        if let Some(&i) = self.edge_index.get(&slot) {
            return i;
        }
        let i = self.edges.len() as u32;
        self.edges.push(EdgeTally::new(slot, time, time));
        self.edge_index.insert(slot, i);
        if slot.src != Src::Other {
            self.regular_edges += 1;
            self.dests[slot.dest as usize].edges += 1;
        }
        i
    }

    /// Puts back the destinations of an earlier run (a snapshot), merging edges that are the
    /// same key; within the bounds as if they were observed.
    pub fn restore(&mut self, all: Vec<Destination>) -> Restored {
        let mut r = Restored::default();
        for d in all {
            let dst = match &d.destination {
                DestKey::Name(name) => DstRef::Name(name),
                DestKey::Ip(ip) => DstRef::Ip(*ip),
            };
            let Some(dest) = self.destination(dst) else {
                r.dropped += d.edges.len();
                continue;
            };
            let t = &mut self.dests[dest as usize];
            for name in &d.names {
                t.add_name(name, &mut self.strings);
            }
            for ip in &d.ips {
                t.add_ip(*ip);
            }
            t.other_ips += d.other_ips;
            for e in d.edges {
                let key = e.source.key();
                let src = match &key {
                    SourceKey::Workload {
                        namespace,
                        kind,
                        name,
                    } => SourceRef::Workload(namespace, kind, name),
                    SourceKey::Pod { namespace, pod } => SourceRef::Pod(namespace, pod),
                    SourceKey::Ip(ip) => SourceRef::Ip(*ip),
                    SourceKey::Unknown | SourceKey::Other => SourceRef::Unknown,
                };
                let (edge, folded) = if key == SourceKey::Other {
                    let slot = EdgeSlot {
                        src: Src::Other,
                        dest,
                    };
                    (self.add_edge(slot, e.usage.first_seen), true)
                } else {
                    self.edge(&src, dest, e.usage.first_seen)
                };
                match folded {
                    true => r.folded += 1,
                    false => r.edges += 1,
                }
                self.merge_edge(edge, e);
            }
        }
        r
    }

    /// Adds a restored edge's counts to the edge at `i`.
    fn merge_edge(&mut self, i: u32, e: Edge) {
        let (t, u) = (&mut self.edges[i as usize], e.usage);
        t.seen(u.first_seen, u.last_seen);
        t.lookups += u.lookups;
        for p in u.ports {
            t.add_port(p);
        }
        t.other_ports += u.other_ports;
        t.evidence |= u.evidence.iter().fold(0, |b, k| b | bit(*k as u8));
        t.verdicts |= u.verdicts.iter().fold(0, |b, v| b | bit(*v as u8));
        if matches!(t.key.src, Src::Workload { .. }) {
            for pod in &e.source.pods {
                t.add_pod(pod, &mut self.strings);
            }
        }
        if e.source.other_pods > 0 {
            t.other_pods.get_or_insert_default().restored += e.source.other_pods;
        }
        if matches!(t.key.src, Src::Pod { .. }) {
            t.ip = t.ip.or(e.source.ip);
        }
        if t.namespace.is_none()
            && matches!(t.key.src, Src::Ip(_))
            && let Some(ns) = &e.source.namespace
        {
            t.namespace = self.strings.intern(ns);
        }
    }

    /// Changed edges since the last call, in the order they first changed.
    pub fn take_changed(&mut self) -> Vec<Update> {
        let changed = std::mem::take(&mut self.changed);
        changed
            .into_iter()
            .map(|i| {
                self.edges[i as usize].changed = false;
                self.update(i, UpdateKind::Changed)
            })
            .collect()
    }

    fn update(&self, edge: u32, kind: UpdateKind) -> Update {
        let e = &self.edges[edge as usize];
        let d = &self.dests[e.key.dest as usize];
        Update {
            kind,
            destination: self.dest_key(d.key),
            place: self.place(d),
            edge: self.edge_out(e),
        }
    }

    fn dest_key(&self, key: Dst) -> DestKey {
        match key {
            Dst::Name(id) => DestKey::Name(self.strings.arc(id)),
            Dst::Ip(ip) => DestKey::Ip(ip),
        }
    }

    /// A destination's names (its own among them) and addresses, sorted.
    fn place(&self, d: &DestTally) -> Place {
        let own = match d.key {
            Dst::Name(id) if !self.strings.str(id).is_empty() => Some(id),
            _ => None,
        };
        let mut names: Vec<_> = own
            .into_iter()
            .chain(d.names.iter().copied())
            .map(|id| self.strings.arc(id))
            .collect();
        names.sort_unstable();
        let mut ips = d.ips.clone();
        ips.sort_unstable();
        Place {
            names,
            ips,
            other_ips: d.other_ips,
        }
    }

    fn edge_out(&self, e: &EdgeTally) -> Edge {
        let s = &self.strings;
        let mut source = Source {
            ip: e.ip,
            other_pods: e.other_pods(),
            ..Source::default()
        };
        match e.key.src {
            Src::Workload {
                namespace,
                kind,
                name,
            } => {
                source.namespace = Some(s.arc(namespace));
                source.workload = Some(s.arc(name));
                source.workload_kind = Some(s.arc(kind)).filter(|k| !k.is_empty());
                source.pods = e.pods.iter().map(|&id| s.arc(id)).collect();
                source.pods.sort_unstable();
            }
            Src::Pod { namespace, pod } => {
                source.namespace = Some(s.arc(namespace));
                source.pods = vec![s.arc(pod)];
            }
            Src::Ip(ip) => {
                source.ip = Some(ip);
                source.namespace = e.namespace.map(|id| s.arc(id));
            }
            Src::Unknown => {}
            Src::Other => source.other_sources = true,
        }
        let mut ports = e.ports.to_vec();
        ports.sort_unstable();
        let usage = Usage {
            lookups: e.lookups,
            ports,
            other_ports: e.other_ports,
            count: e.count(),
            first_seen: e.first_seen,
            last_seen: e.last_seen,
            evidence: SourceKind::ALL
                .into_iter()
                .filter(|k| e.evidence & bit(*k as u8) != 0)
                .collect(),
            verdicts: Verdict::ALL
                .into_iter()
                .filter(|v| e.verdicts & bit(*v as u8) != 0)
                .collect(),
        };
        Edge { source, usage }
    }

    /// Every destination with its edges, sorted (names before addresses, edges by source),
    /// built one at a time: a document of all of them is written without holding them all.
    pub fn destinations(&self) -> impl Iterator<Item = Destination> + '_ {
        // Sorted by their strings' ranks: comparing strings was most of the time.
        let rank = self.strings.ranks();
        let mut order: Vec<u32> = (0..self.dests.len() as u32).collect();
        order.sort_unstable_by_key(|&i| match self.dests[i as usize].key {
            Dst::Name(id) => (0, rank[id as usize], None),
            Dst::Ip(ip) => (1, 0, Some(ip)),
        });
        // Edges grouped by destination (a counting sort): destination i's are
        // by_dest[start[i]..start[i + 1]].
        let mut start = vec![0u32; self.dests.len() + 1];
        for e in &self.edges {
            start[e.key.dest as usize + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut fill = start.clone();
        let mut by_dest = vec![0u32; self.edges.len()];
        for (i, e) in self.edges.iter().enumerate() {
            let at = &mut fill[e.key.dest as usize];
            by_dest[*at as usize] = i as u32;
            *at += 1;
        }
        order.into_iter().map(move |i| {
            let d = &self.dests[i as usize];
            let edges = by_dest[start[i as usize] as usize..start[i as usize + 1] as usize]
                .iter()
                .map(|&e| self.edge_out(&self.edges[e as usize]))
                .collect();
            Destination::new(self.dest_key(d.key), self.place(d), edges)
        })
    }
}

#[cfg(test)]
mod tests;
