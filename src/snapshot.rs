//! The inventory on disk: written atomically by the `file` sink, read back by `run` at start
//! so counts and first-seen times survive restarts.
//!
//! `{"schema_version": 1, "entries": [{"key": {...}, "entry": {...}}]}`

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic_write::write_atomically;
use crate::inventory::{Entry, Key};

const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    schema_version: u32,
    entries: Vec<SnapshotEntry>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotEntry {
    key: Key,
    entry: Entry,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path} is not an inventory snapshot: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
}

/// The entries of the snapshot at `path`; none when there is no file yet.
pub fn load(path: &Path) -> Result<Vec<(Key, Entry)>, SnapshotError> {
    let name = || path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SnapshotError::Read {
                path: name(),
                source,
            });
        }
    };
    let snapshot: Snapshot =
        serde_json::from_slice(&bytes).map_err(|source| SnapshotError::Json {
            path: name(),
            source,
        })?;
    Ok(snapshot
        .entries
        .into_iter()
        .map(|e| (e.key, e.entry))
        .collect())
}

/// Writes `entries` to `path` atomically.
pub async fn write<'a>(
    path: &Path,
    entries: impl Iterator<Item = (&'a Key, &'a Entry)>,
) -> io::Result<()> {
    let snapshot = Snapshot {
        schema_version: SCHEMA_VERSION,
        entries: entries
            .map(|(key, entry)| SnapshotEntry {
                key: key.clone(),
                entry: entry.clone(),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec(&snapshot).map_err(io::Error::other)?;
    write_atomically(path, &bytes).await
}
