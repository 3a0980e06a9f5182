//! Bearer tokens for the HTTP receivers (`http`, `falco` over http): with `auth.token_file`
//! set, a request without `Authorization: Bearer <token>` gets 401 and is counted
//! (`unauthorized`), its body never parsed. The file is read at every request, so a rotated
//! Secret takes effect at once; the comparison takes the same time for every wrong token.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::SourceCtx;
use crate::config::AuthConfig;
use crate::telemetry::{Outcome, RateLimitedWarn};

/// What a receiver checks requests against.
pub struct Guard {
    auth: AuthConfig,
    ctx: SourceCtx,
    warn: Mutex<RateLimitedWarn>,
}

impl Guard {
    /// Whether `headers` carry the token now in the file (an unreadable or empty file lets
    /// nothing in).
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Ok(token) = self.auth.token() else {
            return false;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
    }
}

/// The guard of a receiver's `auth` settings; none without them. Fails when the token file
/// holds no token, so a receiver never starts refusing everything.
pub fn guard(auth: Option<&AuthConfig>, ctx: &SourceCtx) -> std::io::Result<Option<Arc<Guard>>> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    if let Err(why) = auth.token() {
        return Err(std::io::Error::other(format!(
            "auth.token_file {} {why}",
            auth.token_file.display()
        )));
    }
    Ok(Some(Arc::new(Guard {
        auth: auth.clone(),
        ctx: ctx.clone(),
        warn: Mutex::new(RateLimitedWarn::default()),
    })))
}

/// Adds the token check to a receiver's routes.
pub fn protect(app: axum::Router, guard: Option<Arc<Guard>>) -> axum::Router {
    match guard {
        Some(guard) => app.layer(axum::middleware::from_fn_with_state(guard, require_token)),
        None => app,
    }
}

/// The middleware: 401 for a request without the token, else on to the handler.
pub async fn require_token(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    // Health checks (kubelet probes) need no token.
    if request.uri().path() == "/healthz" || guard.admits(request.headers()) {
        return next.run(request).await;
    }
    guard.ctx.count_lost(1, Outcome::Dropped, "unauthorized");
    let mut warn = guard.warn.lock().unwrap_or_else(|p| p.into_inner());
    if warn.should_log() {
        tracing::warn!(source = %guard.ctx.stats.name, so_far = warn.seen(), "request without a valid bearer token refused (401)");
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "a bearer token is required\n",
    )
        .into_response()
}
