//! The deduplicated inventory: one entry per (source, destination, port, protocol), with
//! counts and first/last seen. Bounded: once full, new keys are refused and counted.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::{Endpoint, Fact, Observation, Protocol, SourceKind, Verdict};

/// Who made the connection: the pod when known, else its IP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKey {
    Pod { namespace: String, pod: String },
    Ip(IpAddr),
    Unknown,
}

/// The destination: its first external name when it has one, else its IP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestKey {
    Name(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub dst: DestKey,
    pub port: Option<u16>,
    pub proto: Option<Protocol>,
    pub src: SourceKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub src: Endpoint,
    pub names: BTreeSet<String>,
    pub ips: BTreeSet<IpAddr>,
    pub count: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    pub evidence: BTreeSet<SourceKind>,
    /// Verdicts other than forwarded (Hubble): attempts a policy dropped, for example.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub verdicts: BTreeSet<Verdict>,
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

/// Keys are hashed with foldhash: SipHash measured 11% of the whole stage, and foldhash's
/// per-process seed still keeps crafted names from colliding on purpose.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub struct Inventory {
    entries: Map<Key, Entry>,
    /// Ids of recent observation records, so a redelivered record is counted once.
    recent: RecentIds,
    /// Keys changed since the last [`Inventory::take_changed`], each once.
    changed: Vec<Key>,
    changed_set: HashSet<Key, foldhash::fast::RandomState>,
    max_entries: usize,
}

impl Inventory {
    /// At most `max_entries` entries; the last `dedupe_window` observation ids (at least)
    /// are remembered.
    pub fn new(max_entries: usize, dedupe_window: usize) -> Self {
        Inventory {
            entries: Map::default(),
            recent: RecentIds::new(dedupe_window),
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

    /// False when the observation record `id` was seen within the dedupe window.
    pub fn first_sighting(&mut self, id: u128) -> bool {
        self.recent.insert(id)
    }

    /// Counts `obs`; with `track`, remembers the key so sinks hear of the change.
    pub fn record(&mut self, obs: Observation, track: bool) -> (Recorded, Option<Key>) {
        let (key, seen) = split(obs);
        if let Some(e) = self.entries.get_mut(&key) {
            merge(e, seen);
            if track && self.changed_set.insert(key.clone()) {
                self.changed.push(key);
            }
            return (Recorded::Updated, None);
        }
        if self.entries.len() >= self.max_entries {
            return (Recorded::Full, None);
        }
        // The key's own name goes in once, here; later updates of the entry carry it too.
        let names = match &key.dst {
            DestKey::Name(name) if !name.is_empty() => BTreeSet::from([name.clone()]),
            _ => BTreeSet::new(),
        };
        let mut entry = Entry {
            src: Endpoint::default(),
            names,
            ips: BTreeSet::new(),
            count: 0,
            first_seen: seen.time,
            last_seen: seen.time,
            evidence: BTreeSet::new(),
            verdicts: BTreeSet::new(),
        };
        merge(&mut entry, seen);
        self.entries.insert(key.clone(), entry);
        (Recorded::New, track.then_some(key))
    }

    /// Puts back entries of an earlier run (a snapshot); returns how many did not fit.
    pub fn restore(&mut self, entries: Vec<(Key, Entry)>) -> usize {
        let mut left_out = 0;
        for (key, entry) in entries {
            if self.entries.len() >= self.max_entries {
                left_out += 1;
            } else {
                self.entries.insert(key, entry);
            }
        }
        left_out
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

/// A bounded memory of ids: two generations, the older dropped when the newer fills, so the
/// last `window / 2` to `window` ids are always remembered in O(1) per id.
struct RecentIds {
    current: HashSet<u128, foldhash::fast::RandomState>,
    previous: HashSet<u128, foldhash::fast::RandomState>,
    generation: usize,
}

impl RecentIds {
    fn new(window: usize) -> Self {
        RecentIds {
            current: Default::default(),
            previous: Default::default(),
            generation: (window / 2).max(1),
        }
    }

    /// True when `id` is new.
    fn insert(&mut self, id: u128) -> bool {
        if self.previous.contains(&id) || !self.current.insert(id) {
            return false;
        }
        if self.current.len() >= self.generation {
            self.previous = std::mem::take(&mut self.current);
        }
        true
    }
}

/// What an observation adds to its entry besides the key.
struct Seen {
    time: OffsetDateTime,
    kind: SourceKind,
    src: Endpoint,
    /// Names besides the one in the key.
    more_names: Vec<String>,
    ip: Option<IpAddr>,
    verdict: Option<Verdict>,
}

/// Moves the observation's strings into its key instead of copying them.
fn split(obs: Observation) -> (Key, Seen) {
    let Observation {
        time,
        kind,
        src,
        fact,
        verdict,
    } = obs;
    let (dst, port, proto, more_names, ip) = match fact {
        Fact::Dns { qname } => (DestKey::Name(qname), None, None, Vec::new(), None),
        Fact::Connection {
            dst_ip,
            dst_port,
            proto,
            mut names,
        } => {
            let dst = match (names.is_empty(), dst_ip) {
                (false, _) => DestKey::Name(names.remove(0)),
                (true, Some(ip)) => DestKey::Ip(ip),
                (true, None) => DestKey::Name(String::new()),
            };
            (dst, dst_port, Some(proto), names, dst_ip)
        }
    };
    let src_key = match (&src.namespace, &src.pod, src.ip) {
        (Some(ns), Some(pod), _) => SourceKey::Pod {
            namespace: ns.clone(),
            pod: pod.clone(),
        },
        (_, _, Some(ip)) => SourceKey::Ip(ip),
        _ => SourceKey::Unknown,
    };
    let key = Key {
        dst,
        port,
        proto,
        src: src_key,
    };
    let seen = Seen {
        time,
        kind,
        src,
        more_names,
        ip,
        verdict,
    };
    (key, seen)
}

fn merge(e: &mut Entry, seen: Seen) {
    e.count += 1;
    e.first_seen = e.first_seen.min(seen.time);
    e.last_seen = e.last_seen.max(seen.time);
    e.evidence.insert(seen.kind);
    e.verdicts.extend(seen.verdict);
    e.names.extend(seen.more_names);
    if let Some(ip) = seen.ip {
        e.ips.insert(ip);
    }
    // Later evidence may know more about the source than the first did.
    let s = seen.src;
    for (have, new) in [
        (&mut e.src.namespace, s.namespace),
        (&mut e.src.pod, s.pod),
        (&mut e.src.workload, s.workload),
        (&mut e.src.workload_kind, s.workload_kind),
    ] {
        if have.is_none() {
            *have = new;
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
            verdict: None,
        }
    }

    #[test]
    fn dedups_counts_and_bounds() {
        let mut inv = Inventory::new(2, 10);
        for (client, name, secs, track, expected) in [
            ("10.0.0.1", "a.com", 5, true, Recorded::New),
            ("10.0.0.1", "a.com", 3, true, Recorded::Updated),
            ("10.0.0.1", "a.com", 9, true, Recorded::Updated),
            ("10.0.0.2", "a.com", 1, false, Recorded::New),
            ("10.0.0.3", "b.com", 1, true, Recorded::Full),
        ] {
            assert_eq!(inv.record(dns(client, name, secs), track).0, expected);
        }
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

    #[test]
    fn remembers_a_window_of_ids() {
        let mut inv = Inventory::new(1, 4);
        assert!(inv.first_sighting(1));
        assert!(!inv.first_sighting(1));
        for id in 2..=3 {
            assert!(inv.first_sighting(id));
        }
        // 1 and 2 rotated into the previous generation, still remembered; then forgotten.
        assert!(!inv.first_sighting(2));
        for id in 4..=7 {
            assert!(inv.first_sighting(id));
        }
        assert!(inv.first_sighting(1));
    }
}
