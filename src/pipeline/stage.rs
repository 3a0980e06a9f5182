//! The synchronous heart of the pipeline, free of I/O: for every line of a batch, unwrap the
//! container runtime framing, parse, judge, and count survivors in the inventory.

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

use super::{Batch, Outbox};
use crate::capture::finding::Finding;
use crate::egress::{Judge, Judgement, Times};
use crate::enrich::{NameCache, SharedPods, attribute, attribute_uid};
use crate::event::{Endpoint, Fact, Observation, SourceKind};
use crate::inventory::{Inventory, Recorded, Update};
use crate::parse::container::{Step, Unwrapper};
use crate::parse::prefix::{self, Writer};
use crate::parse::{self, Format, Parsed, Record};
use crate::telemetry::{ComponentStats, Outcome, RateLimitedWarn, Tally};
use crate::wire::{Stamped, evidence_id};

/// Parsing state of one stream of a source: a file, a connection, a run of a command.
/// Formats are detected, and CRI/docker chunks joined, per stream.
struct StreamState {
    /// With `Auto`, the format of the first line that parsed as a record.
    detected: Option<Format>,
    unwrapper: Unwrapper,
}

/// Per-source state: its streams and its counters.
pub struct SourceState {
    format: Format,
    streams: HashMap<u64, StreamState>,
    counts: Counts,
}

impl SourceState {
    pub fn new(format: Format, stats: Arc<ComponentStats>) -> Self {
        SourceState {
            format,
            streams: HashMap::new(),
            counts: Counts {
                stats,
                tally: Tally::default(),
                malformed_warn: RateLimitedWarn::default(),
            },
        }
    }
}

/// A source's counters, and its rate limit on warnings about malformed input.
struct Counts {
    stats: Arc<ComponentStats>,
    tally: Tally,
    malformed_warn: RateLimitedWarn,
}

impl Counts {
    /// Counts one received event's outcome; malformed input and a full inventory are
    /// logged, rate-limited.
    fn count(&mut self, full: &mut FullWarns, outcome: Outcome, reason: Option<&'static str>) {
        self.tally.received += 1;
        match (outcome, reason) {
            (Outcome::Malformed, Some(reason)) if self.malformed_warn.should_log() => {
                tracing::warn!(
                    source = %self.stats.name,
                    reason,
                    so_far = self.malformed_warn.seen(),
                    "malformed line skipped"
                );
            }
            (Outcome::Folded, _) if full.edges.should_log() => {
                tracing::warn!(
                    so_far = full.edges.seen(),
                    "inventory edges full (inventory.max_entries): counted on the destination's \
                     other-sources edge; the destination is kept"
                );
            }
            (Outcome::Dropped, Some("inventory_full")) if full.destinations.should_log() => {
                tracing::error!(
                    so_far = full.destinations.seen(),
                    "inventory destinations full (inventory.max_destinations): a NEW DESTINATION \
                     WAS DROPPED; raise inventory.max_destinations"
                );
            }
            _ => {}
        }
        self.tally.count(outcome, reason);
    }
}

/// Rate limits of the warnings that the inventory's bounds were reached.
#[derive(Default)]
struct FullWarns {
    edges: RateLimitedWarn,
    destinations: RateLimitedWarn,
}

/// What the sinks want from the stage besides the final inventory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wants {
    /// Inventory updates as they happen (`scan` only reads the final inventory).
    pub updates: bool,
    /// Every observation (a kafka sink with `observations_topic`).
    pub observations: bool,
}

pub struct Stage {
    judge: Judge,
    pods: Option<SharedPods>,
    names: NameCache,
    inventory: Inventory,
    sources: Vec<SourceState>,
    max_line: usize,
    wants: Wants,
    full_warn: FullWarns,
}

impl Stage {
    pub fn new(
        judge: Judge,
        pods: Option<SharedPods>,
        names: NameCache,
        inventory: Inventory,
        sources: Vec<SourceState>,
        max_line: usize,
        wants: Wants,
    ) -> Self {
        Stage {
            judge,
            pods,
            names,
            inventory,
            sources,
            max_line,
            wants,
            full_warn: FullWarns::default(),
        }
    }

    pub fn into_inventory(self) -> Inventory {
        self.inventory
    }

    /// Processes one batch; new destinations (and observations, when published) go to `out`.
    pub fn process(&mut self, batch: &Batch, out: &mut Outbox) {
        let Some(state) = self.sources.get_mut(batch.source) else {
            return;
        };
        let max_line = self.max_line;
        let stream = state
            .streams
            .entry(batch.stream.id)
            .or_insert_with(|| StreamState {
                detected: None,
                unwrapper: Unwrapper::new(max_line),
            });
        let mut ctx = LineCtx {
            judge: &self.judge,
            pods: self.pods.as_ref(),
            names: &mut self.names,
            origin: batch.stream.origin.as_deref(),
            inventory: &mut self.inventory,
            wants: self.wants,
            max_line: self.max_line,
            read_at: batch.read_at,
            out,
        };
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &batch.lines) {
            let line = &batch.lines[start..end];
            start = end + 1;
            if line.is_empty() {
                continue;
            }
            let (outcome, reason) = if line.len() > self.max_line {
                (Outcome::Malformed, Some("oversize"))
            } else {
                ctx.line(state.format, stream, line)
            };
            state.counts.count(&mut self.full_warn, outcome, reason);
        }
        for finding in &batch.findings {
            let (outcome, reason) = ctx.finding(finding);
            state.counts.count(&mut self.full_warn, outcome, reason);
        }
        if batch.end
            && let Some(mut stream) = state.streams.remove(&batch.stream.id)
        {
            let unterminated = stream.unwrapper.finish();
            state.counts.tally.received += unterminated;
            state.counts.tally.count_n(
                Outcome::Malformed,
                Some("unterminated_partial"),
                unterminated,
            );
        }
        state.counts.stats.add(&mut state.counts.tally);
    }

    /// Entries whose counts changed since the last call, for sinks.
    pub fn take_changed(&mut self) -> Vec<Update> {
        self.inventory.take_changed()
    }
}

/// Borrowed pieces of the stage one line needs next to its source's state.
struct LineCtx<'s> {
    judge: &'s Judge,
    pods: Option<&'s SharedPods>,
    names: &'s mut NameCache,
    /// The pod whose log file the lines come from, when the source knows it.
    origin: Option<&'s Endpoint>,
    inventory: &'s mut Inventory,
    wants: Wants,
    max_line: usize,
    read_at: OffsetDateTime,
    out: &'s mut Outbox,
}

impl LineCtx<'_> {
    fn line(
        &mut self,
        format: Format,
        state: &mut StreamState,
        line: &[u8],
    ) -> (Outcome, Option<&'static str>) {
        let (time, content) = match state.unwrapper.unwrap(line) {
            Step::Line { time, content } => (time, content),
            Step::Pending => return (Outcome::Skipped, Some("partial_chunk")),
            Step::Oversize => return (Outcome::Malformed, Some("oversize")),
            Step::Malformed => return (Outcome::Malformed, Some("container_wrapping")),
        };
        if content.len() > self.max_line {
            return (Outcome::Malformed, Some("oversize"));
        }
        // A collector's prefix (kubectl, stern, syslog) comes off here, for every format.
        let stripped = prefix::strip(content.trim_ascii_end());
        let text = stripped.line;
        if text.is_empty() {
            return (Outcome::Skipped, Some("empty"));
        }
        let parsed = match (format, state.detected) {
            // Until a format is recognised, a line of another program is not malformed.
            (Format::Auto, None) => match parse::detect(text) {
                Ok((format, parsed)) => {
                    state.detected = format;
                    Ok(parsed)
                }
                Err(_) => Ok(Parsed::Skip("unrecognized")),
            },
            (Format::Auto, Some(format)) | (format, _) => parse::parse(format, text),
        };
        let record = match parsed {
            Ok(Parsed::Record(record)) => record,
            Ok(Parsed::Skip(reason)) => return (Outcome::Skipped, Some(reason)),
            Err(e) => return (Outcome::Malformed, Some(e.reason())),
        };
        // A record redelivered by Kafka (or published twice) is counted once.
        if let Record::Observation(s) = &record
            && !self.inventory.first_sighting(s.id)
        {
            return (Outcome::Skipped, Some("duplicate"));
        }
        let times = Times {
            wrapper: time.as_deref().or(stripped.time),
            read: self.read_at,
        };
        let forwarded = match &record {
            Record::Observation(s) => Some(s.id),
            _ => None,
        };
        let judged = self.judge.judge(&record, &times);
        self.judged(judged, forwarded, line, stripped.writer)
    }

    /// A capture's finding, typed by its flow tracker; its JSON is its evidence.
    fn finding(&mut self, finding: &Finding) -> (Outcome, Option<&'static str>) {
        let times = Times {
            wrapper: None,
            read: self.read_at,
        };
        let evidence = if self.wants.observations {
            serde_json::to_vec(finding).unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut judgement = self.judge.finding(finding, &times);
        // The eBPF source knows the pod by its cgroup, not by an address.
        if let (
            Judgement::External(obs),
            Finding::Socket {
                pod_uid: Some(uid), ..
            },
            Some(pods),
        ) = (&mut judgement, finding, self.pods)
        {
            attribute_uid(&mut obs.src, uid, &pods.load());
        }
        self.judged(judgement, None, &evidence, None)
    }

    /// Records what the judge found egress. A published observation keeps the id it was
    /// forwarded with, else gets one from its evidence.
    fn judged(
        &mut self,
        judgement: Judgement,
        forwarded: Option<u128>,
        evidence: &[u8],
        writer: Option<Writer<'_>>,
    ) -> (Outcome, Option<&'static str>) {
        match judgement {
            Judgement::External(mut obs) => {
                // An access log is written by the proxy of the pod that made the connection:
                // the log file's pod, else the one a collector's prefix names.
                if obs.kind == SourceKind::Envoy && obs.src.namespace.is_none() {
                    if let Some(origin) = self.origin {
                        obs.src.namespace.clone_from(&origin.namespace);
                        obs.src.pod.clone_from(&origin.pod);
                    } else if let Some(w) = writer {
                        obs.src.namespace = w.namespace.map(str::to_owned);
                        obs.src.pod = Some(w.pod.to_owned());
                    }
                }
                if let Some(pods) = self.pods {
                    attribute(&mut obs.src, obs.time, &pods.load());
                }
                if let Fact::Connection {
                    dst_ip: Some(ip),
                    names,
                    ..
                } = &mut obs.fact
                    && names.is_empty()
                    && let Some(name) = self.names.name_of(*ip, obs.time)
                {
                    names.push(name.to_owned());
                }
                if self.wants.observations {
                    let id =
                        forwarded.unwrap_or_else(|| evidence_id(self.origin, obs.time, evidence));
                    self.out.observations.push(Stamped::new(id, obs.clone()));
                }
                self.record(obs)
            }
            Judgement::Internal => (Outcome::Internal, None),
            Judgement::NotEgress(reason) => (Outcome::Skipped, Some(reason)),
            Judgement::Invalid(reason) => (Outcome::Malformed, Some(reason)),
            Judgement::Learned(answer) => {
                self.names.learn(answer);
                (Outcome::Skipped, Some("dns_answer"))
            }
        }
    }

    fn record(&mut self, obs: Observation) -> (Outcome, Option<&'static str>) {
        let (recorded, update) = self.inventory.record(obs, self.wants.updates);
        self.out.updates.extend(update);
        match recorded {
            Recorded::Dropped => (Outcome::Dropped, Some("inventory_full")),
            Recorded::Folded => (Outcome::Folded, None),
            Recorded::New | Recorded::Updated => (Outcome::Emitted, None),
        }
    }
}
