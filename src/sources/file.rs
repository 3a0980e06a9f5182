//! A file read to its end, or followed like `tail -F`: polled at EOF, reopened when the path
//! names a new file (rename + create rotation, after the old one is read to its end), read
//! again from the start when truncated in place (copytruncate), waited for while missing.

use std::io::{self, SeekFrom};
use std::time::Duration;

use super::SourceCtx;
use super::framing::Fill;
use super::tail::{Rotation, Tail};
use crate::config::{FileSourceConfig, StartAt};

pub async fn run(cfg: FileSourceConfig, ctx: SourceCtx) -> io::Result<()> {
    let poll = Duration::from_millis(cfg.poll_interval_ms);
    let mut start = match cfg.start_at {
        StartAt::End if cfg.follow => SeekFrom::End(0),
        _ => SeekFrom::Start(0),
    };
    let mut missing_logged = false;
    loop {
        let mut tail = match Tail::open(&cfg.path, start, ctx.framer()).await {
            Ok(tail) => tail,
            Err(e) if cfg.follow => {
                if !missing_logged {
                    tracing::warn!(path = %cfg.path.display(), "waiting for file: {e}");
                    missing_logged = true;
                }
                if !sleep_or_stop(&ctx, poll).await {
                    break;
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        missing_logged = false;
        // Files that replace a rotated one are read from their start.
        start = SeekFrom::Start(0);
        let reopen = follow(&cfg, &ctx, &mut tail, poll).await;
        let last = tail.framer.finish();
        if let Some(last) = last
            && !ctx.send(last, &mut tail.framer).await
        {
            break;
        }
        if !reopen? {
            break;
        }
    }
    ctx.finish(ctx.framer()).await;
    Ok(())
}

/// Reads `tail` until it ends (false: not following, or shutdown) or is replaced (true).
async fn follow(
    cfg: &FileSourceConfig,
    ctx: &SourceCtx,
    tail: &mut Tail,
    poll: Duration,
) -> io::Result<bool> {
    loop {
        let fill = tokio::select! {
            _ = ctx.shutdown.cancelled() => return Ok(false),
            fill = tail.fill() => fill?,
        };
        match fill {
            Fill::Lines(lines) => {
                if !ctx.send(lines, &mut tail.framer).await {
                    return Ok(false);
                }
            }
            Fill::Partial => {}
            Fill::Eof if !cfg.follow => return Ok(false),
            Fill::Eof => match tail.rotation().await {
                Rotation::Replaced => {
                    tracing::info!(path = %cfg.path.display(), "file rotated; reopening");
                    return Ok(true);
                }
                Rotation::Truncated => {
                    tracing::info!(path = %cfg.path.display(), "file truncated; reading from its start");
                    tail.rewind().await?;
                }
                // Renamed away and not yet recreated: keep the old file until a new one appears.
                Rotation::Same | Rotation::Gone => {
                    if !sleep_or_stop(ctx, poll).await {
                        return Ok(false);
                    }
                }
            },
        }
    }
}

/// Waits `d`; false when shutdown came first.
pub(super) async fn sleep_or_stop(ctx: &SourceCtx, d: Duration) -> bool {
    tokio::select! {
        _ = ctx.shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}
