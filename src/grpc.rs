//! gRPC channels to Hubble Relay and Falco: TCP, with TLS or mutual TLS when configured, or a
//! unix socket (`unix:///var/run/cilium/hubble.sock`).

use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("invalid address {0:?}: write host:port, https://host:port or unix:///path")]
    Address(String),
}

/// Connects to `address`; a dead peer is noticed by HTTP/2 keepalives.
pub async fn channel(address: &str, tls: Option<&TlsConfig>) -> Result<Channel, GrpcError> {
    if let Some(path) = address.strip_prefix("unix://") {
        let path = path.to_owned();
        // The URI is a placeholder: the connector ignores it and dials the socket.
        return Ok(Endpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await?);
    }
    let uri = if address.contains("://") {
        address.to_owned()
    } else if tls.is_some() {
        format!("https://{address}")
    } else {
        format!("http://{address}")
    };
    let mut endpoint = Endpoint::from_shared(uri)
        .map_err(|_| GrpcError::Address(address.to_owned()))?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    if let Some(t) = tls {
        endpoint = endpoint.tls_config(client_tls(t)?)?;
    }
    Ok(endpoint.connect().await?)
}

/// A protobuf timestamp as the RFC3339 text the JSON formats carry.
pub fn rfc3339(t: prost_types::Timestamp) -> Option<String> {
    let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .map(crate::parse::time::format)
}

fn client_tls(t: &TlsConfig) -> Result<ClientTlsConfig, GrpcError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|source| GrpcError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    let mut c = ClientTlsConfig::new();
    if let Some(ca) = &t.ca {
        c = c.ca_certificate(Certificate::from_pem(read(ca)?));
    } else {
        c = c.with_native_roots();
    }
    if let (Some(cert), Some(key)) = (&t.cert, &t.key) {
        c = c.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    if let Some(name) = &t.server_name {
        c = c.domain_name(name);
    }
    Ok(c)
}
