//! Log-shipper ingestion over HTTP, for running as a sidecar next to Fluent Bit (`http` output,
//! `format json` or `json_lines`) or Vector (`http` sink, `json` or `text` codec): `POST` of
//! newline-delimited text, or of JSON values (arrays, objects, one per line) carrying the log
//! line in a configurable field. `GET /healthz` answers `ok`. A bad body gets a 4xx and the
//! source goes on; a full pipeline makes the request wait (backpressure to the shipper). With
//! `auth`, a request without the bearer token gets 401 ([`super::auth`]).

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::routing::get;
use serde_json::Value;
use tokio::net::TcpListener;

use super::SourceCtx;
use crate::config::HttpSourceConfig;

struct Ingest {
    ctx: SourceCtx,
    line_fields: Vec<String>,
}

pub async fn run(
    cfg: HttpSourceConfig,
    listener: TcpListener,
    guard: Option<Arc<super::auth::Guard>>,
    ctx: SourceCtx,
) -> io::Result<()> {
    let state = Arc::new(Ingest {
        ctx: ctx.clone(),
        line_fields: cfg.line_fields,
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(ingest)
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .with_state(state);
    let app = super::auth::protect(app, guard);
    axum::serve(listener, app)
        .with_graceful_shutdown(ctx.shutdown.clone().cancelled_owned())
        .await?;
    ctx.finish(ctx.framer()).await;
    Ok(())
}

async fn ingest(
    State(s): State<Arc<Ingest>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    if method != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "POST log lines here; GET /healthz for health\n".into(),
        );
    }
    // By Content-Type; without one, a body that opens a JSON value is taken for JSON.
    let is_json = match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(t) => t.contains("json"),
        None => matches!(body.trim_ascii_start().first(), Some(b'[' | b'{')),
    };
    let extracted = if is_json {
        match json_lines(&body, &s.line_fields) {
            Ok(lines) => lines,
            Err(e) => {
                s.ctx.discard(1, "bad_request");
                return (StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}\n"));
            }
        }
    } else {
        Lines {
            text: body.to_vec(),
            missing_field: 0,
        }
    };
    let Lines {
        mut text,
        missing_field,
    } = extracted;
    s.ctx.discard(missing_field, "no_line_field");
    if text.last().is_some_and(|&b| b != b'\n') {
        text.push(b'\n');
    }
    let count = memchr::memchr_iter(b'\n', &text).count();
    if !s.ctx.send_batch(text, false).await {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
    }
    (StatusCode::OK, format!("accepted {count} lines\n"))
}

struct Lines {
    text: Vec<u8>,
    /// Objects without any of the line fields.
    missing_field: u64,
}

/// The log lines in a body of JSON values: arrays of them, objects with the line in one of
/// `fields` (the first present), or plain strings.
fn json_lines(body: &[u8], fields: &[String]) -> Result<Lines, serde_json::Error> {
    let mut out = Lines {
        text: Vec::with_capacity(body.len()),
        missing_field: 0,
    };
    for value in serde_json::Deserializer::from_slice(body).into_iter::<Value>() {
        match value? {
            Value::Array(items) => items.iter().for_each(|v| add(&mut out, v, fields)),
            other => add(&mut out, &other, fields),
        }
    }
    Ok(out)
}

fn add(out: &mut Lines, value: &Value, fields: &[String]) {
    let line = match value {
        Value::String(s) => Some(s.as_str()),
        Value::Object(o) => fields.iter().find_map(|f| o.get(f)?.as_str()),
        _ => None,
    };
    match line {
        Some(line) => {
            out.text
                .extend_from_slice(line.trim_end_matches(['\n', '\r']).as_bytes());
            out.text.push(b'\n');
        }
        None => out.missing_field += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<String> {
        vec!["log".into(), "message".into()]
    }

    #[test]
    fn fluent_bit_vector_and_plain_json() {
        let fb = br#"[{"date":1715673731.5,"log":"a\n"},{"date":1715673732.1,"log":"b"}]"#;
        assert_eq!(json_lines(fb, &fields()).unwrap().text, b"a\nb\n");
        let vector = b"{\"message\":\"c\",\"host\":\"x\"}\n{\"message\":\"d\"}\n";
        assert_eq!(json_lines(vector, &fields()).unwrap().text, b"c\nd\n");
        let odd = br#"["e", {"other": 1}, 5]"#;
        let lines = json_lines(odd, &fields()).unwrap();
        assert_eq!(
            (lines.text.as_slice(), lines.missing_field),
            (&b"e\n"[..], 2)
        );
        assert!(json_lines(b"[{\"log\": \"x\"", &fields()).is_err());
    }
}
