//! A file read to its end, or followed like `tail -F`: polled at EOF, reopened when the path
//! names a new file (rename + create rotation, after the old one is read to its end), read
//! again from the start when truncated in place (copytruncate), waited for while missing.

use std::io::{self, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use tokio::fs::File;
use tokio::io::AsyncSeekExt;

use super::SourceCtx;
use super::framing::{Fill, LineFramer};
use crate::config::{FileSourceConfig, StartAt};

/// Identity of an open file: what rotation changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    fn of(m: &std::fs::Metadata) -> Self {
        Identity {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

struct Open {
    file: File,
    identity: Identity,
}

async fn open(path: &Path, seek_end: bool) -> io::Result<Open> {
    let mut file = File::open(path).await?;
    let identity = Identity::of(&file.metadata().await?);
    if seek_end {
        file.seek(SeekFrom::End(0)).await?;
    }
    Ok(Open { file, identity })
}

pub async fn run(cfg: FileSourceConfig, ctx: SourceCtx) -> io::Result<()> {
    let mut framer = ctx.framer();
    let result = read(&cfg, &ctx, &mut framer).await;
    ctx.finish(framer).await;
    result
}

async fn read(cfg: &FileSourceConfig, ctx: &SourceCtx, framer: &mut LineFramer) -> io::Result<()> {
    let poll = Duration::from_millis(cfg.poll_interval_ms);
    let mut current: Option<Open> = None;
    let mut first_open = true;
    let mut missing_logged = false;
    loop {
        let open_file = match current.as_mut() {
            Some(o) => o,
            None => match open(&cfg.path, first_open && cfg.start_at == StartAt::End).await {
                Ok(o) => {
                    first_open = false;
                    missing_logged = false;
                    current.insert(o)
                }
                Err(e) if cfg.follow => {
                    if !missing_logged {
                        tracing::warn!(path = %cfg.path.display(), "waiting for file: {e}");
                        missing_logged = true;
                    }
                    if !sleep_or_stop(ctx, poll).await {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        let fill = tokio::select! {
            _ = ctx.shutdown.cancelled() => return Ok(()),
            fill = framer.fill(&mut open_file.file) => fill?,
        };
        match fill {
            Fill::Lines(lines) => {
                if !ctx.send(lines, framer).await {
                    return Ok(());
                }
            }
            Fill::Partial => {}
            Fill::Eof if !cfg.follow => return Ok(()),
            Fill::Eof => {
                match check_rotation(&cfg.path, open_file).await {
                    Rotation::Same => {}
                    Rotation::Replaced => {
                        tracing::info!(path = %cfg.path.display(), "file rotated; reopening");
                        if let Some(last) = framer.finish()
                            && !ctx.send(last, framer).await
                        {
                            return Ok(());
                        }
                        current = None;
                        continue;
                    }
                    Rotation::Truncated => {
                        tracing::info!(path = %cfg.path.display(), "file truncated; reading from its start");
                        framer.reset();
                        open_file.file.seek(SeekFrom::Start(0)).await?;
                        continue;
                    }
                }
                if !sleep_or_stop(ctx, poll).await {
                    return Ok(());
                }
            }
        }
    }
}

enum Rotation {
    Same,
    Replaced,
    Truncated,
}

async fn check_rotation(path: &Path, open: &mut Open) -> Rotation {
    match tokio::fs::metadata(path).await {
        Ok(m) if Identity::of(&m) != open.identity => Rotation::Replaced,
        Ok(m) => match open.file.stream_position().await {
            Ok(pos) if m.len() < pos => Rotation::Truncated,
            _ => Rotation::Same,
        },
        // Renamed away and not yet recreated: keep the old file until the new one appears.
        Err(_) => Rotation::Same,
    }
}

/// Waits `d`; false when shutdown came first.
async fn sleep_or_stop(ctx: &SourceCtx, d: Duration) -> bool {
    tokio::select! {
        _ = ctx.shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}
