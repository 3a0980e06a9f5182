//! One followed file: read by whole lines, checked at EOF for rotation (the path now names
//! another file) and copytruncate (the file is shorter than what was read), and able to say
//! the offset of the last whole line it handed out, for checkpoints.

use std::io::{self, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::fs::File;
use tokio::io::AsyncSeekExt;

use super::framing::{Fill, LineFramer};

/// Identity of a file: what rotation changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
}

impl Identity {
    pub fn of(m: &std::fs::Metadata) -> Self {
        Identity {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// What the path looks like once the open file is read to its end.
pub enum Rotation {
    Same,
    /// The path names another file now (rename + create): finish this one, open that one.
    Replaced,
    /// Shorter than what was read (copytruncate): read again from the start.
    Truncated,
    /// Renamed away or deleted and not recreated (yet).
    Gone,
}

pub struct Tail {
    pub path: PathBuf,
    pub identity: Identity,
    file: File,
    pub framer: LineFramer,
}

impl Tail {
    /// Opens `path` at `start` (an offset beyond the end means the file was replaced or
    /// truncated since: it is read from its start).
    pub async fn open(path: &Path, start: SeekFrom, framer: LineFramer) -> io::Result<Tail> {
        let mut file = File::open(path).await?;
        let meta = file.metadata().await?;
        let start = match start {
            SeekFrom::Start(offset) if offset > meta.len() => SeekFrom::Start(0),
            other => other,
        };
        file.seek(start).await?;
        Ok(Tail {
            path: path.to_path_buf(),
            identity: Identity::of(&meta),
            file,
            framer,
        })
    }

    pub async fn fill(&mut self) -> io::Result<Fill> {
        self.framer.fill(&mut self.file).await
    }

    pub async fn rotation(&mut self) -> Rotation {
        match tokio::fs::metadata(&self.path).await {
            Ok(m) if Identity::of(&m) != self.identity => Rotation::Replaced,
            Ok(m) => match self.file.stream_position().await {
                Ok(pos) if m.len() < pos => Rotation::Truncated,
                _ => Rotation::Same,
            },
            Err(_) => Rotation::Gone,
        }
    }

    /// After copytruncate: forget the partial line and read from the start.
    pub async fn rewind(&mut self) -> io::Result<()> {
        self.framer.reset();
        self.file.seek(SeekFrom::Start(0)).await.map(drop)
    }

    /// The offset just past the last whole line handed out.
    pub async fn offset(&mut self) -> io::Result<u64> {
        let pos = self.file.stream_position().await?;
        Ok(pos.saturating_sub(self.framer.buffered() as u64))
    }
}
