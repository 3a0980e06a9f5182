//! Inventory updates to a Kafka topic (rdkafka): one JSON record per update, keyed by
//! `namespace/workload` (else the source IP) so a workload's records stay in order on one
//! partition. `acks=all` and idempotence; delivery reports are awaited with a bounded number
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
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use tokio::sync::mpsc;

use crate::config::{KafkaSinkConfig, WhenFull};
use crate::inventory::Update;
use crate::output::UpdateDoc;
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

/// `namespace/workload`, else the source IP.
fn key_of(u: &Update) -> String {
    let src = &u.entry.src;
    match (&src.namespace, src.workload.as_ref().or(src.pod.as_ref())) {
        (Some(ns), Some(w)) => format!("{ns}/{w}"),
        _ => src.ip.map(|ip| ip.to_string()).unwrap_or_default(),
    }
}

pub async fn run(
    cfg: KafkaSinkConfig,
    producer: FutureProducer,
    mut rx: mpsc::Receiver<Arc<[Update]>>,
    stats: Arc<ComponentStats>,
) {
    let mut in_flight = FuturesUnordered::new();
    while let Some(batch) = rx.recv().await {
        let mut tally = Tally::received(batch.len() as u64);
        for update in batch.iter() {
            let payload = match serde_json::to_vec(&UpdateDoc::of(update)) {
                Ok(p) => p,
                Err(_) => continue,
            };
            let key = key_of(update);
            let mut record = FutureRecord::to(&cfg.topic).key(&key).payload(&payload);
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        in_flight.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                        if cfg.when_full == WhenFull::DropNewest =>
                    {
                        tally.count(Outcome::Dropped, Some("queue_full"));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // Block until deliveries free the producer's queue.
                        record = back;
                        match in_flight.next().await {
                            Some(report) => count_delivery(&mut tally, report),
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
            while in_flight.len() >= IN_FLIGHT {
                if let Some(report) = in_flight.next().await {
                    count_delivery(&mut tally, report);
                }
            }
        }
        while let Some(Some(report)) = in_flight.next().now_or_never() {
            count_delivery(&mut tally, report);
        }
        stats.add(&mut tally);
    }
    // Shutdown: wait for what is in flight, up to the flush timeout.
    let mut tally = Tally::default();
    let deadline = tokio::time::sleep(Duration::from_secs(cfg.flush_timeout_secs));
    tokio::pin!(deadline);
    while !in_flight.is_empty() {
        tokio::select! {
            _ = &mut deadline => break,
            Some(report) = in_flight.next() => count_delivery(&mut tally, report),
        }
    }
    let undelivered = in_flight.len();
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
    let _ = producer.flush(Timeout::After(Duration::from_secs(1)));
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
