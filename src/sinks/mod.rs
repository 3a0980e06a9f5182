//! Sinks: each is its own task with its own bounded queue of inventory updates, and flushes
//! what it holds when the queue closes at shutdown.

mod stdout;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::SinkConfig;
use crate::inventory::Update;
use crate::telemetry::ComponentStats;

/// Starts one sink task; it ends after its queue closes and it has flushed.
pub fn spawn(
    config: SinkConfig,
    rx: mpsc::Receiver<Arc<[Update]>>,
    stats: Arc<ComponentStats>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        match config {
            SinkConfig::Stdout(c) => stdout::run(c, rx, stats).await,
        }
    })
}
