//! Syslog over UDP (RFC 5426), or any sender of one message per datagram: each datagram is one
//! line. Datagrams waiting together go to the stage as one batch. UDP has no backpressure:
//! while the stage is busy the kernel's socket buffer holds what arrives, and what overflows
//! it is lost there, as with every UDP syslog receiver.

use std::io;

use tokio::net::UdpSocket;

use super::SourceCtx;
use super::syslog_framing::push_line;
use crate::pipeline::Stream;

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

pub async fn run(socket: UdpSocket, ctx: SourceCtx) -> io::Result<()> {
    let mut datagram = vec![0u8; MAX_DATAGRAM];
    loop {
        let n = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            received = socket.recv_from(&mut datagram) => received?.0,
        };
        let mut lines = Vec::new();
        let mut oversize = 0;
        let mut received = Some(n);
        // This datagram and those already waiting make one batch.
        while let Some(n) = received {
            if n > ctx.limits.max_line_bytes {
                oversize += 1;
            } else {
                push_line(&mut lines, &datagram[..n]);
            }
            if lines.len() >= ctx.limits.read_chunk_bytes {
                break;
            }
            received = match socket.try_recv_from(&mut datagram) {
                Ok((n, _)) => Some(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                Err(e) => return Err(e),
            };
        }
        ctx.discard(oversize, "oversize");
        if !ctx.send_stream(Stream::default(), lines, false).await {
            return Ok(());
        }
    }
    ctx.send_stream(Stream::default(), Vec::new(), true).await;
    Ok(())
}
