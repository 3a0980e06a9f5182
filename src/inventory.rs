//! The deduplicated inventory: one entry per (source, destination, port, protocol), with
//! counts and first/last seen. Bounded: once full, new keys are refused and counted.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use time::OffsetDateTime;

use crate::event::{Endpoint, Fact, Observation, Protocol, SourceKind};

/// Who made the connection: the pod when known, else its IP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKey {
    Pod { namespace: String, pod: String },
    Ip(IpAddr),
    Unknown,
}

/// The destination: its first external name when it has one, else its IP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DestKey {
    Name(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub dst: DestKey,
    pub port: Option<u16>,
    pub proto: Option<Protocol>,
    pub src: SourceKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub src: Endpoint,
    pub names: BTreeSet<String>,
    pub ips: BTreeSet<IpAddr>,
    pub count: u64,
    pub first_seen: OffsetDateTime,
    pub last_seen: OffsetDateTime,
    pub evidence: BTreeSet<SourceKind>,
}

/// A change sinks are told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// A destination seen for the first time, sent at once.
    New,
    /// Counts or last-seen of a known destination, coalesced per interval.
    Changed,
}

#[derive(Debug, Clone)]
pub struct Update {
    pub kind: UpdateKind,
    pub key: Key,
    pub entry: Entry,
}

/// What recording one observation did.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    New,
    Updated,
    /// The inventory is at its bound; the observation was dropped.
    Full,
}

pub struct Inventory {
    entries: HashMap<Key, Entry>,
    /// Keys changed since the last [`Inventory::take_changed`], each once.
    changed: Vec<Key>,
    changed_set: std::collections::HashSet<Key>,
    max_entries: usize,
}

impl Inventory {
    pub fn new(max_entries: usize) -> Self {
        Inventory {
            entries: HashMap::new(),
            changed: Vec::new(),
            changed_set: Default::default(),
            max_entries,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Counts `obs`; with `track`, remembers the key so sinks hear of the change.
    pub fn record(&mut self, obs: Observation, track: bool) -> (Recorded, Option<Key>) {
        let (key, names, ip) = key_of(&obs);
        if let Some(e) = self.entries.get_mut(&key) {
            merge(e, &obs, names, ip);
            if track && self.changed_set.insert(key.clone()) {
                self.changed.push(key);
            }
            return (Recorded::Updated, None);
        }
        if self.entries.len() >= self.max_entries {
            return (Recorded::Full, None);
        }
        let mut entry = Entry {
            src: obs.src.clone(),
            names: BTreeSet::new(),
            ips: BTreeSet::new(),
            count: 0,
            first_seen: obs.time,
            last_seen: obs.time,
            evidence: BTreeSet::new(),
        };
        merge(&mut entry, &obs, names, ip);
        self.entries.insert(key.clone(), entry);
        (Recorded::New, track.then_some(key))
    }

    /// A copy of one entry for sinks.
    pub fn update(&self, kind: UpdateKind, key: Key) -> Option<Update> {
        let entry = self.entries.get(&key)?.clone();
        Some(Update { kind, key, entry })
    }

    /// Changed entries since the last call, in the order they first changed.
    pub fn take_changed(&mut self) -> Vec<Update> {
        self.changed_set.clear();
        std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|k| self.update(UpdateKind::Changed, k))
            .collect()
    }

    /// All entries in a deterministic order: destination, port, protocol, source.
    pub fn sorted(&self) -> Vec<(&Key, &Entry)> {
        let mut all: Vec<_> = self.entries.iter().collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }
}

fn key_of(obs: &Observation) -> (Key, &[String], Option<IpAddr>) {
    let src = match (&obs.src.namespace, &obs.src.pod, obs.src.ip) {
        (Some(ns), Some(pod), _) => SourceKey::Pod {
            namespace: ns.clone(),
            pod: pod.clone(),
        },
        (_, _, Some(ip)) => SourceKey::Ip(ip),
        _ => SourceKey::Unknown,
    };
    let (dst, port, proto, names, ip) = match &obs.fact {
        Fact::Dns { qname } => (
            DestKey::Name(qname.clone()),
            None,
            None,
            std::slice::from_ref(qname),
            None,
        ),
        Fact::Connection {
            dst_ip,
            dst_port,
            proto,
            names,
        } => {
            let dst = match (names.first(), dst_ip) {
                (Some(name), _) => DestKey::Name(name.clone()),
                (None, Some(ip)) => DestKey::Ip(*ip),
                (None, None) => DestKey::Name(String::new()),
            };
            (dst, *dst_port, Some(*proto), names.as_slice(), *dst_ip)
        }
    };
    (
        Key {
            dst,
            port,
            proto,
            src,
        },
        names,
        ip,
    )
}

fn merge(e: &mut Entry, obs: &Observation, names: &[String], ip: Option<IpAddr>) {
    e.count += 1;
    e.first_seen = e.first_seen.min(obs.time);
    e.last_seen = e.last_seen.max(obs.time);
    e.evidence.insert(obs.kind);
    for n in names {
        if !e.names.contains(n) {
            e.names.insert(n.clone());
        }
    }
    if let Some(ip) = ip {
        e.ips.insert(ip);
    }
    // Later evidence may know more about the source than the first did.
    let s = &obs.src;
    for (have, new) in [
        (&mut e.src.namespace, &s.namespace),
        (&mut e.src.pod, &s.pod),
        (&mut e.src.workload, &s.workload),
    ] {
        if have.is_none() {
            have.clone_from(new);
        }
    }
    e.src.ip = e.src.ip.or(s.ip);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(client: &str, name: &str, secs: i64) -> Observation {
        Observation {
            time: OffsetDateTime::from_unix_timestamp(secs).unwrap(),
            kind: SourceKind::Coredns,
            src: Endpoint {
                ip: Some(client.parse().unwrap()),
                ..Default::default()
            },
            fact: Fact::Dns { qname: name.into() },
        }
    }

    #[test]
    fn dedups_counts_and_bounds() {
        let mut inv = Inventory::new(2);
        assert_eq!(
            inv.record(dns("10.0.0.1", "a.com", 5), true).0,
            Recorded::New
        );
        assert_eq!(
            inv.record(dns("10.0.0.1", "a.com", 3), true).0,
            Recorded::Updated
        );
        assert_eq!(
            inv.record(dns("10.0.0.1", "a.com", 9), true).0,
            Recorded::Updated
        );
        assert_eq!(
            inv.record(dns("10.0.0.2", "a.com", 1), false).0,
            Recorded::New
        );
        assert_eq!(
            inv.record(dns("10.0.0.3", "b.com", 1), true).0,
            Recorded::Full
        );
        let all = inv.sorted();
        assert_eq!(all.len(), 2);
        let (_, e) = all[0];
        assert_eq!(e.count, 3);
        assert_eq!(e.first_seen.unix_timestamp(), 3);
        assert_eq!(e.last_seen.unix_timestamp(), 9);
        let changed = inv.take_changed();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].entry.count, 3);
        assert!(inv.take_changed().is_empty());
    }
}
