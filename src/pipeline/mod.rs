//! Builds the topology from configuration and runs it: one task per source and per sink,
//! bounded channels carrying batches, the synchronous stage in between. Shutdown: sources stop
//! reading, the stage drains what they sent, sinks get the last changes and flush.

pub mod stage;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::capture::finding::Finding;
use crate::config::{Settings, SinkConfig};
use crate::egress::Judge;
use crate::enrich::{NameCache, SharedPods};
use crate::event::Endpoint;
use crate::inventory::{Inventory, Update};
use crate::sinks;
use crate::sources::{self, SourceCtx};
use crate::telemetry::{ComponentStats, Totals};
use crate::wire::Stamped;
use stage::{SourceState, Stage, Wants};

/// Whole lines read by one source, each ending in `\n`, or a packet capture's findings.
#[derive(Debug)]
pub struct Batch {
    /// Index of the source in the configuration.
    pub source: usize,
    pub stream: Stream,
    pub lines: Vec<u8>,
    /// Typed already (a capture's flow tracker): judged without a text round trip.
    pub findings: Vec<Finding>,
    pub read_at: OffsetDateTime,
    /// The stream's last batch: its partial state can be dropped.
    pub end: bool,
    /// Fired once the batch is in the inventory (a Kafka source commits its offsets then).
    pub ack: Option<oneshot::Sender<()>>,
}

/// What the stage hands every sink after a batch or an interval: inventory updates and, when
/// some sink publishes them, the observations themselves.
#[derive(Debug, Default)]
pub struct Outbox {
    pub updates: Vec<Update>,
    pub observations: Vec<Stamped>,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.observations.is_empty()
    }
}

/// One stream of a source (a file, a connection, a run of a command), parsed on its own.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    pub id: u64,
    /// The pod that wrote the stream (a container log file), when known.
    pub origin: Option<Arc<Endpoint>>,
}

/// What a finished run leaves behind.
pub struct Report {
    pub inventory: Inventory,
    /// One per source, in configuration order.
    pub sources: Vec<Arc<ComponentStats>>,
    /// One per sink, in configuration order.
    pub sinks: Vec<Arc<ComponentStats>>,
}

impl Report {
    /// Counters summed over all sources.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.sources {
            t += s.totals();
        }
        t
    }
}

/// A source or sink that could not start (a listener address in use, no API access).
#[derive(Debug, thiserror::Error)]
#[error("{component}: {error}")]
pub struct StartError {
    /// `sources[0] (name)` or `sinks[1]`.
    pub component: String,
    pub error: std::io::Error,
}

/// Runs `settings` until every source ends or `shutdown` fires, then drains and flushes.
/// `sinks` may be empty (the caller reads the inventory from the report).
pub async fn run(
    settings: &Settings,
    judge: Judge,
    pods: Option<SharedPods>,
    sinks: &[SinkConfig],
    shutdown: CancellationToken,
) -> Result<Report, StartError> {
    // Cancels the sources already started when a later one cannot start.
    let shutdown = shutdown.child_token();
    let limits = &settings.limits;
    let (tx, mut rx) = mpsc::channel::<Batch>(limits.channel_capacity);
    let mut source_stats = Vec::new();
    let mut states = Vec::new();
    let mut source_tasks = Vec::new();
    for (id, config) in settings.sources.iter().enumerate() {
        let stats = ComponentStats::new(config.name(), "source");
        states.push(SourceState::new(config.format(), stats.clone()));
        source_stats.push(stats.clone());
        let ctx = SourceCtx {
            id,
            tx: tx.clone(),
            stats,
            shutdown: shutdown.clone(),
            limits: limits.clone(),
        };
        match sources::start(config.clone(), ctx).await {
            Ok(task) => source_tasks.push(task),
            Err(error) => {
                shutdown.cancel();
                return Err(StartError {
                    component: format!("sources[{id}] ({})", config.name()),
                    error,
                });
            }
        }
    }
    drop(tx);

    let sink_stats: Vec<_> = (0..sinks.len())
        .map(|i| ComponentStats::new(format!("sinks[{i}]"), "sink"))
        .collect();
    let components: Arc<[Arc<ComponentStats>]> =
        source_stats.iter().chain(&sink_stats).cloned().collect();
    let mut sink_txs = Vec::new();
    let mut sink_tasks = Vec::new();
    for (i, (config, stats)) in sinks.iter().zip(sink_stats.iter().cloned()).enumerate() {
        let (stx, srx) = mpsc::channel::<Arc<Outbox>>(limits.channel_capacity);
        match sinks::start(config.clone(), srx, stats, components.clone()).await {
            Ok(task) => sink_tasks.push(task),
            Err(error) => {
                shutdown.cancel();
                return Err(StartError {
                    component: format!("sinks[{i}]"),
                    error,
                });
            }
        }
        sink_txs.push(stx);
    }

    let mut inventory = Inventory::new(
        settings.inventory.max_destinations,
        settings.inventory.max_entries,
        settings.inventory.dedupe_window,
    );
    for sink in sinks {
        if let SinkConfig::File(f) = sink
            && f.restore
        {
            restore(&mut inventory, &f.path);
        }
    }
    let wants = Wants {
        updates: !sinks.is_empty(),
        observations: sinks.iter().any(SinkConfig::wants_observations),
    };
    let mut stage = Stage::new(
        judge,
        pods,
        NameCache::new(settings.enrich.max_names),
        inventory,
        states,
        limits.max_line_bytes,
        wants,
    );
    let mut tick =
        tokio::time::interval(Duration::from_secs(settings.inventory.update_interval_secs));
    tick.tick().await;
    let mut out = Outbox::default();
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(mut batch) => {
                    stage.process(&batch, &mut out);
                    if let Some(ack) = batch.ack.take() {
                        let _ = ack.send(());
                    }
                }
                None => break,
            },
            _ = tick.tick() => out.updates.extend(stage.take_changed()),
        }
        send(&sink_txs, &mut out).await;
    }
    out.updates.extend(stage.take_changed());
    send(&sink_txs, &mut out).await;
    drop(sink_txs);
    for task in sink_tasks.into_iter().chain(source_tasks) {
        if let Err(e) = task.await {
            tracing::error!("pipeline task failed: {e}");
        }
    }
    Ok(Report {
        inventory: stage.into_inventory(),
        sources: source_stats,
        sinks: sink_stats,
    })
}

/// Puts the entries of a snapshot back; a missing or unreadable one starts afresh (logged).
fn restore(inventory: &mut Inventory, path: &std::path::Path) {
    match crate::snapshot::load(path) {
        Ok(destinations) => {
            let r = inventory.restore(destinations);
            tracing::info!(
                path = %path.display(),
                edges = r.edges,
                folded = r.folded,
                dropped = r.dropped,
                "inventory restored"
            );
            if r.dropped > 0 {
                tracing::error!(
                    dropped = r.dropped,
                    "snapshot edges lost: inventory.max_destinations is below the snapshot's destinations"
                );
            }
        }
        Err(e) => tracing::warn!("inventory not restored: {e}"),
    }
}

/// Hands `out` to every sink, waiting while a sink's queue is full.
async fn send(sinks: &[mpsc::Sender<Arc<Outbox>>], out: &mut Outbox) {
    if out.is_empty() {
        return;
    }
    let batch = Arc::new(std::mem::take(out));
    for sink in sinks {
        // A sink that ended has already logged why; the others still get the batch.
        let _ = sink.send(batch.clone()).await;
    }
}
