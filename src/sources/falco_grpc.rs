//! Falco's legacy gRPC outputs (`falco.outputs.service/sub`, Falco before 0.44) over a unix
//! socket or TCP with mutual TLS: a subscription kept open, each alert turned into one line of
//! Falco's JSON alert shape for the stage (`output_fields` arrive as strings; the parser takes
//! them either way). A broken subscription is renewed with backoff; Falco keeps no history, so
//! alerts raised meanwhile are not replayed (the gap is logged).

use std::borrow::Cow;
use std::io;

use super::SourceCtx;
use super::grpc_stream::{Backoff, Ended, follow};
use crate::config::FalcoSourceConfig;
use crate::grpc::rfc3339;
use crate::parse::falco::{Alert, Fields};
use crate::proto::falco::service_client::ServiceClient;
use crate::proto::falco::{Priority, Request, Response};

pub async fn run(cfg: FalcoSourceConfig, ctx: SourceCtx) -> io::Result<()> {
    let mut backoff = Backoff::new(cfg.reconnect_backoff_ms);
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
                    tracing::warn!(source = %ctx.stats.name, %address, "falco: {e}; retrying in {:?}", backoff.current());
                    backoff.wait(&ctx).await;
                    continue;
                }
            },
        };
        tracing::info!(source = %ctx.stats.name, %address, "falco: subscribed to alerts");
        let ended = follow(&ctx, &mut stream, &mut backoff, |response, lines| {
            if serde_json::to_writer(&mut *lines, &to_alert(&response)).is_ok() {
                lines.push(b'\n');
            }
        })
        .await;
        match ended {
            Ended::Stopped => break,
            Ended::Broken(why) => {
                tracing::warn!(source = %ctx.stats.name, "falco: {why}; alerts until the next subscription are missed; resubscribing in {:?}", backoff.current());
            }
        }
        backoff.wait(&ctx).await;
    }
    Ok(())
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
        time: r.time.and_then(rfc3339).map(Cow::Owned),
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
