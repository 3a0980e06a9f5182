//! Observation records from a Kafka topic, for the aggregator tier. Replicas in one consumer
//! group split the partitions; agents key records by `namespace/workload`, so a workload stays
//! on one aggregator. At-least-once: a batch's offsets are stored only after the stage has it
//! in the inventory, and committed from there (every second, before a rebalance takes
//! partitions away, and at shutdown); a record delivered twice carries the same id and is
//! counted once.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use futures_util::FutureExt;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};

use super::SourceCtx;
use crate::config::KafkaSourceConfig;
use crate::telemetry::RateLimitedWarn;

/// Commits what is in the inventory before partitions go to another member, and logs
/// assignments.
pub struct GroupContext {
    name: String,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            commit(consumer, &self.name);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(source = %self.name, ?partitions, "kafka partitions assigned");
        }
    }
}

/// Commits the stored offsets synchronously; having none to commit is not an error.
fn commit<C: Consumer<GroupContext>>(consumer: &C, name: &str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => tracing::warn!(source = %name, "kafka offsets not committed: {e}"),
    }
}

/// A consumer from the settings; librdkafka's own keys in `librdkafka` come last and win.
pub fn consumer(cfg: &KafkaSourceConfig, name: &str) -> io::Result<StreamConsumer<GroupContext>> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", &cfg.group_id)
        // A new group reads what agents published before it first started.
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        // Offsets are stored by hand, once their records are in the inventory.
        .set("enable.auto.offset.store", "false");
    for (key, value) in &cfg.librdkafka {
        config.set(key, value);
    }
    let context = GroupContext {
        name: name.to_owned(),
    };
    config
        .create_with_context(context)
        .map_err(io::Error::other)
}

pub async fn run(
    cfg: KafkaSourceConfig,
    consumer: StreamConsumer<GroupContext>,
    ctx: SourceCtx,
) -> io::Result<()> {
    consumer
        .subscribe(&[&cfg.topic])
        .map_err(io::Error::other)?;
    let mut errors = RateLimitedWarn::default();
    loop {
        let first = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            m = consumer.recv() => m,
        };
        let mut batch = Gathered::default();
        batch.add(first, &ctx, &mut errors);
        while batch.records < cfg.max_batch {
            match consumer.recv().now_or_never() {
                Some(m) => batch.add(m, &ctx, &mut errors),
                None => break,
            }
        }
        if batch.failed {
            // The broker is away: librdkafka reconnects; do not spin meanwhile.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if batch.lines.is_empty() {
            continue;
        }
        if !ctx.send_and_wait(batch.lines).await {
            break;
        }
        for (partition, offset) in batch.offsets {
            if let Err(e) = consumer.store_offset(&cfg.topic, partition, offset) {
                tracing::warn!(source = %ctx.stats.name, partition, "kafka offset not stored: {e}");
            }
        }
    }
    // Leave the group with everything the inventory holds committed.
    commit(&consumer, &ctx.stats.name);
    Ok(())
}

/// Records gathered for one batch: their payloads as lines, and the last offset per partition.
#[derive(Default)]
struct Gathered {
    lines: Vec<u8>,
    records: usize,
    offsets: BTreeMap<i32, i64>,
    failed: bool,
}

impl Gathered {
    fn add(
        &mut self,
        message: KafkaResult<BorrowedMessage<'_>>,
        ctx: &SourceCtx,
        errors: &mut RateLimitedWarn,
    ) {
        let m = match message {
            Ok(m) => m,
            Err(e) => {
                self.failed = true;
                if errors.should_log() {
                    tracing::warn!(source = %ctx.stats.name, so_far = errors.seen(), "kafka: {e}");
                }
                return;
            }
        };
        self.records += 1;
        self.offsets.insert(m.partition(), m.offset());
        match m.payload() {
            Some(p) if !p.is_empty() => {
                // A raw newline can only be whitespace between JSON tokens: a space is the same.
                self.lines
                    .extend(p.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
                self.lines.push(b'\n');
            }
            _ => ctx.discard(1, "empty_record"),
        }
    }
}
