//! Sources: each reads bytes, frames them into batches of whole lines and sends them to the
//! stage over a bounded channel (a full channel makes the source wait: backpressure).

mod auth;
#[cfg(feature = "ebpf")]
mod ebpf;
mod exec;
mod falco_grpc;
mod falco_http;
mod file;
pub mod framing;
mod grpc_stream;
mod http;
pub mod hubble;
mod kafka;
mod kubernetes_files;
mod kubernetes_logs;
mod pcap;
mod prometheus_query;
mod stdin;
mod syslog_framing;
mod tail;
mod tcp;
mod udp;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::capture::finding::Finding;
use crate::config::{FalcoInput, Limits, SourceConfig};
use crate::listen::bind;
use crate::pipeline::{Batch, Stream};
use crate::telemetry::{ComponentStats, Outcome, Tally};
use framing::LineFramer;

/// What every source task needs: where to send, how to count, when to stop.
#[derive(Clone)]
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
        self.send_on(&Stream::default(), lines, framer, false).await
    }

    /// Sends whole lines of one stream; `end` closes the stream in the stage.
    async fn send_on(
        &self,
        stream: &Stream,
        lines: Vec<u8>,
        framer: &mut LineFramer,
        end: bool,
    ) -> bool {
        self.discard(framer.take_oversize(), "oversize");
        self.send_stream(stream.clone(), lines, end).await
    }

    async fn send_batch(&self, lines: Vec<u8>, end: bool) -> bool {
        self.send_stream(Stream::default(), lines, end).await
    }

    fn batch(&self, stream: Stream, lines: Vec<u8>, end: bool) -> Batch {
        Batch {
            source: self.id,
            stream,
            lines,
            findings: Vec::new(),
            read_at: OffsetDateTime::now_utc(),
            end,
            ack: None,
        }
    }

    async fn send_stream(&self, stream: Stream, lines: Vec<u8>, end: bool) -> bool {
        self.tx.send(self.batch(stream, lines, end)).await.is_ok()
    }

    fn findings_batch(&self, findings: Vec<Finding>, end: bool) -> Batch {
        let mut batch = self.batch(Stream::default(), Vec::new(), end);
        batch.findings = findings;
        batch
    }

    /// Typed findings; waits while the stage is busy. False when the stage is gone.
    async fn send_findings(&self, findings: Vec<Finding>, end: bool) -> bool {
        self.tx
            .send(self.findings_batch(findings, end))
            .await
            .is_ok()
    }

    /// A capture's findings, from its blocking thread: waits while the stage is busy.
    fn send_blocking(&self, findings: Vec<Finding>, end: bool) -> bool {
        self.tx
            .blocking_send(self.findings_batch(findings, end))
            .is_ok()
    }

    /// Sends whole lines and waits until the stage has them in the inventory; false when
    /// the stage is gone.
    async fn send_and_wait(&self, lines: Vec<u8>) -> bool {
        let (ack, done) = oneshot::channel();
        let mut batch = self.batch(Stream::default(), lines, false);
        batch.ack = Some(ack);
        self.tx.send(batch).await.is_ok() && done.await.is_ok()
    }

    /// Counts `n` received events that were dropped as malformed before the stage.
    fn discard(&self, n: u64, reason: &'static str) {
        if n == 0 {
            return;
        }
        tracing::warn!(source = %self.stats.name, n, reason, "input dropped");
        self.count_lost(n, Outcome::Malformed, reason);
    }

    /// Counts `n` received events lost before the stage, for callers that log themselves.
    fn count_lost(&self, n: u64, outcome: Outcome, reason: &'static str) {
        let mut tally = Tally::received(n);
        tally.count_n(outcome, Some(reason), n);
        self.stats.add(&mut tally);
    }

    /// Sends the stream's unterminated last line and the end marker.
    async fn finish(&self, mut framer: LineFramer) {
        let lines = framer.finish().unwrap_or_default();
        self.discard(framer.take_oversize(), "oversize");
        self.send_batch(lines, true).await;
    }
}

/// Starts one source task. Listeners are bound first, so an address in use fails the start.
pub async fn start(config: SourceConfig, ctx: SourceCtx) -> io::Result<JoinHandle<()>> {
    let name = ctx.stats.name.clone();
    let run: Pin<Box<dyn Future<Output = io::Result<()>> + Send>> = match config {
        SourceConfig::File(f) => Box::pin(file::run(f, ctx)),
        SourceConfig::Stdin(_) => Box::pin(stdin::run(ctx)),
        SourceConfig::Exec(e) => Box::pin(exec::run(e, ctx)),
        SourceConfig::KubernetesFiles(k) => Box::pin(kubernetes_files::run(k, ctx)),
        SourceConfig::KubernetesLogs(k) => {
            let client =
                crate::kubernetes::client(k.kubeconfig.as_deref(), k.context.as_deref()).await?;
            Box::pin(kubernetes_logs::run(k, client, ctx))
        }
        SourceConfig::Tcp(t) => {
            let listener = bind(&t.address).await?;
            Box::pin(tcp::run(t, listener, ctx))
        }
        SourceConfig::Udp(u) => {
            let socket = tokio::net::UdpSocket::bind(&u.address).await.map_err(|e| {
                io::Error::new(e.kind(), format!("cannot listen on {}: {e}", u.address))
            })?;
            tracing::info!(address = %socket.local_addr()?, "listening (udp)");
            Box::pin(udp::run(socket, ctx))
        }
        SourceConfig::Http(h) => {
            let guard = auth::guard(h.auth.as_ref(), &ctx)?;
            let listener = bind(&h.address).await?;
            Box::pin(http::run(h, listener, guard, ctx))
        }
        SourceConfig::Hubble(h) => Box::pin(hubble::run(h, ctx)),
        SourceConfig::Pcap(p) => Box::pin(pcap::run(p, ctx)),
        SourceConfig::Falco(f) if f.input == FalcoInput::Http => {
            let guard = auth::guard(f.auth.as_ref(), &ctx)?;
            let listener = bind(f.address()).await?;
            Box::pin(falco_http::run(f, listener, guard, ctx))
        }
        SourceConfig::Falco(f) => Box::pin(falco_grpc::run(f, ctx)),
        #[cfg(feature = "ebpf")]
        SourceConfig::Ebpf(e) => {
            // Attached before the pipeline starts: a missing capability fails the start.
            let probes = ebpf::Probes::attach(&e)?;
            Box::pin(ebpf::run(e, probes, ctx))
        }
        #[cfg(not(feature = "ebpf"))]
        SourceConfig::Ebpf(_) => {
            return Err(io::Error::other(
                "this build has no ebpf source (build with --features ebpf)",
            ));
        }
        SourceConfig::PrometheusQuery(p) => {
            let client = prometheus_query::client(&p)?;
            Box::pin(prometheus_query::run(p, client, ctx))
        }
        SourceConfig::Kafka(k) => {
            let consumer = kafka::consumer(&k, &name)?;
            Box::pin(kafka::run(k, consumer, ctx))
        }
    };
    Ok(tokio::spawn(async move {
        if let Err(e) = run.await {
            tracing::error!(source = %name, "source stopped: {e}");
        }
    }))
}
