//! A pcap or pcapng file, read to its end on a blocking thread through a bounded buffer; the
//! flow tracker's findings go to the stage in batches. A truncated or malformed capture keeps
//! what came before it and is reported. Large files show a progress bar on a terminal.

use std::fs::File;
use std::io;

use indicatif::{ProgressBar, ProgressStyle};

use super::SourceCtx;
use crate::capture::flows::Tracker;
use crate::capture::reader::{self, CaptureError};
use crate::config::PcapSourceConfig;

/// Finding bytes gathered before a batch goes to the stage.
const BATCH_BYTES: usize = 256 * 1024;

pub async fn run(cfg: PcapSourceConfig, ctx: SourceCtx) -> io::Result<()> {
    tokio::task::spawn_blocking(move || read(&cfg, &ctx))
        .await
        .map_err(io::Error::other)?
}

/// Files at least this large get a progress bar (drawn only when stderr is a terminal).
const PROGRESS_BYTES: u64 = 64 << 20;

fn read(cfg: &PcapSourceConfig, ctx: &SourceCtx) -> io::Result<()> {
    let file = File::open(&cfg.path)?;
    let size = file.metadata()?.len();
    let bar = if size >= PROGRESS_BYTES {
        ProgressBar::new(size).with_style(
            ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    bar.set_message(cfg.path.display().to_string());
    let mut tracker = Tracker::new(cfg.max_flows);
    let mut lines = Vec::new();
    let mut open = true;
    let result = reader::read_all(bar.wrap_read(file), |p| {
        tracker.frame(p.time_ns, p.linktype, p.data, &mut lines);
        if lines.len() >= BATCH_BYTES {
            open = ctx.send_blocking(std::mem::take(&mut lines), false);
        }
        open && !ctx.shutdown.is_cancelled()
    });
    bar.finish_and_clear();
    tracker.finish(&mut lines);
    let s = &tracker.skipped;
    ctx.discard(s.undecodable, "undecodable_packet");
    match result {
        Ok(packets) => tracing::info!(
            source = %ctx.stats.name,
            packets,
            not_ip = s.not_ip,
            unsupported_link = s.unsupported_link,
            undecodable = s.undecodable,
            "capture read"
        ),
        Err(e @ (CaptureError::Truncated { .. } | CaptureError::Malformed { .. })) => {
            tracing::warn!(source = %ctx.stats.name, "capture {e}; what came before is kept");
            ctx.discard(1, "truncated_capture");
        }
        Err(e) => {
            ctx.send_blocking(lines, true);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", cfg.path.display()),
            ));
        }
    }
    ctx.send_blocking(lines, true);
    Ok(())
}
