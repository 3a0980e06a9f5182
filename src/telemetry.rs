//! Per-component self-counters (received, emitted, internal, skipped, malformed, dropped, with
//! reasons), shared by the pipeline and whatever exports them, and a rate-limited warning.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Why a line or an event did not become an inventory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// A record of an external destination, counted in the inventory.
    Emitted,
    /// Counted in the inventory on its destination's "other sources" edge: edges were full.
    Folded,
    /// A record of an internal destination.
    Internal,
    /// A line the format says is not a record (banners, inbound, NXDOMAIN...).
    Skipped,
    /// A line that should have been a record and was not.
    Malformed,
    /// A valid external record lost to a limit (full inventory, closed sink).
    Dropped,
}

/// Counters of one component. Updated once per batch from a local [`Tally`].
#[derive(Debug, Default)]
pub struct ComponentStats {
    pub name: String,
    pub kind: &'static str,
    received: AtomicU64,
    emitted: AtomicU64,
    folded: AtomicU64,
    internal: AtomicU64,
    skipped: AtomicU64,
    malformed: AtomicU64,
    dropped: AtomicU64,
    reasons: Mutex<BTreeMap<&'static str, u64>>,
}

/// A snapshot of counters, in the `stats` shape of the JSON output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub lines: u64,
    pub records: u64,
    pub skipped: u64,
    pub malformed: u64,
    pub internal: u64,
    /// Records counted on their destination's "other sources" edge (edges were full).
    pub folded: u64,
    pub dropped: u64,
}

impl ComponentStats {
    pub fn new(name: impl Into<String>, kind: &'static str) -> Arc<Self> {
        Arc::new(ComponentStats {
            name: name.into(),
            kind,
            ..Default::default()
        })
    }

    pub fn add(&self, tally: &mut Tally) {
        self.received.fetch_add(tally.received, Relaxed);
        self.emitted.fetch_add(tally.emitted, Relaxed);
        self.folded.fetch_add(tally.folded, Relaxed);
        self.internal.fetch_add(tally.internal, Relaxed);
        self.skipped.fetch_add(tally.skipped, Relaxed);
        self.malformed.fetch_add(tally.malformed, Relaxed);
        self.dropped.fetch_add(tally.dropped, Relaxed);
        if !tally.reasons.is_empty() {
            let mut reasons = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
            for (reason, n) in tally.reasons.drain(..) {
                *reasons.entry(reason).or_default() += n;
            }
        }
        *tally = Tally::default();
    }

    pub fn totals(&self) -> Totals {
        let emitted = self.emitted.load(Relaxed);
        let folded = self.folded.load(Relaxed);
        let internal = self.internal.load(Relaxed);
        let dropped = self.dropped.load(Relaxed);
        Totals {
            lines: self.received.load(Relaxed),
            records: emitted + folded + internal + dropped,
            skipped: self.skipped.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            internal,
            folded,
            dropped,
        }
    }

    /// Discard counts by reason (`oversize`, `syntax`, `nxdomain`, ...).
    pub fn reasons(&self) -> BTreeMap<&'static str, u64> {
        self.reasons
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, o: Totals) {
        self.lines += o.lines;
        self.records += o.records;
        self.skipped += o.skipped;
        self.malformed += o.malformed;
        self.internal += o.internal;
        self.folded += o.folded;
        self.dropped += o.dropped;
    }
}

/// Local, non-atomic counts of one batch.
#[derive(Debug, Default)]
pub struct Tally {
    pub received: u64,
    emitted: u64,
    folded: u64,
    internal: u64,
    skipped: u64,
    malformed: u64,
    dropped: u64,
    reasons: Vec<(&'static str, u64)>,
}

impl Tally {
    /// A tally of `n` received events, to be given their outcomes.
    pub fn received(n: u64) -> Self {
        Tally {
            received: n,
            ..Tally::default()
        }
    }

    pub fn count(&mut self, outcome: Outcome, reason: Option<&'static str>) {
        self.count_n(outcome, reason, 1);
    }

    /// Counts `n` events with one outcome.
    pub fn count_n(&mut self, outcome: Outcome, reason: Option<&'static str>, n: u64) {
        if n == 0 {
            return;
        }
        let field = match outcome {
            Outcome::Emitted => &mut self.emitted,
            Outcome::Folded => &mut self.folded,
            Outcome::Internal => &mut self.internal,
            Outcome::Skipped => &mut self.skipped,
            Outcome::Malformed => &mut self.malformed,
            Outcome::Dropped => &mut self.dropped,
        };
        *field += n;
        if let Some(reason) = reason {
            match self.reasons.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, seen)) => *seen += n,
                None => self.reasons.push((reason, n)),
            }
        }
    }
}

/// Logs the 1st, 2nd, 4th, 8th... occurrence of a problem: visible at once, never a flood.
#[derive(Debug, Default)]
pub struct RateLimitedWarn {
    seen: u64,
}

impl RateLimitedWarn {
    /// True when this occurrence should be logged; the caller includes [`Self::seen`].
    pub fn should_log(&mut self) -> bool {
        self.seen += 1;
        self.seen.is_power_of_two()
    }

    pub fn seen(&self) -> u64 {
        self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_into_component() {
        let c = ComponentStats::new("file", "source");
        let mut t = Tally::received(4);
        t.count(Outcome::Emitted, None);
        t.count(Outcome::Internal, None);
        t.count(Outcome::Malformed, Some("syntax"));
        t.count(Outcome::Malformed, Some("syntax"));
        c.add(&mut t);
        assert_eq!(t.received, 0);
        let totals = c.totals();
        assert_eq!((totals.lines, totals.records, totals.malformed), (4, 2, 2));
        assert_eq!(c.reasons().get("syntax"), Some(&2));
    }

    #[test]
    fn warn_rate() {
        let mut w = RateLimitedWarn::default();
        let logged = (0..100).filter(|_| w.should_log()).count();
        assert_eq!(logged, 7);
    }
}
