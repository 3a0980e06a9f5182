//! Text over TCP: newline-delimited, as Vector's `socket` sink (text codec) and `nc` send, or
//! framed as syslog senders frame it (`framing = "syslog"`: octet-counted or newline, RFC
//! 6587). Each connection is framed on its own; a bound on connections refuses the excess.

use std::io;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::SourceCtx;
use super::framing::{Fill, LineFramer};
use super::syslog_framing::SyslogFramer;
use crate::config::{TcpFraming, TcpSourceConfig};
use crate::pipeline::Stream;

pub async fn run(cfg: TcpSourceConfig, listener: TcpListener, ctx: SourceCtx) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let framing = cfg.framing;
    let mut connections = JoinSet::new();
    // Each connection is a stream of its own: its partial lines and format never mix.
    let mut next_stream = 0;
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(source = %ctx.stats.name, "accept failed: {e}");
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(source = %ctx.stats.name, %peer, "too many connections (max_connections); refused");
            continue;
        };
        let ctx = ctx.clone();
        next_stream += 1;
        let id = Stream {
            id: next_stream,
            origin: None,
        };
        connections.spawn(async move {
            connection(stream, &id, &ctx, framing).await;
            drop(slot);
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
    ctx.finish(ctx.framer()).await;
    Ok(())
}

/// A connection's framer, as the source's `framing` says.
enum Framer {
    Newline(LineFramer),
    Syslog(SyslogFramer),
}

impl Framer {
    async fn fill(&mut self, stream: &mut TcpStream) -> std::io::Result<Fill> {
        match self {
            Framer::Newline(f) => f.fill(stream).await,
            Framer::Syslog(f) => f.fill(stream).await,
        }
    }

    fn finish(&mut self) -> Option<Vec<u8>> {
        match self {
            Framer::Newline(f) => f.finish(),
            Framer::Syslog(f) => f.finish(),
        }
    }

    fn take_oversize(&mut self) -> u64 {
        match self {
            Framer::Newline(f) => f.take_oversize(),
            Framer::Syslog(f) => f.take_oversize(),
        }
    }
}

async fn connection(mut stream: TcpStream, id: &Stream, ctx: &SourceCtx, framing: TcpFraming) {
    let mut framer = match framing {
        TcpFraming::Newline => Framer::Newline(ctx.framer()),
        TcpFraming::Syslog => Framer::Syslog(SyslogFramer::new(
            ctx.limits.read_chunk_bytes,
            ctx.limits.max_line_bytes,
        )),
    };
    let mut end = false;
    while !end {
        let fill = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            fill = framer.fill(&mut stream) => fill,
        };
        let lines = match fill {
            Ok(Fill::Lines(lines)) => lines,
            Ok(Fill::Partial) => continue,
            Ok(Fill::Eof) => {
                end = true;
                framer.finish().unwrap_or_default()
            }
            Err(e) => {
                tracing::debug!(source = %ctx.stats.name, "connection ended: {e}");
                end = true;
                framer.finish().unwrap_or_default()
            }
        };
        ctx.discard(framer.take_oversize(), "oversize");
        if !ctx.send_stream(id.clone(), lines, end).await {
            return;
        }
    }
    if !end {
        let last = framer.finish().unwrap_or_default();
        ctx.discard(framer.take_oversize(), "oversize");
        ctx.send_stream(id.clone(), last, true).await;
    }
}
