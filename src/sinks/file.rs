//! The inventory as a JSON snapshot file, written atomically on an interval (when it changed)
//! and at shutdown; `run` reads it back at start.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::FileSinkConfig;
use crate::inventory::Collected;
use crate::pipeline::Outbox;
use crate::snapshot;
use crate::telemetry::{ComponentStats, Outcome, Tally};

pub async fn run(
    cfg: FileSinkConfig,
    mut rx: mpsc::Receiver<Arc<Outbox>>,
    stats: Arc<ComponentStats>,
) {
    // Start from the snapshot the inventory was restored from, so entries not updated in this
    // run stay in the file.
    let restored = if cfg.restore {
        snapshot::load(&cfg.path)
    } else {
        Ok(Vec::new())
    };
    let mut entries = match restored {
        Ok(destinations) => Collected::from_destinations(destinations),
        Err(e) => {
            tracing::warn!("file sink: starting a new snapshot: {e}");
            Collected::default()
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.interval_secs));
    tick.tick().await;
    let mut dirty = false;
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(outbox) => {
                    let batch = &outbox.updates;
                    let mut tally = Tally::received(batch.len() as u64);
                    for u in batch.iter() {
                        entries.apply(u);
                        tally.count(Outcome::Emitted, None);
                    }
                    stats.add(&mut tally);
                    dirty = true;
                }
                None => break,
            },
            _ = tick.tick(), if dirty => {
                dirty = !save(&cfg, &entries).await;
            }
        }
    }
    save(&cfg, &entries).await;
}

/// Writes the snapshot; false (logged) when it could not, so the next tick tries again.
async fn save(cfg: &FileSinkConfig, entries: &Collected) -> bool {
    match snapshot::write(&cfg.path, entries.destinations()).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(path = %cfg.path.display(), "file sink: cannot write the snapshot: {e}");
            false
        }
    }
}
