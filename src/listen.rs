//! TCP listeners of sources and sinks, bound at start so a taken address fails it at once.

use std::io;

use tokio::net::TcpListener;

/// Listens on `address` (`IP:port`); the error names the address.
pub async fn bind(address: &str) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {address}: {e}")))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    Ok(listener)
}
