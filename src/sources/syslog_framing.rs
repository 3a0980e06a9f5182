//! Syslog over TCP as senders frame it (RFC 6587): a message is octet-counted (`LEN SP MSG`,
//! rsyslog's `TCP_Framing="octet-counted"`, syslog-ng's `syslog()` driver) or, when it does not
//! start with a digit, ends at a newline (the traditional framing). Each becomes one line;
//! its syslog header is taken off later with every other collector prefix.

use std::io;

use memchr::memchr;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::framing::Fill;

/// Digits an octet count may have (a count past 10^9 is not a syslog message).
const MAX_COUNT_DIGITS: usize = 9;

pub struct SyslogFramer {
    buf: Vec<u8>,
    chunk: usize,
    max_line: usize,
    /// Bytes of an oversize octet-counted message still to be passed over.
    skip: usize,
    /// Passing over an oversize newline-terminated message, up to its newline.
    discarding: bool,
    oversize: u64,
}

impl SyslogFramer {
    pub fn new(chunk: usize, max_line: usize) -> Self {
        SyslogFramer {
            buf: Vec::with_capacity(chunk),
            chunk,
            max_line,
            skip: 0,
            discarding: false,
            oversize: 0,
        }
    }

    /// Reads once from `r`; whole messages come out as lines.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<Fill> {
        self.buf.reserve(self.chunk);
        if r.read_buf(&mut self.buf).await? == 0 {
            return Ok(Fill::Eof);
        }
        let lines = self.frame();
        Ok(if lines.is_empty() {
            Fill::Partial
        } else {
            Fill::Lines(lines)
        })
    }

    /// Oversize messages dropped since the last call.
    pub fn take_oversize(&mut self) -> u64 {
        std::mem::take(&mut self.oversize)
    }

    /// At the end of the connection: an unterminated last message, when whole.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.buf);
        let cut_short = self.skip > 0 || self.discarding || count_of(&rest).is_some();
        if rest.is_empty() || cut_short {
            return None;
        }
        let mut line = Vec::with_capacity(rest.len() + 1);
        push_line(&mut line, &rest);
        Some(line)
    }

    /// Every whole message in the buffer as a line; the partial last one stays.
    fn frame(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < self.buf.len() {
            let rest = &self.buf[at..];
            if self.skip > 0 {
                let n = self.skip.min(rest.len());
                self.skip -= n;
                at += n;
                continue;
            }
            if self.discarding {
                match memchr(b'\n', rest) {
                    Some(i) => {
                        self.discarding = false;
                        at += i + 1;
                        continue;
                    }
                    None => {
                        at = self.buf.len();
                        break;
                    }
                }
            }
            if let Some((digits, len)) = count_of(rest) {
                if len > self.max_line {
                    self.oversize += 1;
                    self.skip = len;
                    at += digits + 1;
                    continue;
                }
                let Some(msg) = rest.get(digits + 1..digits + 1 + len) else {
                    break;
                };
                push_line(&mut out, msg);
                at += digits + 1 + len;
                continue;
            }
            match memchr(b'\n', rest) {
                Some(i) if i > self.max_line => {
                    self.oversize += 1;
                    at += i + 1;
                }
                Some(i) => {
                    push_line(&mut out, &rest[..i]);
                    at += i + 1;
                }
                None => {
                    if rest.len() > self.max_line {
                        self.oversize += 1;
                        self.discarding = true;
                        at = self.buf.len();
                    }
                    break;
                }
            }
        }
        self.buf.drain(..at);
        out
    }
}

/// `LEN SP` at the start of `bytes`: the count's digits and its value. A message that starts
/// with a digit but has no count (or no space yet) is read as newline-terminated.
fn count_of(bytes: &[u8]) -> Option<(usize, usize)> {
    let digits = bytes
        .iter()
        .take(MAX_COUNT_DIGITS + 1)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > MAX_COUNT_DIGITS || bytes.get(digits) != Some(&b' ') {
        return None;
    }
    let len = std::str::from_utf8(&bytes[..digits]).ok()?.parse().ok()?;
    Some((digits, len))
}

/// `msg` as one line: a trailing CR or LF dropped, newlines inside it made spaces.
pub(super) fn push_line(out: &mut Vec<u8>, msg: &[u8]) {
    let msg = msg.strip_suffix(b"\n").unwrap_or(msg);
    let msg = msg.strip_suffix(b"\r").unwrap_or(msg);
    out.extend(msg.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], chunk: usize, max: usize) -> (Vec<u8>, u64) {
        let mut r = input;
        let mut f = SyslogFramer::new(chunk, max);
        let mut out = Vec::new();
        loop {
            match f.fill(&mut r).await.unwrap() {
                Fill::Lines(v) => out.extend(v),
                Fill::Partial => {}
                Fill::Eof => break,
            }
        }
        out.extend(f.finish().unwrap_or_default());
        (out, f.take_oversize())
    }

    #[tokio::test]
    async fn octet_counted_and_newline_framed_messages_over_any_reads() {
        let msg = |m: &str| format!("{} {m}", m.len());
        let input = format!(
            "{}{}<13>plain one\n{}<13>last",
            msg("<13>counted one"),
            msg("<13>has\nnewline\n"),
            msg("<13>counted two"),
        );
        for chunk in [1, 3, 7, 4096] {
            let (out, oversize) = all(input.as_bytes(), chunk, 1000).await;
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "<13>counted one\n<13>has newline\n<13>plain one\n<13>counted two\n<13>last\n",
                "chunk {chunk}"
            );
            assert_eq!(oversize, 0);
        }
    }

    #[tokio::test]
    async fn oversize_messages_are_passed_over_and_counted() {
        let big = "x".repeat(300);
        let input = format!("{} {big}5 <13>a{big}\n4 <1>b", big.len());
        for chunk in [16, 4096] {
            let (out, oversize) = all(input.as_bytes(), chunk, 100).await;
            assert_eq!(out, b"<13>a\n<1>b\n", "chunk {chunk}");
            assert_eq!(oversize, 2, "chunk {chunk}");
        }
    }
}
