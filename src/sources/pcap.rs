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
#[cfg(feature = "live")]
use crate::telemetry::{Outcome, RateLimitedWarn};

/// Findings gathered before a batch goes to the stage.
const BATCH_FINDINGS: usize = 4096;
/// How long a live capture with nothing to read waits before it looks again.
#[cfg(feature = "live")]
const IDLE_WAIT: std::time::Duration = std::time::Duration::from_millis(10);
/// Packets between two looks at the shutdown token (an atomic load with a fence, per packet
/// it was a visible share of the time).
const SHUTDOWN_EVERY: u64 = 4096;

pub async fn run(cfg: PcapSourceConfig, ctx: SourceCtx) -> io::Result<()> {
    tokio::task::spawn_blocking(move || match &cfg.interface {
        #[cfg(feature = "live")]
        Some(interface) => live(interface, &cfg, &ctx),
        #[cfg(not(feature = "live"))]
        Some(_) => Err(io::Error::other(
            "this build has no live capture (build with --features live)",
        )),
        None => read(&cfg, &ctx),
    })
    .await
    .map_err(io::Error::other)?
}

/// Live capture through libpcap until shutdown: findings go out at least every 200 ms, idle
/// flows expire by the wall clock, and the kernel's drop counters are counted as dropped.
#[cfg(feature = "live")]
fn live(interface: &str, cfg: &PcapSourceConfig, ctx: &SourceCtx) -> io::Result<()> {
    use std::time::{Duration, Instant};
    let mut capture = pcap::Capture::from_device(interface)
        .and_then(|c| {
            c.snaplen(cfg.snaplen)
                .buffer_size(cfg.buffer_bytes)
                .timeout(200)
                .immediate_mode(true)
                .open()
        })
        // Non-blocking: Linux's TPACKET_V3 ring in immediate mode waits for the next packet
        // with no timeout, so a quiet interface would hold its last findings (a DNS answer)
        // and shutdown until another packet came.
        .and_then(|c| c.setnonblock())
        .map_err(|e| io::Error::other(format!("capture on {interface}: {e}")))?;
    if let Some(filter) = &cfg.filter {
        capture
            .filter(filter, true)
            .map_err(|e| io::Error::other(format!("filter {filter:?}: {e}")))?;
    }
    let linktype = capture.get_datalink().0;
    tracing::info!(source = %ctx.stats.name, interface, linktype, "capturing");
    let mut tracker = Tracker::new(cfg.max_flows);
    let mut found = Vec::new();
    let mut flushed = Instant::now();
    let mut kernel_dropped = Losses::new(Outcome::Dropped, "kernel_dropped");
    let mut undecodable = Losses::new(Outcome::Malformed, "undecodable_packet");
    while !ctx.shutdown.is_cancelled() {
        match capture.next_packet() {
            Ok(p) => {
                let ts = p.header.ts;
                let time_ns = i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_usec) * 1000;
                tracker.frame(time_ns, linktype, p.data, &mut found);
            }
            // Nothing to read: wait a little rather than spin.
            Err(pcap::Error::TimeoutExpired) => std::thread::sleep(IDLE_WAIT),
            Err(e) => return Err(io::Error::other(format!("capture on {interface}: {e}"))),
        }
        if flushed.elapsed() >= Duration::from_millis(200) || found.len() >= BATCH_FINDINGS {
            flushed = Instant::now();
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
            tracker.tick(now, &mut found);
            if let Ok(stats) = capture.stats() {
                let dropped = u64::from(stats.dropped) + u64::from(stats.if_dropped);
                kernel_dropped.total(ctx, dropped);
            }
            undecodable.total(ctx, tracker.skipped.undecodable);
            if !found.is_empty() && !ctx.send_blocking(std::mem::take(&mut found), false) {
                return Ok(());
            }
        }
    }
    tracker.finish(&mut found);
    undecodable.total(ctx, tracker.skipped.undecodable);
    ctx.send_blocking(found, true);
    Ok(())
}

/// What a live capture lost so far by one reason: counted as it grows, logged rate-limited
/// (a busy interface loses packets at every flush).
#[cfg(feature = "live")]
struct Losses {
    outcome: Outcome,
    reason: &'static str,
    so_far: u64,
    warn: RateLimitedWarn,
}

#[cfg(feature = "live")]
impl Losses {
    fn new(outcome: Outcome, reason: &'static str) -> Self {
        Losses {
            outcome,
            reason,
            so_far: 0,
            warn: RateLimitedWarn::default(),
        }
    }

    /// Counts what `total` adds to what was counted before.
    fn total(&mut self, ctx: &SourceCtx, total: u64) {
        let new = total.saturating_sub(self.so_far);
        if new == 0 {
            return;
        }
        self.so_far = total;
        if self.warn.should_log() {
            tracing::warn!(
                source = %ctx.stats.name,
                total,
                reason = self.reason,
                "live capture lost packets"
            );
        }
        ctx.count_lost(new, self.outcome, self.reason);
    }
}

/// Files at least this large get a progress bar (drawn only when stderr is a terminal).
const PROGRESS_BYTES: u64 = 64 << 20;

fn read(cfg: &PcapSourceConfig, ctx: &SourceCtx) -> io::Result<()> {
    let path = cfg.path.as_deref().unwrap_or(std::path::Path::new(""));
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let bar = if size >= PROGRESS_BYTES {
        ProgressBar::new(size).with_style(
            ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    bar.set_message(path.display().to_string());
    let mut tracker = Tracker::new(cfg.max_flows);
    let mut found = Vec::new();
    let mut open = true;
    let mut packets = 0u64;
    let result = reader::read_all(bar.wrap_read(file), |p| {
        tracker.frame(p.time_ns, p.linktype, p.data, &mut found);
        if found.len() >= BATCH_FINDINGS {
            open = ctx.send_blocking(std::mem::take(&mut found), false);
        }
        packets += 1;
        open && (!packets.is_multiple_of(SHUTDOWN_EVERY) || !ctx.shutdown.is_cancelled())
    });
    bar.finish_and_clear();
    tracker.finish(&mut found);
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
            ctx.send_blocking(found, true);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            ));
        }
    }
    ctx.send_blocking(found, true);
    Ok(())
}
