//! The deduplicated inventory: one entry per (source, destination, port, protocol), with
//! counts and first/last seen. Bounded: once full, new keys are refused and counted.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::{Endpoint, Fact, Observation, Protocol, SourceKind, Verdict};
use crate::output::{EntryView, SourceDoc};

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

/// Every string a key or an entry holds, once; keys and entries hold their ids. A lookup
/// then hashes and compares a few words in the table's own memory instead of following
/// string pointers (the inventory's largest cost was those cache misses).
#[derive(Default)]
struct Strings {
    ids: Map<Arc<str>, u32>,
    all: Vec<Arc<str>>,
}

impl Strings {
    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The id of `s`, added when new; none once ids run out.
    fn intern(&mut self, s: &str) -> Option<u32> {
        if let Some(id) = self.get(s) {
            return Some(id);
        }
        let id = u32::try_from(self.all.len()).ok()?;
        let s: Arc<str> = s.into();
        self.all.push(s.clone());
        self.ids.insert(s, id);
        Some(id)
    }

    fn str(&self, id: u32) -> &str {
        &self.all[id as usize]
    }
}

/// A [`Key`] with its strings interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Slot {
    dst: Dst,
    port: Option<u16>,
    proto: Option<Protocol>,
    src: Src,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Dst {
    Name(u32),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Src {
    Pod { namespace: u32, pod: u32 },
    Ip(IpAddr),
    Unknown,
}

/// An [`Entry`] as the inventory keeps it: strings as ids, the evidence and verdict sets as
/// bits, the first address inline (most entries only ever have one).
struct Counted {
    src: Source,
    /// Names besides the key's own.
    names: Vec<u32>,
    ip: Option<IpAddr>,
    more_ips: BTreeSet<IpAddr>,
    count: u64,
    first_seen: OffsetDateTime,
    last_seen: OffsetDateTime,
    evidence: u8,
    verdicts: u8,
}

impl Counted {
    /// Nothing counted yet.
    fn new(first_seen: OffsetDateTime, last_seen: OffsetDateTime) -> Self {
        Counted {
            src: Source::default(),
            names: Vec::new(),
            ip: None,
            more_ips: BTreeSet::new(),
            count: 0,
            first_seen,
            last_seen,
            evidence: 0,
            verdicts: 0,
        }
    }
}

/// An [`Endpoint`] with its strings interned.
#[derive(Default)]
struct Source {
    namespace: Option<u32>,
    pod: Option<u32>,
    workload: Option<u32>,
    workload_kind: Option<u32>,
    ip: Option<IpAddr>,
}

pub struct Inventory {
    strings: Strings,
    entries: Map<Slot, Counted>,
    /// Ids of recent observation records, so a redelivered record is counted once.
    recent: RecentIds,
    /// Entries changed since the last [`Inventory::take_changed`], each once.
    changed: Vec<Slot>,
    changed_set: HashSet<Slot, foldhash::fast::RandomState>,
    max_entries: usize,
}

impl Inventory {
    /// At most `max_entries` entries; the last `dedupe_window` observation ids (at least)
    /// are remembered.
    pub fn new(max_entries: usize, dedupe_window: usize) -> Self {
        Inventory {
            strings: Strings::default(),
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

    /// Counts `obs`; with `track`, remembers the entry so sinks hear of the change, and
    /// returns a new entry's update.
    pub fn record(&mut self, obs: Observation, track: bool) -> (Recorded, Option<Update>) {
        let (key, seen) = split(obs);
        if let Some(slot) = self.find(&key, &seen.src)
            && let Some(e) = self.entries.get_mut(&slot)
        {
            merge(e, seen, &mut self.strings);
            if track && self.changed_set.insert(slot) {
                self.changed.push(slot);
            }
            return (Recorded::Updated, None);
        }
        if self.entries.len() >= self.max_entries {
            return (Recorded::Full, None);
        }
        let Some(slot) = self.intern(&key, &seen.src) else {
            return (Recorded::Full, None);
        };
        let mut entry = Counted::new(seen.time, seen.time);
        merge(&mut entry, seen, &mut self.strings);
        let update = track.then(|| Update {
            kind: UpdateKind::New,
            key: self.key(&slot),
            entry: self.entry(&slot, &entry),
        });
        self.entries.insert(slot, entry);
        (Recorded::New, update)
    }

    /// The slot of `key` when all its strings are known (else it has no entry).
    fn find(&self, key: &KeyParts, src: &Endpoint) -> Option<Slot> {
        slot(key, src, |s| self.strings.get(s))
    }

    /// The slot of `key`, its strings added; none once ids run out.
    fn intern(&mut self, key: &KeyParts, src: &Endpoint) -> Option<Slot> {
        slot(key, src, |s| self.strings.intern(s))
    }

    fn key(&self, slot: &Slot) -> Key {
        let s = &self.strings;
        Key {
            dst: match slot.dst {
                Dst::Name(id) => DestKey::Name(s.str(id).to_owned()),
                Dst::Ip(ip) => DestKey::Ip(ip),
            },
            port: slot.port,
            proto: slot.proto,
            src: match slot.src {
                Src::Pod { namespace, pod } => SourceKey::Pod {
                    namespace: s.str(namespace).to_owned(),
                    pod: s.str(pod).to_owned(),
                },
                Src::Ip(ip) => SourceKey::Ip(ip),
                Src::Unknown => SourceKey::Unknown,
            },
        }
    }

    fn entry(&self, slot: &Slot, c: &Counted) -> Entry {
        let e = self.borrowed(slot, c);
        let source = e.source();
        let owned = |s: Option<&str>| s.map(str::to_owned);
        Entry {
            src: Endpoint {
                namespace: owned(source.namespace),
                pod: owned(source.pod),
                workload: owned(source.workload),
                workload_kind: owned(source.workload_kind),
                ip: source.ip,
            },
            names: e.names().map(str::to_owned).collect(),
            ips: e.ips().collect(),
            count: c.count,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            evidence: e.evidence().collect(),
            verdicts: e.verdicts().collect(),
        }
    }

    fn borrowed<'a>(&'a self, slot: &'a Slot, c: &'a Counted) -> EntryRef<'a> {
        EntryRef {
            strings: &self.strings,
            slot,
            c,
        }
    }

    /// Puts back entries of an earlier run (a snapshot); returns how many did not fit.
    pub fn restore(&mut self, entries: Vec<(Key, Entry)>) -> usize {
        let mut left_out = 0;
        for (key, entry) in entries {
            let (parts, src) = (KeyParts::of(key), entry.src);
            let slot = if self.entries.len() < self.max_entries {
                self.intern(&parts, &src)
            } else {
                None
            };
            let Some(slot) = slot else {
                left_out += 1;
                continue;
            };
            let own = match &parts.dst {
                DestKey::Name(name) => Some(name.as_str()),
                DestKey::Ip(_) => None,
            };
            let mut counted = Counted::new(entry.first_seen, entry.last_seen);
            counted.count = entry.count;
            counted.evidence = entry.evidence.iter().fold(0, |b, k| b | bit(*k as u8));
            counted.verdicts = entry.verdicts.iter().fold(0, |b, v| b | bit(*v as u8));
            for name in entry.names.iter().filter(|n| Some(n.as_str()) != own) {
                counted.names.extend(self.strings.intern(name));
            }
            for ip in entry.ips {
                add_ip(&mut counted, ip);
            }
            add_source(&mut counted.src, src, &mut self.strings);
            self.entries.insert(slot, counted);
        }
        left_out
    }

    /// Changed entries since the last call, in the order they first changed.
    pub fn take_changed(&mut self) -> Vec<Update> {
        self.changed_set.clear();
        let changed = std::mem::take(&mut self.changed);
        changed
            .iter()
            .filter_map(|slot| {
                let c = self.entries.get(slot)?;
                Some(Update {
                    kind: UpdateKind::Changed,
                    key: self.key(slot),
                    entry: self.entry(slot, c),
                })
            })
            .collect()
    }

    /// All entries, borrowed, in the order of their keys: destination, port, protocol,
    /// source.
    pub fn sorted(&self) -> Vec<EntryRef<'_>> {
        // Sorted by their strings' ranks: comparing strings was most of the time.
        let mut by_text: Vec<u32> = (0..self.strings.all.len() as u32).collect();
        by_text.sort_unstable_by_key(|&id| self.strings.str(id));
        let mut rank = vec![0; by_text.len()];
        for (r, id) in by_text.into_iter().enumerate() {
            rank[id as usize] = r;
        }
        // The order of `Key`'s derived `Ord`: names before IPs, pods before IPs before none.
        let order = |slot: &Slot| {
            let dst = match slot.dst {
                Dst::Name(id) => (0, rank[id as usize], None),
                Dst::Ip(ip) => (1, 0, Some(ip)),
            };
            let src = match slot.src {
                Src::Pod { namespace, pod } => {
                    (0, rank[namespace as usize], rank[pod as usize], None)
                }
                Src::Ip(ip) => (1, 0, 0, Some(ip)),
                Src::Unknown => (2, 0, 0, None),
            };
            (dst, slot.port, slot.proto, src)
        };
        let mut slots: Vec<_> = self
            .entries
            .iter()
            .map(|(slot, c)| (order(slot), slot, c))
            .collect();
        slots.sort_unstable_by_key(|&(order, _, _)| order);
        slots
            .into_iter()
            .map(|(_, slot, c)| self.borrowed(slot, c))
            .collect()
    }

    /// [`Self::sorted`], copied.
    #[cfg(test)]
    fn owned(&self) -> Vec<(Key, Entry)> {
        self.sorted()
            .into_iter()
            .map(|e| (self.key(e.slot), self.entry(e.slot, e.c)))
            .collect()
    }
}

/// An entry borrowed from the inventory, for documents built without copying its strings.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    strings: &'a Strings,
    slot: &'a Slot,
    c: &'a Counted,
}

impl<'a> EntryView<'a> for EntryRef<'a> {
    fn same_destination(&self, other: &Self) -> bool {
        let (a, b) = (self.slot, other.slot);
        a.dst == b.dst && a.port == b.port && a.proto == b.proto
    }
    fn port(&self) -> Option<u16> {
        self.slot.port
    }
    fn protocol(&self) -> Option<Protocol> {
        self.slot.proto
    }
    fn names(&self) -> impl Iterator<Item = &'a str> {
        let strings = self.strings;
        let own = match self.slot.dst {
            Dst::Name(id) if !strings.str(id).is_empty() => Some(id),
            _ => None,
        };
        own.into_iter()
            .chain(self.c.names.iter().copied())
            .map(|id| strings.str(id))
    }
    fn ips(&self) -> impl Iterator<Item = IpAddr> {
        self.c.ip.into_iter().chain(self.c.more_ips.iter().copied())
    }
    fn source(&self) -> SourceDoc<'a> {
        let (s, src) = (self.strings, &self.c.src);
        let string = |id: Option<u32>| id.map(|id| s.str(id));
        SourceDoc {
            namespace: string(src.namespace),
            pod: string(src.pod),
            workload: string(src.workload),
            workload_kind: string(src.workload_kind),
            ip: src.ip,
        }
    }
    fn count(&self) -> u64 {
        self.c.count
    }
    fn first_seen(&self) -> OffsetDateTime {
        self.c.first_seen
    }
    fn last_seen(&self) -> OffsetDateTime {
        self.c.last_seen
    }
    fn evidence(&self) -> impl Iterator<Item = SourceKind> {
        let bits = self.c.evidence;
        SourceKind::ALL
            .into_iter()
            .filter(move |k| bits & bit(*k as u8) != 0)
    }
    fn verdicts(&self) -> impl Iterator<Item = Verdict> {
        let bits = self.c.verdicts;
        Verdict::ALL
            .into_iter()
            .filter(move |v| bits & bit(*v as u8) != 0)
    }
}

/// `key` and its source with their strings as `id` gives them.
fn slot(key: &KeyParts, src: &Endpoint, mut id: impl FnMut(&str) -> Option<u32>) -> Option<Slot> {
    let dst = match &key.dst {
        DestKey::Name(name) => Dst::Name(id(name)?),
        DestKey::Ip(ip) => Dst::Ip(*ip),
    };
    let src = match source(src) {
        SourceRef::Pod(ns, pod) => Src::Pod {
            namespace: id(ns)?,
            pod: id(pod)?,
        },
        SourceRef::Ip(ip) => Src::Ip(ip),
        SourceRef::Unknown => Src::Unknown,
    };
    Some(Slot {
        dst,
        port: key.port,
        proto: key.proto,
        src,
    })
}

fn bit(index: u8) -> u8 {
    1 << index
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

/// A key as an observation carries it: the destination moved out of it, the source still
/// in its endpoint.
struct KeyParts {
    dst: DestKey,
    port: Option<u16>,
    proto: Option<Protocol>,
}

impl KeyParts {
    fn of(key: Key) -> KeyParts {
        KeyParts {
            dst: key.dst,
            port: key.port,
            proto: key.proto,
        }
    }
}

enum SourceRef<'a> {
    Pod(&'a str, &'a str),
    Ip(IpAddr),
    Unknown,
}

/// Who the source is keyed by: the pod when known, else its IP.
fn source(src: &Endpoint) -> SourceRef<'_> {
    match (&src.namespace, &src.pod, src.ip) {
        (Some(ns), Some(pod), _) => SourceRef::Pod(ns, pod),
        (_, _, Some(ip)) => SourceRef::Ip(ip),
        _ => SourceRef::Unknown,
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

/// Moves the observation's destination name into its key instead of copying it.
fn split(obs: Observation) -> (KeyParts, Seen) {
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
    let key = KeyParts { dst, port, proto };
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

fn add_ip(e: &mut Counted, ip: IpAddr) {
    match e.ip {
        None => e.ip = Some(ip),
        Some(first) if first == ip => {}
        Some(_) => {
            e.more_ips.insert(ip);
        }
    }
}

fn merge(e: &mut Counted, seen: Seen, strings: &mut Strings) {
    e.count += 1;
    e.first_seen = e.first_seen.min(seen.time);
    e.last_seen = e.last_seen.max(seen.time);
    e.evidence |= bit(seen.kind as u8);
    if let Some(v) = seen.verdict {
        e.verdicts |= bit(v as u8);
    }
    for name in &seen.more_names {
        if let Some(id) = strings.intern(name)
            && !e.names.contains(&id)
        {
            e.names.push(id);
        }
    }
    if let Some(ip) = seen.ip {
        add_ip(e, ip);
    }
    add_source(&mut e.src, seen.src, strings);
}

/// Fills what the entry did not know of its source yet: later evidence may know more.
fn add_source(have: &mut Source, new: Endpoint, strings: &mut Strings) {
    for (have, new) in [
        (&mut have.namespace, new.namespace),
        (&mut have.pod, new.pod),
        (&mut have.workload, new.workload),
        (&mut have.workload_kind, new.workload_kind),
    ] {
        if have.is_none()
            && let Some(new) = new
        {
            *have = strings.intern(&new);
        }
    }
    have.ip = have.ip.or(new.ip);
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
        let all = inv.owned();
        assert_eq!(all.len(), 2);
        let (_, e) = &all[0];
        assert_eq!(e.count, 3);
        assert_eq!(e.first_seen.unix_timestamp(), 3);
        assert_eq!(e.last_seen.unix_timestamp(), 9);
        let changed = inv.take_changed();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].entry.count, 3);
        assert!(inv.take_changed().is_empty());
    }

    #[test]
    fn entries_keep_names_addresses_evidence_and_verdicts_and_restore_as_they_were() {
        let conn = |ip: &str, names: &[&str], kind, verdict| Observation {
            time: OffsetDateTime::from_unix_timestamp(7).unwrap(),
            kind,
            src: Endpoint {
                namespace: Some("shop".into()),
                pod: Some("web-1".into()),
                ip: Some("10.244.0.5".parse().unwrap()),
                ..Default::default()
            },
            fact: Fact::Connection {
                dst_ip: Some(ip.parse().unwrap()),
                dst_port: Some(443),
                proto: Protocol::Tcp,
                names: names.iter().map(|n| n.to_string()).collect(),
            },
            verdict,
        };
        let mut inv = Inventory::new(10, 10);
        let (recorded, update) = inv.record(
            conn(
                "198.51.100.1",
                &["api.example.com"],
                SourceKind::Capture,
                None,
            ),
            true,
        );
        assert_eq!(recorded, Recorded::New);
        assert_eq!(
            update.unwrap().entry.names,
            BTreeSet::from(["api.example.com".into()])
        );
        for (ip, names, kind, verdict) in [
            (
                "198.51.100.2",
                ["api.example.com", "cdn.example.net"],
                SourceKind::Hubble,
                Some(Verdict::Dropped),
            ),
            (
                "198.51.100.1",
                ["api.example.com", "cdn.example.net"],
                SourceKind::Capture,
                None,
            ),
        ] {
            assert_eq!(
                inv.record(conn(ip, &names, kind, verdict), false).0,
                Recorded::Updated
            );
        }
        let all = inv.owned();
        let (key, e) = &all[0];
        assert_eq!(
            key.src,
            SourceKey::Pod {
                namespace: "shop".into(),
                pod: "web-1".into()
            }
        );
        assert_eq!(e.count, 3);
        assert_eq!(e.names.len(), 2);
        assert_eq!(e.ips.len(), 2);
        assert_eq!(
            e.evidence,
            BTreeSet::from([SourceKind::Hubble, SourceKind::Capture])
        );
        assert_eq!(e.verdicts, BTreeSet::from([Verdict::Dropped]));
        let mut restored = Inventory::new(10, 10);
        assert_eq!(restored.restore(all.clone()), 0);
        assert_eq!(restored.owned(), all);
    }

    #[test]
    fn sorted_follows_the_order_of_keys() {
        let mut inv = Inventory::new(100, 10);
        let names = ["b.example.com", "a.example.com", "10-0-0-1.example.org", ""];
        for (i, name) in names.iter().enumerate() {
            for (ns, pod, ip) in [
                (Some("shop"), Some("web"), None),
                (Some("ads"), Some("web"), None),
                (None, None, Some("10.244.0.9")),
                (None, None, Some("10.244.0.10")),
                (None, None, None),
            ] {
                let src = Endpoint {
                    namespace: ns.map(Into::into),
                    pod: pod.map(Into::into),
                    ip: ip.map(|ip| ip.parse().unwrap()),
                    ..Default::default()
                };
                for port in [Some(443), None, Some(80)] {
                    let names = if name.is_empty() {
                        vec![]
                    } else {
                        vec![name.to_string()]
                    };
                    let ip = format!("198.51.100.{}", 9 - i);
                    inv.record(
                        Observation {
                            time: OffsetDateTime::UNIX_EPOCH,
                            kind: SourceKind::Capture,
                            src: src.clone(),
                            fact: Fact::Connection {
                                dst_ip: Some(ip.parse().unwrap()),
                                dst_port: port,
                                proto: Protocol::Tcp,
                                names,
                            },
                            verdict: None,
                        },
                        false,
                    );
                }
            }
        }
        let keys: Vec<Key> = inv.owned().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), 60);
        assert!(keys.is_sorted());
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
