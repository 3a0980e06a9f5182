//! The synchronous heart of the pipeline, free of I/O: for every line of a batch, unwrap the
//! container runtime framing, parse, judge, and count survivors in the inventory.

use std::sync::Arc;

use time::OffsetDateTime;

use super::Batch;
use crate::egress::{Judge, Judgement, Times};
use crate::enrich::{PodTable, attribute};
use crate::event::Observation;
use crate::inventory::{Inventory, Recorded, Update, UpdateKind};
use crate::parse::container::{Step, Unwrapper};
use crate::parse::{self, Format, Parsed};
use crate::telemetry::{ComponentStats, Outcome, RateLimitedWarn, Tally};

/// Per-source parsing state.
pub struct SourceState {
    format: Format,
    /// With `Auto`, the format of the first line that parsed as a record.
    detected: Option<Format>,
    unwrapper: Unwrapper,
    stats: Arc<ComponentStats>,
    tally: Tally,
    malformed_warn: RateLimitedWarn,
}

impl SourceState {
    pub fn new(format: Format, max_line: usize, stats: Arc<ComponentStats>) -> Self {
        SourceState {
            format,
            detected: None,
            unwrapper: Unwrapper::new(max_line),
            stats,
            tally: Tally::default(),
            malformed_warn: RateLimitedWarn::default(),
        }
    }
}

pub struct Stage {
    judge: Judge,
    pods: Option<Arc<PodTable>>,
    inventory: Inventory,
    sources: Vec<SourceState>,
    max_line: usize,
    /// Whether sinks want updates; `scan` only reads the final inventory.
    track: bool,
    full_warn: RateLimitedWarn,
}

impl Stage {
    pub fn new(
        judge: Judge,
        pods: Option<Arc<PodTable>>,
        inventory: Inventory,
        sources: Vec<SourceState>,
        max_line: usize,
        track: bool,
    ) -> Self {
        Stage {
            judge,
            pods,
            inventory,
            sources,
            max_line,
            track,
            full_warn: RateLimitedWarn::default(),
        }
    }

    pub fn into_inventory(self) -> Inventory {
        self.inventory
    }

    /// Processes one batch; new destinations are appended to `updates`.
    pub fn process(&mut self, batch: &Batch, updates: &mut Vec<Update>) {
        let Some(state) = self.sources.get_mut(batch.source) else {
            return;
        };
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &batch.lines) {
            let line = &batch.lines[start..end];
            start = end + 1;
            if line.is_empty() {
                continue;
            }
            state.tally.received += 1;
            let (outcome, reason) = if line.len() > self.max_line {
                (Outcome::Malformed, Some("oversize"))
            } else {
                let mut ctx = LineCtx {
                    judge: &self.judge,
                    pods: self.pods.as_deref(),
                    inventory: &mut self.inventory,
                    track: self.track,
                    max_line: self.max_line,
                    read_at: batch.read_at,
                    updates,
                };
                ctx.line(state, line)
            };
            match (outcome, reason) {
                (Outcome::Malformed, Some(reason)) if state.malformed_warn.should_log() => {
                    tracing::warn!(
                        source = %state.stats.name,
                        reason,
                        so_far = state.malformed_warn.seen(),
                        "malformed line skipped"
                    );
                }
                (Outcome::Dropped, _) if self.full_warn.should_log() => {
                    tracing::warn!(
                        so_far = self.full_warn.seen(),
                        "inventory full (inventory.max_entries): new destination dropped"
                    );
                }
                _ => {}
            }
            state.tally.count(outcome, reason);
        }
        if batch.end {
            for _ in 0..state.unwrapper.finish() {
                state.tally.received += 1;
                state
                    .tally
                    .count(Outcome::Malformed, Some("unterminated_partial"));
            }
        }
        state.stats.add(&mut state.tally);
    }

    /// Entries whose counts changed since the last call, for sinks.
    pub fn take_changed(&mut self) -> Vec<Update> {
        self.inventory.take_changed()
    }
}

/// Borrowed pieces of the stage one line needs next to its source's state.
struct LineCtx<'s> {
    judge: &'s Judge,
    pods: Option<&'s PodTable>,
    inventory: &'s mut Inventory,
    track: bool,
    max_line: usize,
    read_at: OffsetDateTime,
    updates: &'s mut Vec<Update>,
}

impl LineCtx<'_> {
    fn line(&mut self, state: &mut SourceState, line: &[u8]) -> (Outcome, Option<&'static str>) {
        let (time, content) = match state.unwrapper.unwrap(line) {
            Step::Line { time, content } => (time, content),
            Step::Pending => return (Outcome::Skipped, Some("partial_chunk")),
            Step::Oversize => return (Outcome::Malformed, Some("oversize")),
            Step::Malformed => return (Outcome::Malformed, Some("container_wrapping")),
        };
        if content.len() > self.max_line {
            return (Outcome::Malformed, Some("oversize"));
        }
        let text = content.trim_ascii_end();
        if text.is_empty() {
            return (Outcome::Skipped, Some("empty"));
        }
        let parsed = match (state.format, state.detected) {
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
        let times = Times {
            wrapper: time.as_deref(),
            read: self.read_at,
        };
        match self.judge.judge(&record, &times) {
            Judgement::External(mut obs) => {
                if let Some(pods) = self.pods {
                    attribute(&mut obs.src, obs.time, pods);
                }
                self.record(obs)
            }
            Judgement::Internal => (Outcome::Internal, None),
            Judgement::NotEgress(reason) => (Outcome::Skipped, Some(reason)),
            Judgement::Invalid(reason) => (Outcome::Malformed, Some(reason)),
        }
    }

    fn record(&mut self, obs: Observation) -> (Outcome, Option<&'static str>) {
        match self.inventory.record(obs, self.track) {
            (Recorded::Full, _) => (Outcome::Dropped, Some("inventory_full")),
            (_, Some(key)) => {
                self.updates
                    .extend(self.inventory.update(UpdateKind::New, key));
                (Outcome::Emitted, None)
            }
            _ => (Outcome::Emitted, None),
        }
    }
}
