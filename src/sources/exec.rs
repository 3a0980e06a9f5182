//! Lines a command writes to stdout (`kubectl logs -f ...`, `hubble observe -o json
//! --follow`). Its stderr goes to the log; when it exits it is started again after a backoff
//! that doubles up to a limit and resets once a run lasted long enough.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::SourceCtx;
use super::framing::{Fill, LineFramer};
use crate::config::ExecSourceConfig;
use crate::telemetry::RateLimitedWarn;

/// A run at least this long resets the backoff: the command worked for a while.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

pub async fn run(cfg: ExecSourceConfig, ctx: SourceCtx) -> io::Result<()> {
    let mut framer = ctx.framer();
    let initial = Duration::from_millis(cfg.restart_backoff_ms);
    let max = Duration::from_millis(cfg.max_restart_backoff_ms.max(cfg.restart_backoff_ms));
    let mut backoff = initial;
    loop {
        let started = Instant::now();
        match run_once(&cfg, &ctx, &mut framer).await {
            Ok(Some(status)) => tracing::warn!(source = %ctx.stats.name, %status, "command exited"),
            Ok(None) => break,
            Err(e) => tracing::error!(source = %ctx.stats.name, "command failed: {e}"),
        }
        if let Some(last) = framer.finish()
            && !ctx.send(last, &mut framer).await
        {
            break;
        }
        if !cfg.restart {
            break;
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = initial;
        }
        tracing::info!(source = %ctx.stats.name, ?backoff, "restarting command");
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(max);
    }
    ctx.finish(framer).await;
    Ok(())
}

/// Runs the command until it exits (`Some(status)`) or shutdown / a closed pipeline stops it
/// (`None`, the child killed).
async fn run_once(
    cfg: &ExecSourceConfig,
    ctx: &SourceCtx,
    framer: &mut LineFramer,
) -> io::Result<Option<ExitStatus>> {
    let (program, args) = cfg
        .command
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout pipe"))?;
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(log_stderr(ctx.stats.name.clone(), stderr));
    }
    loop {
        let fill = tokio::select! {
            _ = ctx.shutdown.cancelled() => return stop(child).await,
            fill = framer.fill(&mut stdout) => fill?,
        };
        match fill {
            Fill::Lines(lines) => {
                if !ctx.send(lines, framer).await {
                    return stop(child).await;
                }
            }
            Fill::Partial => {}
            Fill::Eof => return child.wait().await.map(Some),
        }
    }
}

async fn stop(mut child: Child) -> io::Result<Option<ExitStatus>> {
    child.kill().await?;
    Ok(None)
}

async fn log_stderr(source: String, stderr: tokio::process::ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    let mut warn = RateLimitedWarn::default();
    while let Ok(Some(line)) = lines.next_line().await {
        if warn.should_log() {
            tracing::warn!(source = %source, so_far = warn.seen(), "stderr: {line}");
        }
    }
}
