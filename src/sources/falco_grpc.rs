//! Falco's legacy gRPC outputs (`falco.outputs.service/sub`, Falco before 0.44) over a unix
//! socket or TCP with mutual TLS: a subscription kept open, each alert turned into one line of
//! Falco's JSON alert shape for the stage (`output_fields` arrive as strings; the parser takes
//! them either way). A broken subscription is renewed with backoff; Falco keeps no history, so
//! alerts raised meanwhile are not replayed (the gap is logged).

use std::borrow::Cow;
use std::io;
use std::time::Duration;

use futures_util::FutureExt;
use time::OffsetDateTime;

use super::SourceCtx;
use crate::config::FalcoSourceConfig;
use crate::parse::falco::{Alert, Fields};
use crate::proto::falco::service_client::ServiceClient;
use crate::proto::falco::{Priority, Request, Response};

const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub async fn run(cfg: FalcoSourceConfig, ctx: SourceCtx) -> io::Result<()> {
    let base = Duration::from_millis(cfg.reconnect_backoff_ms);
    let mut backoff = base;
    let address = cfg.address().to_owned();
    while !ctx.shutdown.is_cancelled() {
        let subscribe = async {
            let channel = crate::grpc::channel(&address, cfg.tls.as_ref())
                .await
                .map_err(|e| e.to_string())?;
            // One request, and the request stream left open: the subscription lasts.
            let requests = futures_util::StreamExt::chain(
                futures_util::stream::iter([Request {}]),
                futures_util::stream::pending(),
            );
            ServiceClient::new(channel)
                .sub(requests)
                .await
                .map_err(|s| s.message().to_owned())
        };
        let mut stream = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            s = subscribe => match s {
                Ok(s) => s.into_inner(),
                Err(e) => {
                    tracing::warn!(source = %ctx.stats.name, %address, "falco: {e}; retrying in {backoff:?}");
                    wait(&ctx, &mut backoff).await;
                    continue;
                }
            },
        };
        tracing::info!(source = %ctx.stats.name, %address, "falco: subscribed to alerts");
        loop {
            let mut message = tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                m = stream.message() => m,
            };
            let mut lines = Vec::new();
            let broken = loop {
                match message {
                    Ok(Some(response)) => {
                        backoff = base;
                        if serde_json::to_writer(&mut lines, &to_alert(&response)).is_ok() {
                            lines.push(b'\n');
                        }
                    }
                    Ok(None) => break Some("Falco ended the subscription".to_owned()),
                    Err(status) => break Some(status.message().to_owned()),
                }
                match stream.message().now_or_never() {
                    Some(m) => message = m,
                    None => break None,
                }
            };
            if !lines.is_empty() && !ctx.send_batch(lines, false).await {
                return Ok(());
            }
            if let Some(why) = broken {
                tracing::warn!(source = %ctx.stats.name, "falco: {why}; alerts until the next subscription are missed; resubscribing in {backoff:?}");
                break;
            }
        }
        wait(&ctx, &mut backoff).await;
    }
    Ok(())
}

/// Sleeps for `backoff` (or until shutdown) and doubles it up to [`MAX_BACKOFF`].
async fn wait(ctx: &SourceCtx, backoff: &mut Duration) {
    tokio::select! {
        _ = ctx.shutdown.cancelled() => {}
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}

/// The response in Falco's JSON alert shape, borrowing its strings.
pub fn to_alert(r: &Response) -> Alert<'_> {
    let field = |key: &str| {
        r.output_fields
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty() && *v != "<NA>")
            .map(Cow::Borrowed)
    };
    Alert {
        time: r.time.and_then(|t| {
            let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
            OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .ok()
                .map(|t| Cow::Owned(crate::parse::time::format(t)))
        }),
        rule: Cow::Borrowed(&r.rule),
        priority: Priority::try_from(r.priority)
            .ok()
            .map(|p| Cow::Borrowed(p.as_str_name())),
        hostname: (!r.hostname.is_empty()).then_some(Cow::Borrowed(r.hostname.as_str())),
        output_fields: Fields {
            evt_type: field("evt.type"),
            sip: field("fd.sip"),
            sport: field("fd.sport").and_then(|p| p.parse().ok()),
            sip_name: field("fd.sip.name"),
            cip: field("fd.cip"),
            name: field("fd.name"),
            l4proto: field("fd.l4proto"),
            namespace: field("k8s.ns.name"),
            pod: field("k8s.pod.name"),
        },
    }
}
