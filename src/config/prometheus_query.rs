//! The `prometheus_query` source's settings.

use std::path::PathBuf;

use serde::Deserialize;

use super::TlsConfig;

/// Istio's standard metrics (on by default in every mesh) and Envoy's cluster stats, read
/// from a Prometheus server's HTTP API on an interval.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusQuerySourceConfig {
    /// The server, e.g. `http://prometheus.istio-system:9090`.
    pub url: String,
    /// Instant queries returning counters; each series whose counter grew is an observation.
    #[serde(default = "default_queries")]
    pub queries: Vec<String>,
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    /// At the first query, what the counters grew by over this many seconds before it
    /// counts too (`increase(...[lookback])`); 0 counts only what grows from then on.
    #[serde(default = "default_lookback_secs")]
    pub lookback_secs: u64,
    /// A file holding a bearer token (a service account's token, say), read at every query
    /// so a rotated token is used.
    pub bearer_token_file: Option<PathBuf>,
    /// TLS for an `https` URL: `ca`, and `cert` with `key` for a client certificate.
    pub tls: Option<TlsConfig>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    pub name: Option<String>,
}

/// Calls reported by the calling side's proxy, and Envoy's upstream connections per
/// outbound cluster (where proxy stats are scraped).
fn default_queries() -> Vec<String> {
    [
        r#"istio_tcp_connections_opened_total{reporter="source"}"#,
        r#"istio_requests_total{reporter="source"}"#,
        r#"envoy_cluster_upstream_cx_total{cluster_name=~"outbound\\|.*"}"#,
    ]
    .map(String::from)
    .to_vec()
}

fn default_interval_secs() -> u64 {
    60
}

fn default_lookback_secs() -> u64 {
    3600
}

fn default_timeout_secs() -> u64 {
    30
}
