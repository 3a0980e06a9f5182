//! Standard output: one JSON line per inventory update, or the whole inventory as a table
//! when the queue closes.

use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use crate::config::{Encoding, StdoutSinkConfig};
use crate::inventory::Collected;
use crate::output::{self, UpdateDoc};
use crate::pipeline::Outbox;
use crate::telemetry::{ComponentStats, Outcome, Tally};

pub async fn run(
    config: StdoutSinkConfig,
    mut rx: mpsc::Receiver<Arc<Outbox>>,
    stats: Arc<ComponentStats>,
) {
    let mut out = BufWriter::new(tokio::io::stdout());
    let mut latest = Collected::default();
    // After a write error (a closed pipe) updates are still taken off the queue, so the
    // pipeline never stalls, and counted as dropped.
    let mut broken = false;
    while let Some(outbox) = rx.recv().await {
        let batch = &outbox.updates;
        let mut tally = Tally::received(batch.len() as u64);
        match config.encoding {
            Encoding::Table => {
                for u in batch.iter() {
                    latest.apply(u);
                    tally.count(Outcome::Emitted, None);
                }
            }
            Encoding::Json => {
                let mut text = Vec::new();
                for u in batch.iter() {
                    if serde_json::to_writer(&mut text, &UpdateDoc::of(u)).is_ok() {
                        text.push(b'\n');
                    }
                }
                let written = !broken && write(&mut out, &text).await;
                broken = !written;
                let outcome = if written {
                    Outcome::Emitted
                } else {
                    Outcome::Dropped
                };
                let reason = (!written).then_some("stdout_closed");
                tally.count_n(outcome, reason, batch.len() as u64);
            }
        }
        stats.add(&mut tally);
    }
    if config.encoding == Encoding::Table && !broken {
        let mut table = Vec::new();
        let _ = output::write_table(&mut table, || latest.destinations());
        write(&mut out, &table).await;
    }
}

async fn write(out: &mut BufWriter<tokio::io::Stdout>, bytes: &[u8]) -> bool {
    match async {
        out.write_all(bytes).await?;
        out.flush().await
    }
    .await
    {
        Ok(()) => true,
        Err(e) => {
            tracing::error!("stdout sink: cannot write, dropping further updates: {e}");
            false
        }
    }
}
