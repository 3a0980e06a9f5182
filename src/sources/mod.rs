//! Sources: each reads bytes, frames them into batches of whole lines and sends them to the
//! stage over a bounded channel (a full channel makes the source wait: backpressure).

mod exec;
mod file;
pub mod framing;
mod stdin;

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Limits, SourceConfig};
use crate::pipeline::Batch;
use crate::telemetry::{ComponentStats, Outcome, Tally};
use framing::LineFramer;

/// What every source task needs: where to send, how to count, when to stop.
pub struct SourceCtx {
    pub id: usize,
    pub tx: mpsc::Sender<Batch>,
    pub stats: Arc<ComponentStats>,
    pub shutdown: CancellationToken,
    pub limits: Limits,
}

impl SourceCtx {
    fn framer(&self) -> LineFramer {
        LineFramer::new(self.limits.read_chunk_bytes, self.limits.max_line_bytes)
    }

    /// Sends whole lines; false when the stage is gone.
    async fn send(&self, lines: Vec<u8>, framer: &mut LineFramer) -> bool {
        self.count_oversize(framer);
        let batch = Batch {
            source: self.id,
            lines,
            read_at: OffsetDateTime::now_utc(),
            end: false,
        };
        self.tx.send(batch).await.is_ok()
    }

    fn count_oversize(&self, framer: &mut LineFramer) {
        let oversize = framer.take_oversize();
        if oversize > 0 {
            tracing::warn!(source = %self.stats.name, oversize, "skipped lines longer than limits.max_line_bytes");
            let mut tally = Tally::received(oversize);
            for _ in 0..oversize {
                tally.count(Outcome::Malformed, Some("oversize"));
            }
            self.stats.add(&mut tally);
        }
    }

    /// Sends the stream's unterminated last line and the end marker.
    async fn finish(&self, mut framer: LineFramer) {
        let lines = framer.finish().unwrap_or_default();
        self.count_oversize(&mut framer);
        let batch = Batch {
            source: self.id,
            lines,
            read_at: OffsetDateTime::now_utc(),
            end: true,
        };
        let _ = self.tx.send(batch).await;
    }
}

/// Starts one source task.
pub fn spawn(config: SourceConfig, ctx: SourceCtx) -> JoinHandle<()> {
    tokio::spawn(async move {
        let name = ctx.stats.name.clone();
        let result = match config {
            SourceConfig::File(f) => file::run(f, ctx).await,
            SourceConfig::Stdin(_) => stdin::run(ctx).await,
            SourceConfig::Exec(e) => exec::run(e, ctx).await,
        };
        if let Err(e) = result {
            tracing::error!(source = %name, "source stopped: {e}");
        }
    })
}
