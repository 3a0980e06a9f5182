//! What the gRPC sources (Hubble, Falco) share: following a server stream in batches of
//! whatever has arrived, and reconnecting with a doubling backoff.

use std::time::Duration;

use futures_util::FutureExt;
use tonic::Streaming;

use super::SourceCtx;

const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct Backoff {
    base: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(base_ms: u64) -> Self {
        let base = Duration::from_millis(base_ms);
        Backoff {
            base,
            current: base,
        }
    }

    pub fn current(&self) -> Duration {
        self.current
    }

    /// Sleeps for the current wait (or until shutdown), then doubles it up to 30 s.
    pub async fn wait(&mut self, ctx: &SourceCtx) {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => {}
            _ = tokio::time::sleep(self.current) => {}
        }
        self.current = (self.current * 2).min(MAX_BACKOFF);
    }
}

/// How following a stream ended.
pub enum Ended {
    /// Shutdown, or the stage is gone.
    Stopped,
    /// The server ended or broke the stream: why.
    Broken(String),
}

/// Follows `stream`: each message is handed to `add`, which appends lines; the lines of every
/// message already received go to the stage as one batch. A message resets `backoff`.
pub async fn follow<M>(
    ctx: &SourceCtx,
    stream: &mut Streaming<M>,
    backoff: &mut Backoff,
    mut add: impl FnMut(M, &mut Vec<u8>),
) -> Ended {
    const BATCH_BYTES: usize = 256 * 1024;
    loop {
        let mut message = tokio::select! {
            _ = ctx.shutdown.cancelled() => return Ended::Stopped,
            m = stream.message() => m,
        };
        let mut lines = Vec::new();
        let broken = loop {
            match message {
                Ok(Some(m)) => {
                    backoff.current = backoff.base;
                    add(m, &mut lines);
                }
                Ok(None) => break Some("the server ended the stream".to_owned()),
                Err(status) => break Some(status.message().to_owned()),
            }
            if lines.len() >= BATCH_BYTES {
                break None;
            }
            match stream.message().now_or_never() {
                Some(m) => message = m,
                None => break None,
            }
        };
        if !lines.is_empty() && !ctx.send_batch(lines, false).await {
            return Ended::Stopped;
        }
        if let Some(why) = broken {
            return Ended::Broken(why);
        }
    }
}
