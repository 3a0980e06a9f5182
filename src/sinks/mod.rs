//! Sinks: each is its own task with its own bounded queue of inventory updates (and
//! observations, for a kafka sink that publishes them), and flushes
//! what it holds when the queue closes at shutdown.

mod file;
mod kafka;
mod prometheus;
mod stdout;

use std::io;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::SinkConfig;
use crate::pipeline::Outbox;
use crate::telemetry::ComponentStats;

/// Starts one sink task; it ends after its queue closes and it has flushed. Listeners are
/// bound first, so a taken address fails the start. `components` are every component's
/// counters, for sinks that export them.
pub async fn start(
    config: SinkConfig,
    rx: mpsc::Receiver<Arc<Outbox>>,
    stats: Arc<ComponentStats>,
    components: Arc<[Arc<ComponentStats>]>,
) -> io::Result<JoinHandle<()>> {
    Ok(match config {
        SinkConfig::Stdout(c) => tokio::spawn(stdout::run(c, rx, stats)),
        SinkConfig::File(c) => tokio::spawn(file::run(c, rx, stats)),
        SinkConfig::Kafka(c) => {
            let producer = kafka::producer(&c)?;
            tokio::spawn(kafka::run(c, producer, rx, stats))
        }
        SinkConfig::Prometheus(c) => {
            let listener = crate::listen::bind(&c.address).await?;
            tokio::spawn(prometheus::run(c, listener, rx, stats, components))
        }
    })
}
