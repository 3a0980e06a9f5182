//! Files that are either the old or the new content, never half of one, across a crash.

use std::io;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder, synced, then renamed
/// over it.
pub async fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::File::open(&tmp).await?.sync_all().await?;
    tokio::fs::rename(&tmp, path).await
}
