//! Cuts a byte stream into batches of whole lines without copying each line: one read buffer
//! becomes one batch, only the trailing partial line is carried over. A partial line longer
//! than the limit is dropped up to its newline and counted; the stream goes on.

use std::io;

use memchr::{memchr, memrchr};
use tokio::io::{AsyncRead, AsyncReadExt};

/// What one read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Fill {
    /// Whole lines, each ending in `\n`.
    Lines(Vec<u8>),
    /// Bytes were read but no line completed yet.
    Partial,
    /// The reader is at its end for now.
    Eof,
}

pub struct LineFramer {
    buf: Vec<u8>,
    chunk: usize,
    max_line: usize,
    discarding: bool,
    oversize: u64,
}

impl LineFramer {
    pub fn new(chunk: usize, max_line: usize) -> Self {
        LineFramer {
            buf: Vec::with_capacity(chunk),
            chunk,
            max_line,
            discarding: false,
            oversize: 0,
        }
    }

    /// Reads once from `r`.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<Fill> {
        self.buf.reserve(self.chunk);
        let before = self.buf.len();
        if r.read_buf(&mut self.buf).await? == 0 {
            return Ok(Fill::Eof);
        }
        Ok(self.frame(before))
    }

    /// Oversize lines dropped since the last call.
    pub fn take_oversize(&mut self) -> u64 {
        std::mem::take(&mut self.oversize)
    }

    /// Bytes read but not yet handed out (the partial last line).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Forgets a partial line, as when a followed file was truncated under it.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.discarding = false;
    }

    /// At the true end of a stream: its last line when that had no newline.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if std::mem::take(&mut self.discarding) || self.buf.is_empty() {
            self.buf.clear();
            return None;
        }
        let mut last = std::mem::take(&mut self.buf);
        last.push(b'\n');
        Some(last)
    }

    fn frame(&mut self, mut from: usize) -> Fill {
        if self.discarding {
            match memchr(b'\n', &self.buf[from..]) {
                Some(i) => {
                    self.buf.drain(..from + i + 1);
                    self.discarding = false;
                    from = 0;
                }
                None => {
                    self.buf.clear();
                    return Fill::Partial;
                }
            }
        }
        match memrchr(b'\n', &self.buf[from..]) {
            Some(i) => {
                let cut = from + i + 1;
                let mut next = Vec::with_capacity(self.chunk + self.buf.len() - cut);
                next.extend_from_slice(&self.buf[cut..]);
                self.buf.truncate(cut);
                Fill::Lines(std::mem::replace(&mut self.buf, next))
            }
            None => {
                if self.buf.len() > self.max_line {
                    self.oversize += 1;
                    self.discarding = true;
                    self.buf.clear();
                }
                Fill::Partial
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], chunk: usize, max: usize) -> (Vec<u8>, u64) {
        let mut r = input;
        let mut f = LineFramer::new(chunk, max);
        let mut out = Vec::new();
        loop {
            match f.fill(&mut r).await.unwrap() {
                Fill::Lines(v) => {
                    assert_eq!(v.last(), Some(&b'\n'));
                    out.extend(v)
                }
                Fill::Partial => {}
                Fill::Eof => break,
            }
        }
        out.extend(f.finish().unwrap_or_default());
        (out, f.take_oversize())
    }

    #[tokio::test]
    async fn lines_across_reads_and_missing_final_newline() {
        let (out, oversize) = all(b"one\ntwo\nthree", 4, 100).await;
        assert_eq!(out, b"one\ntwo\nthree\n");
        assert_eq!(oversize, 0);
    }

    #[tokio::test]
    async fn oversize_line_is_skipped_and_stream_goes_on() {
        let mut input = b"a\n".to_vec();
        input.extend(vec![b'x'; 5000]);
        input.extend(b"\nb\n");
        let (out, oversize) = all(&input, 64, 256).await;
        assert_eq!(out, b"a\nb\n");
        assert_eq!(oversize, 1);
    }
}
