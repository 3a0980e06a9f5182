//! Newline-delimited text over TCP, as Vector's `socket` sink (text codec) and `nc` send.
//! Each connection is framed on its own; a bound on connections refuses the excess.

use std::io;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::SourceCtx;
use super::framing::Fill;
use crate::config::TcpSourceConfig;
use crate::pipeline::Stream;

pub async fn run(cfg: TcpSourceConfig, listener: TcpListener, ctx: SourceCtx) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
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
            connection(stream, &id, &ctx).await;
            drop(slot);
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
    ctx.finish(ctx.framer()).await;
    Ok(())
}

async fn connection(mut stream: TcpStream, id: &Stream, ctx: &SourceCtx) {
    let mut framer = ctx.framer();
    loop {
        let fill = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            fill = framer.fill(&mut stream) => fill,
        };
        match fill {
            Ok(Fill::Lines(lines)) => {
                if !ctx.send_on(id, lines, &mut framer, false).await {
                    return;
                }
            }
            Ok(Fill::Partial) => {}
            Ok(Fill::Eof) => break,
            Err(e) => {
                tracing::debug!(source = %ctx.stats.name, "connection ended: {e}");
                break;
            }
        }
    }
    let last = framer.finish().unwrap_or_default();
    ctx.send_on(id, last, &mut framer, true).await;
}
