//! A receiver for Falco's `http_output`, compatible with falcosidekick's: `POST /` with one JSON
//! alert (`Content-Type: application/json`), `GET /healthz` and `GET /ping`. A body that is not
//! an alert gets 400 and is counted; a full pipeline makes Falco's request wait. With `auth`,
//! a request without the bearer token (Falco's `http_output.custom_headers`) gets 401.

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use super::SourceCtx;
use crate::config::FalcoSourceConfig;
use crate::parse::{Parsed, falco};

pub async fn run(
    cfg: FalcoSourceConfig,
    listener: TcpListener,
    guard: Option<Arc<super::auth::Guard>>,
    ctx: SourceCtx,
) -> io::Result<()> {
    let app = Router::new()
        .route("/", post(alert))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/ping", get(|| async { "pong\n" }))
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .with_state(Arc::new(ctx.clone()));
    let app = super::auth::protect(app, guard);
    axum::serve(listener, app)
        .with_graceful_shutdown(ctx.shutdown.clone().cancelled_owned())
        .await?;
    ctx.finish(ctx.framer()).await;
    Ok(())
}

async fn alert(State(ctx): State<Arc<SourceCtx>>, body: Bytes) -> (StatusCode, &'static str) {
    let body = body.trim_ascii();
    if !matches!(falco::parse(body), Ok(Parsed::Record(_))) {
        ctx.discard(1, "bad_request");
        return (
            StatusCode::BAD_REQUEST,
            "not a Falco alert (JSON with rule and output_fields)\n",
        );
    }
    // One alert is one line: a pretty-printed body is compacted.
    let mut line = if memchr::memchr(b'\n', body).is_some() {
        match serde_json::from_slice::<serde_json::Value>(body).and_then(|v| serde_json::to_vec(&v))
        {
            Ok(compact) => compact,
            Err(_) => return (StatusCode::BAD_REQUEST, "invalid JSON\n"),
        }
    } else {
        body.to_vec()
    };
    line.push(b'\n');
    if !ctx.send_batch(line, false).await {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    (StatusCode::OK, "ok\n")
}
