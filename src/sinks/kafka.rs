//! Inventory updates to a Kafka topic (rdkafka), and every observation to another when
//! `observations_topic` is set (for aggregators): one JSON record each, keyed by
//! `namespace/workload` (else the source IP) so a workload's records stay in order on one
//! partition and go to one aggregator. `acks=all` and idempotence; delivery reports are awaited with a bounded number
//! in flight. While the broker is away records wait in the producer's bounded queue and then
//! in this sink's channel, so backpressure reaches the sources (`when_full = "block"`), or the
//! newest are dropped and counted (`"drop_newest"`). Shutdown waits for delivery up to a
//! timeout and reports what could not be delivered.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use tokio::sync::mpsc;

use crate::config::{KafkaSinkConfig, WhenFull};
use crate::event::Endpoint;
use crate::output::UpdateDoc;
use crate::pipeline::Outbox;
use crate::telemetry::{ComponentStats, Outcome, Tally};

/// Delivery reports awaited at once; more waits (backpressure) until some arrive.
const IN_FLIGHT: usize = 10_000;

/// A producer from the settings; librdkafka's own keys in `librdkafka` (TLS, SASL, tuning)
/// come last and win.
pub fn producer(cfg: &KafkaSinkConfig) -> io::Result<FutureProducer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &cfg.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", &cfg.compression)
        // Records wait for the broker as long as it takes; shutdown bounds the wait instead.
        .set("message.timeout.ms", "0")
        .set(
            "queue.buffering.max.messages",
            cfg.queue_capacity.to_string(),
        );
    for (key, value) in &cfg.librdkafka {
        config.set(key, value);
    }
    config.create().map_err(io::Error::other)
}

/// `namespace/workload`, else the source IP (an edge's key is [`crate::inventory::SourceKey::qualified`]).
fn key_of(src: &Endpoint) -> String {
    match (&src.namespace, src.workload.as_ref().or(src.pod.as_ref())) {
        (Some(ns), Some(w)) => format!("{ns}/{w}"),
        _ => src.ip.map(|ip| ip.to_string()).unwrap_or_default(),
    }
}

/// A producer with the delivery reports it still awaits.
struct Publisher {
    producer: FutureProducer,
    when_full: WhenFull,
    in_flight: FuturesUnordered<DeliveryFuture>,
}

impl Publisher {
    /// Queues one record, waiting (or dropping it, with `drop_newest`) while the producer's
    /// queue is full, and keeps at most [`IN_FLIGHT`] reports outstanding.
    async fn publish(&mut self, topic: &str, key: &str, payload: &[u8], tally: &mut Tally) {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.in_flight.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if self.when_full == WhenFull::DropNewest =>
                {
                    tally.count(Outcome::Dropped, Some("queue_full"));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Block until deliveries free the producer's queue.
                    record = back;
                    match self.in_flight.next().await {
                        Some(report) => count_delivery(tally, report),
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((e, _)) => {
                    tracing::error!("kafka sink: cannot queue a record: {e}");
                    tally.count(Outcome::Dropped, Some("produce_failed"));
                    break;
                }
            }
        }
        while self.in_flight.len() >= IN_FLIGHT {
            if let Some(report) = self.in_flight.next().await {
                count_delivery(tally, report);
            }
        }
    }

    /// Counts the reports that have already arrived.
    fn collect_ready(&mut self, tally: &mut Tally) {
        while let Some(Some(report)) = self.in_flight.next().now_or_never() {
            count_delivery(tally, report);
        }
    }
}

pub async fn run(
    cfg: KafkaSinkConfig,
    producer: FutureProducer,
    mut rx: mpsc::Receiver<Arc<Outbox>>,
    stats: Arc<ComponentStats>,
) {
    let mut p = Publisher {
        producer,
        when_full: cfg.when_full,
        in_flight: FuturesUnordered::new(),
    };
    let mut payload = Vec::new();
    while let Some(outbox) = rx.recv().await {
        let mut tally = Tally::default();
        if let Some(topic) = &cfg.topic {
            tally.received += outbox.updates.len() as u64;
            for update in &outbox.updates {
                payload.clear();
                if serde_json::to_writer(&mut payload, &UpdateDoc::of(update)).is_ok() {
                    let key = update.edge.source.key().qualified();
                    p.publish(topic, &key, &payload, &mut tally).await;
                }
            }
        }
        if let Some(topic) = &cfg.observations_topic {
            tally.received += outbox.observations.len() as u64;
            for stamped in &outbox.observations {
                payload.clear();
                if serde_json::to_writer(&mut payload, stamped).is_ok() {
                    p.publish(topic, &key_of(&stamped.obs.src), &payload, &mut tally)
                        .await;
                }
            }
        }
        p.collect_ready(&mut tally);
        stats.add(&mut tally);
    }
    // Shutdown: wait for what is in flight, up to the flush timeout.
    let mut tally = Tally::default();
    let deadline = tokio::time::sleep(Duration::from_secs(cfg.flush_timeout_secs));
    tokio::pin!(deadline);
    while !p.in_flight.is_empty() {
        tokio::select! {
            _ = &mut deadline => break,
            Some(report) = p.in_flight.next() => count_delivery(&mut tally, report),
        }
    }
    let undelivered = p.in_flight.len();
    tally.count_n(
        Outcome::Dropped,
        Some("undelivered_at_shutdown"),
        undelivered as u64,
    );
    stats.add(&mut tally);
    if undelivered > 0 {
        tracing::error!(
            undelivered,
            "kafka sink: records not delivered before flush_timeout_secs"
        );
    }
    let _ = p.producer.flush(Timeout::After(Duration::from_secs(1)));
}

fn count_delivery<E>(tally: &mut Tally, report: Result<OwnedDeliveryResult, E>) {
    match report {
        Ok(Ok(_)) => tally.count(Outcome::Emitted, None),
        Ok(Err((e, _))) => {
            tracing::error!("kafka sink: delivery failed: {e}");
            tally.count(Outcome::Dropped, Some("delivery_failed"));
        }
        Err(_) => tally.count(Outcome::Dropped, Some("delivery_failed")),
    }
}
