//! Bearer tokens for the HTTP receivers (`http`, `falco` over http): with `auth.token_file`
//! set, a request without `Authorization: Bearer <token>` gets 401 and is counted
//! (`unauthorized`), its body never parsed. The file is read at every request, so a rotated
//! Secret takes effect at once; the comparison takes the same time for every wrong token.

use std::path::{Path, PathBuf};
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
    token_file: PathBuf,
    ctx: SourceCtx,
    warn: Mutex<RateLimitedWarn>,
}

impl Guard {
    /// A guard for the token in `token_file`; fails when the file cannot be read or holds
    /// no token, so a receiver never starts refusing everything.
    pub fn new(token_file: &Path, ctx: SourceCtx) -> std::io::Result<Arc<Guard>> {
        let token = std::fs::read_to_string(token_file).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("auth.token_file {}: {e}", token_file.display()),
            )
        })?;
        if token.trim().is_empty() {
            return Err(std::io::Error::other(format!(
                "auth.token_file {} holds no token",
                token_file.display()
            )));
        }
        Ok(Arc::new(Guard {
            token_file: token_file.to_path_buf(),
            ctx,
            warn: Mutex::new(RateLimitedWarn::default()),
        }))
    }

    /// Whether `headers` carry the token now in the file (an unreadable or empty file lets
    /// nothing in).
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Ok(token) = std::fs::read_to_string(&self.token_file) else {
            return false;
        };
        let token = token.trim();
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match given {
            Some(given) if !token.is_empty() => {
                bool::from(given.as_bytes().ct_eq(token.as_bytes()))
            }
            _ => false,
        }
    }
}

/// The guard of a receiver's `auth` settings, read at start; none without them.
pub fn guard(auth: Option<&AuthConfig>, ctx: &SourceCtx) -> std::io::Result<Option<Arc<Guard>>> {
    auth.map(|a| Guard::new(&a.token_file, ctx.clone()))
        .transpose()
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
