//! What the inventory keeps per destination and per edge, with strings as ids and sets as
//! bits, and how an observation (or a restored edge) adds to them. Every set is bounded: past
//! its bound detail is counted, never the destination.

use std::net::IpAddr;

use smallvec::SmallVec;
use time::OffsetDateTime;

use super::model::PortUse;
use super::strings::Strings;
use super::{MAX_IPS, MAX_NAMES, MAX_PODS, MAX_PORTS};
use crate::event::{Protocol, SourceKind, Verdict};

/// A destination key with its name interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Dst {
    Name(u32),
    Ip(IpAddr),
}

/// A source key with its strings interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Src {
    Workload {
        namespace: u32,
        kind: u32,
        name: u32,
    },
    Pod {
        namespace: u32,
        pod: u32,
    },
    Ip(IpAddr),
    Unknown,
    Other,
}

/// An edge's key: its source and the index of its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct EdgeSlot {
    pub src: Src,
    pub dest: u32,
}

/// A destination's own facts; its counts are its edges'.
pub(super) struct DestTally {
    pub key: Dst,
    /// Names besides the key's own.
    pub names: Vec<u32>,
    pub ips: Vec<IpAddr>,
    pub other_ips: u64,
    /// Edges other than the folded one.
    pub edges: u32,
}

impl DestTally {
    pub fn new(key: Dst) -> Self {
        DestTally {
            key,
            names: Vec::new(),
            ips: Vec::new(),
            other_ips: 0,
            edges: 0,
        }
    }

    pub fn add_name(&mut self, name: &str, strings: &mut Strings) {
        if let Some(id) = strings.get(name)
            && (self.key == Dst::Name(id) || self.names.contains(&id))
        {
            return;
        }
        if self.names.len() < MAX_NAMES
            && let Some(id) = strings.intern(name)
        {
            self.names.push(id);
        }
    }

    pub fn add_ip(&mut self, ip: IpAddr) {
        if self.ips.contains(&ip) {
            return;
        }
        if self.ips.len() < MAX_IPS {
            self.ips.push(ip);
        } else {
            self.other_ips += 1;
        }
    }
}

/// What one observation tells an edge.
pub(super) struct Sighting<'a> {
    pub time: OffsetDateTime,
    pub kind: SourceKind,
    pub verdict: Option<Verdict>,
    /// The connection's port and protocol; none for a DNS lookup.
    pub connection: Option<(Option<u16>, Protocol)>,
    pub pod: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub ip: Option<IpAddr>,
    /// Connections or lookups it stands for (a metric's increase), at least 1.
    pub count: u64,
}

/// One edge's counts. Kept small (most edges have one port and few pods, inline): there are
/// a hundred thousand of them.
pub(super) struct EdgeTally {
    pub key: EdgeSlot,
    /// Pods seen first, at most [`MAX_PODS`] (a workload edge's).
    pub pods: SmallVec<[u32; 2]>,
    /// The further pods, when there are any.
    pub other_pods: Option<Box<OtherPods>>,
    /// A pod edge's pod IP.
    pub ip: Option<IpAddr>,
    /// The namespace an IP edge's observations named, without a pod (Falco's `k8s.ns.name`).
    pub namespace: Option<u32>,
    pub lookups: u64,
    pub ports: SmallVec<[PortUse; 1]>,
    pub other_ports: u64,
    pub first_seen: OffsetDateTime,
    pub last_seen: OffsetDateTime,
    pub evidence: u8,
    pub verdicts: u8,
    /// Listed in the changes sinks will hear of.
    pub changed: bool,
}

impl EdgeTally {
    pub fn new(key: EdgeSlot, first_seen: OffsetDateTime, last_seen: OffsetDateTime) -> Self {
        EdgeTally {
            key,
            pods: SmallVec::new(),
            other_pods: None,
            ip: None,
            namespace: None,
            lookups: 0,
            ports: SmallVec::new(),
            other_ports: 0,
            first_seen,
            last_seen,
            evidence: 0,
            verdicts: 0,
            changed: false,
        }
    }

    /// Lookups and connections: every observation is one or the other.
    pub fn count(&self) -> u64 {
        self.lookups + self.other_ports + self.ports.iter().map(|p| p.count).sum::<u64>()
    }

    pub fn add(&mut self, s: &Sighting<'_>, strings: &mut Strings) {
        self.seen(s.time, s.time);
        self.evidence |= bit(s.kind as u8);
        if let Some(v) = s.verdict {
            self.verdicts |= bit(v as u8);
        }
        match s.connection {
            None => self.lookups += s.count,
            Some((port, protocol)) => self.add_port(PortUse {
                port,
                protocol,
                count: s.count,
            }),
        }
        if let Some(pod) = s.pod
            && matches!(self.key.src, Src::Workload { .. })
        {
            self.add_pod(pod, strings);
        }
        if self.ip.is_none() && matches!(self.key.src, Src::Pod { .. }) {
            self.ip = s.ip;
        }
        if self.namespace.is_none()
            && matches!(self.key.src, Src::Ip(_))
            && let Some(ns) = s.namespace
        {
            self.namespace = strings.intern(ns);
        }
    }

    pub fn seen(&mut self, first: OffsetDateTime, last: OffsetDateTime) {
        self.first_seen = self.first_seen.min(first);
        self.last_seen = self.last_seen.max(last);
    }

    pub fn add_port(&mut self, p: PortUse) {
        if let Some(have) = self
            .ports
            .iter_mut()
            .find(|q| (q.port, q.protocol) == (p.port, p.protocol))
        {
            have.count += p.count;
        } else if self.ports.len() < MAX_PORTS {
            self.ports.push(p);
        } else {
            self.other_ports += p.count;
        }
    }

    pub fn add_pod(&mut self, pod: &str, strings: &mut Strings) {
        if let Some(id) = strings.get(pod)
            && self.pods.contains(&id)
        {
            return;
        }
        if self.pods.len() < MAX_PODS
            && let Some(id) = strings.intern(pod)
        {
            self.pods.push(id);
            return;
        }
        let others = self.other_pods.get_or_insert_default();
        let hash = pod_hash(pod);
        if let Err(at) = others.hashes.binary_search(&hash)
            && others.hashes.len() < MAX_OTHER_PODS
        {
            others.hashes.insert(at, hash);
        }
    }

    pub fn other_pods(&self) -> u64 {
        self.other_pods.as_ref().map_or(0, |o| o.count())
    }
}

/// The pods of an edge past the listed ones.
#[derive(Default)]
pub(super) struct OtherPods {
    /// Their names' hashes, sorted.
    pub hashes: Vec<u32>,
    /// How many a snapshot said there were (their names are not kept).
    pub restored: u64,
}

impl OtherPods {
    fn count(&self) -> u64 {
        (self.hashes.len() as u64).max(self.restored)
    }
}

/// Distinct unlisted pods counted per edge at most; past it the count stays there.
const MAX_OTHER_PODS: usize = 4096;

/// A pod name's hash for counting unlisted pods: fixed, so counts do not vary between runs.
fn pod_hash(pod: &str) -> u32 {
    pod.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

pub(super) fn bit(index: u8) -> u8 {
    1 << index
}
