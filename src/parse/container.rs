//! Container runtime log wrapping, detected per line: CRI (`<ts> <stream> <P|F>[:tags] <msg>`,
//! with `P` chunks joined until `F`) and docker json-file (`{"log":"...","stream":..,"time":..}`,
//! with 16 KiB chunks joined until one ends in a newline). Raw lines pass through untouched.

use std::borrow::Cow;

use serde::Deserialize;

/// Docker's json-file driver splits longer lines into chunks of this size.
const DOCKER_CHUNK: usize = 16 * 1024;

/// What one framed line yields after unwrapping.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// A whole log line, with the runtime's timestamp when it was wrapped.
    Line {
        time: Option<Cow<'a, str>>,
        content: Cow<'a, [u8]>,
    },
    /// A partial chunk was buffered; its line completes later.
    Pending,
    /// The joined line grew past the line limit and was dropped.
    Oversize,
    /// Wrapping was recognised but broken (bad json-file object).
    Malformed,
}

#[derive(Default)]
struct Partial {
    buf: Vec<u8>,
    overflowed: bool,
}

/// Per-source reassembly state (one partial line per stream, as the kubelet keeps).
pub struct Unwrapper {
    max_line: usize,
    stdout: Partial,
    stderr: Partial,
}

#[derive(Deserialize)]
struct DockerLine<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
}

impl Unwrapper {
    pub fn new(max_line: usize) -> Self {
        Unwrapper {
            max_line,
            stdout: Partial::default(),
            stderr: Partial::default(),
        }
    }

    /// Unwraps one framed line (without its newline).
    pub fn unwrap<'a>(&mut self, line: &'a [u8]) -> Step<'a> {
        if line.starts_with(b"{\"log\":") {
            return self.docker(line);
        }
        match split_cri(line) {
            Some((time, stream, full, content)) => {
                let max_line = self.max_line;
                let joined =
                    self.partial(stream == b"stderr")
                        .join(Cow::Borrowed(content), full, max_line);
                joined.with_time(Some(Cow::Borrowed(time)))
            }
            None => Step::Line {
                time: None,
                content: Cow::Borrowed(line),
            },
        }
    }

    /// Lines still waiting for their final chunk when the stream ends are dropped: they were
    /// never completed by the runtime. Returns how many.
    pub fn finish(&mut self) -> u64 {
        [&mut self.stdout, &mut self.stderr]
            .into_iter()
            .map(|p| {
                let pending = !p.buf.is_empty() || p.overflowed;
                *p = Partial::default();
                u64::from(pending)
            })
            .sum()
    }

    fn partial(&mut self, stderr: bool) -> &mut Partial {
        if stderr {
            &mut self.stderr
        } else {
            &mut self.stdout
        }
    }

    fn docker<'a>(&mut self, line: &'a [u8]) -> Step<'a> {
        let Ok(d) = serde_json::from_slice::<DockerLine<'a>>(line) else {
            return Step::Malformed;
        };
        let stderr = d.stream.as_deref() == Some("stderr");
        let full = d.log.ends_with('\n') || d.log.len() < DOCKER_CHUNK;
        let content: Cow<'a, [u8]> = match d.log {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim_end_matches(['\n', '\r']).as_bytes()),
            Cow::Owned(mut s) => {
                s.truncate(s.trim_end_matches(['\n', '\r']).len());
                Cow::Owned(s.into_bytes())
            }
        };
        let max_line = self.max_line;
        self.partial(stderr)
            .join(content, full, max_line)
            .with_time(d.time)
    }
}

/// The result of adding one chunk to a partial line.
enum Joined<'a> {
    Line(Cow<'a, [u8]>),
    Pending,
    Oversize,
}

impl<'a> Joined<'a> {
    fn with_time(self, time: Option<Cow<'a, str>>) -> Step<'a> {
        match self {
            Joined::Line(content) => Step::Line { time, content },
            Joined::Pending => Step::Pending,
            Joined::Oversize => Step::Oversize,
        }
    }
}

impl Partial {
    fn join<'a>(&mut self, chunk: Cow<'a, [u8]>, full: bool, max_line: usize) -> Joined<'a> {
        if full && self.buf.is_empty() && !self.overflowed {
            return Joined::Line(chunk);
        }
        if self.overflowed || self.buf.len() + chunk.len() > max_line {
            self.buf.clear();
            self.overflowed = !full;
            return if full {
                Joined::Oversize
            } else {
                Joined::Pending
            };
        }
        self.buf.extend_from_slice(&chunk);
        if !full {
            return Joined::Pending;
        }
        Joined::Line(Cow::Owned(std::mem::take(&mut self.buf)))
    }
}

/// `2016-10-20T18:39:20.57606443Z stdout F content` -> (time, stream, is_full, content).
fn split_cri(line: &[u8]) -> Option<(&str, &[u8], bool, &[u8])> {
    let looks_like_time =
        line.len() > 20 && line[..4].iter().all(u8::is_ascii_digit) && line[4] == b'-';
    if !looks_like_time {
        return None;
    }
    let mut parts = line.splitn(4, |&b| b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let stream = parts.next()?;
    if stream != b"stdout" && stream != b"stderr" {
        return None;
    }
    let tags = parts.next()?;
    let full = match tags.split(|&b| b == b':').next()? {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    Some((time, stream, full, parts.next().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(step: Step<'_>) -> (Option<String>, String) {
        match step {
            Step::Line { time, content } => (
                time.map(|t| t.into_owned()),
                String::from_utf8(content.into_owned()).unwrap(),
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn raw_passes_through() {
        let mut u = Unwrapper::new(1024);
        let (t, c) = line(u.unwrap(b"[INFO] 10.0.0.1:5 - 1 \"A IN x. udp 1 false 512\""));
        assert_eq!(t, None);
        assert!(c.starts_with("[INFO]"));
        // A CoreDNS line with a timestamp prefix is not CRI.
        let (t, _) = line(u.unwrap(b"2019-07-19T08:24:57.575Z [INFO] 10.244.1.3:52206 - 1"));
        assert_eq!(t, None);
    }

    #[test]
    fn cri_full_and_partial() {
        let mut u = Unwrapper::new(1024);
        let (t, c) = line(u.unwrap(b"2016-10-20T18:39:20.57606443Z stdout F cri stdout test log"));
        assert_eq!(t.as_deref(), Some("2016-10-20T18:39:20.57606443Z"));
        assert_eq!(c, "cri stdout test log");
        assert_eq!(
            u.unwrap(b"2016-10-06T00:17:09.669794202Z stdout P log con"),
            Step::Pending
        );
        // Another stream interleaves without disturbing the partial line.
        let (_, c) = line(u.unwrap(b"2016-10-06T00:17:09.669794203Z stderr F other"));
        assert_eq!(c, "other");
        assert_eq!(
            u.unwrap(b"2016-10-06T00:17:09.669794202Z stdout P:TAG1 tent "),
            Step::Pending
        );
        let (t, c) = line(u.unwrap(b"2016-10-06T00:17:09.7Z stdout F 1"));
        assert_eq!(c, "log content 1");
        assert_eq!(t.as_deref(), Some("2016-10-06T00:17:09.7Z"));
        assert_eq!(u.finish(), 0);
        assert_eq!(
            u.unwrap(b"2016-10-06T00:17:09.7Z stdout P dangling"),
            Step::Pending
        );
        assert_eq!(u.finish(), 1);
    }

    #[test]
    fn cri_oversize_join_is_dropped_and_stream_recovers() {
        let mut u = Unwrapper::new(10);
        assert_eq!(
            u.unwrap(b"2016-10-06T00:17:09.7Z stdout P 0123456"),
            Step::Pending
        );
        assert_eq!(
            u.unwrap(b"2016-10-06T00:17:09.7Z stdout P 0123456"),
            Step::Pending
        );
        assert_eq!(
            u.unwrap(b"2016-10-06T00:17:09.7Z stdout F end"),
            Step::Oversize
        );
        let (_, c) = line(u.unwrap(b"2016-10-06T00:17:09.7Z stdout F ok"));
        assert_eq!(c, "ok");
    }

    #[test]
    fn docker_json_file() {
        let mut u = Unwrapper::new(1 << 20);
        let (t, c) = line(u.unwrap(
            br#"{"log":"line1\n","stream":"stdout","time":"2020-09-27T11:18:01.00000000Z"}"#,
        ));
        assert_eq!(
            (t.as_deref(), c.as_str()),
            (Some("2020-09-27T11:18:01.00000000Z"), "line1")
        );
        let (_, c) = line(u.unwrap(br#"{"log":"docker stdout test log","stream":"stdout","time":"2016-10-20T18:39:20.57606443Z"}"#));
        assert_eq!(c, "docker stdout test log");
        let (_, c) = line(u.unwrap(
            br#"{"log":"{\"a\":\"q\\\"\"}\n","stream":"stdout","time":"2016-10-20T18:39:20Z"}"#,
        ));
        assert_eq!(c, r#"{"a":"q\""}"#);
        let long = "x".repeat(DOCKER_CHUNK);
        let first =
            format!(r#"{{"log":"{long}","stream":"stdout","time":"2016-10-20T18:39:20Z"}}"#);
        assert_eq!(u.unwrap(first.as_bytes()), Step::Pending);
        let (_, c) =
            line(u.unwrap(br#"{"log":"tail\n","stream":"stdout","time":"2016-10-20T18:39:21Z"}"#));
        assert_eq!(c.len(), DOCKER_CHUNK + 4);
        assert_eq!(u.unwrap(br#"{"log":"#), Step::Malformed);
        assert_eq!(u.unwrap(br#"{"log":5,"stream":"stdout"}"#), Step::Malformed);
    }
}
