//! What `kubectl logs -f -l <selector> -n <ns>` does, as a service: pods matching the
//! namespaces and label selector are watched; each matching container's log is followed
//! through the API with timestamps; new and restarted pods are picked up, deleted ones
//! dropped; a dropped stream is resumed with `sinceTime` at its last line, skipping the lines
//! it already delivered (the kubelet resolves `sinceTime` to the second).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, LogParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio_util::compat::FuturesAsyncReadCompatExt;
use tokio_util::sync::CancellationToken;

use super::SourceCtx;
use super::framing::Fill;
use crate::config::KubernetesLogsConfig;
use crate::event::Endpoint;
use crate::parse::time::rfc3339;
use crate::pipeline::Stream;

/// (namespace, pod, container).
type Target = (String, String, String);

pub async fn run(cfg: KubernetesLogsConfig, client: Client, ctx: SourceCtx) -> io::Result<()> {
    let mut watch_config = watcher::Config::default();
    if let Some(selector) = &cfg.label_selector {
        watch_config = watch_config.labels(selector);
    }
    let apis: Vec<Api<Pod>> = if cfg.namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        cfg.namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    let mut events = stream::select_all(apis.into_iter().map(|api| {
        watcher::watcher(api, watch_config.clone())
            .default_backoff()
            .boxed()
    }));
    let mut followers: HashMap<Target, CancellationToken> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut next_stream = 0u64;
    loop {
        let event = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            event = events.next() => event,
        };
        let pod = match event {
            Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) => pod,
            Some(Ok(Event::Delete(pod))) => {
                for target in targets(&pod, cfg.container.as_deref(), true) {
                    if let Some(token) = followers.remove(&target) {
                        token.cancel();
                    }
                }
                continue;
            }
            Some(Ok(Event::Init | Event::InitDone)) => continue,
            Some(Err(e)) => {
                tracing::warn!(source = %ctx.stats.name, "pod watch: {e}");
                continue;
            }
            None => break,
        };
        for target in targets(&pod, cfg.container.as_deref(), false) {
            if followers.contains_key(&target) {
                continue;
            }
            tracing::info!(source = %ctx.stats.name, namespace = %target.0, pod = %target.1, container = %target.2, "following");
            next_stream += 1;
            let stream = Stream {
                id: next_stream,
                origin: Some(Arc::new(Endpoint {
                    namespace: Some(target.0.clone()),
                    pod: Some(target.1.clone()),
                    ..Endpoint::default()
                })),
            };
            let token = ctx.shutdown.child_token();
            followers.insert(target.clone(), token.clone());
            let api = Api::namespaced(client.clone(), &target.0);
            let follower = Follower {
                api,
                pod: target.1,
                container: target.2,
                stream,
                ctx: ctx.clone(),
                stop: token,
                backoff: Duration::from_millis(cfg.reconnect_backoff_ms),
            };
            tasks.spawn(follower.run());
        }
        while tasks.try_join_next().is_some() {}
    }
    for token in followers.values() {
        token.cancel();
    }
    while tasks.join_next().await.is_some() {}
    ctx.finish(ctx.framer()).await;
    Ok(())
}

/// The containers of `pod` to follow: started ones (or, for a deleted pod, all of them).
fn targets(pod: &Pod, only: Option<&str>, all: bool) -> Vec<Target> {
    let (Some(ns), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
        return Vec::new();
    };
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    let started = |container: &str| {
        statuses.into_iter().flatten().any(|s| {
            s.name == container
                && s.state
                    .as_ref()
                    .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
        })
    };
    pod.spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| c.name.as_str())
        .filter(|c| only.is_none_or(|o| o == *c))
        .filter(|c| all || started(c))
        .map(|c| (ns.clone(), name.clone(), c.to_string()))
        .collect()
}

struct Follower {
    api: Api<Pod>,
    pod: String,
    container: String,
    stream: Stream,
    ctx: SourceCtx,
    stop: CancellationToken,
    backoff: Duration,
}

/// The time of the last delivered line, and how many lines carried exactly that time.
#[derive(Default)]
struct Resume {
    last: Option<OffsetDateTime>,
    at_last: u64,
}

/// The start of a resumed stream, where the lines already delivered come again.
struct Replay {
    active: bool,
    skipped_at_last: u64,
}

impl Resume {
    fn replay(&self) -> Replay {
        Replay {
            active: self.last.is_some(),
            skipped_at_last: 0,
        }
    }

    /// Whether a line stamped `t` is new, counting it if so. Lines come in time order; at the
    /// start of a resumed stream, those before the last delivered time, and as many at that
    /// time as were delivered, are repeats.
    fn admit(&mut self, t: OffsetDateTime, replay: &mut Replay) -> bool {
        if replay.active {
            match self.last {
                Some(last) if t < last => return false,
                Some(last) if t == last && replay.skipped_at_last < self.at_last => {
                    replay.skipped_at_last += 1;
                    return false;
                }
                _ => replay.active = false,
            }
        }
        if self.last == Some(t) {
            self.at_last += 1;
        } else {
            self.last = Some(t);
            self.at_last = 1;
        }
        true
    }
}

impl Follower {
    async fn run(self) {
        let mut resume = Resume::default();
        let mut backoff = self.backoff;
        loop {
            let params = LogParams {
                container: Some(self.container.clone()),
                follow: true,
                timestamps: true,
                // Whole seconds, floored: kube rounds sinceTime to the nearest second, which
                // would skip the lines of the last half second; the repeats are left out below.
                since_time: resume.last.and_then(|t| {
                    k8s_openapi::jiff::Timestamp::from_second(t.unix_timestamp()).ok()
                }),
                ..LogParams::default()
            };
            match self.api.log_stream(&self.pod, &params).await {
                Ok(reader) => {
                    backoff = self.backoff;
                    match self.read(reader.compat(), &mut resume).await {
                        Ok(true) => {
                            tracing::debug!(source = %self.ctx.stats.name, pod = %self.pod, "log stream ended; resuming")
                        }
                        Ok(false) => break,
                        Err(e) => {
                            tracing::warn!(source = %self.ctx.stats.name, pod = %self.pod, "log stream cut: {e}")
                        }
                    }
                }
                Err(kube::Error::Api(e)) if e.code == 404 => break,
                Err(e) => {
                    tracing::warn!(source = %self.ctx.stats.name, pod = %self.pod, "cannot stream logs: {e}")
                }
            }
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        self.ctx
            .send_stream(self.stream.clone(), Vec::new(), true)
            .await;
    }

    /// Reads one log stream to its end (true: resume it) or until stopped (false).
    async fn read<R: tokio::io::AsyncRead + Unpin>(
        &self,
        mut reader: R,
        resume: &mut Resume,
    ) -> io::Result<bool> {
        let mut framer = self.ctx.framer();
        let mut replay = resume.replay();
        loop {
            let fill = tokio::select! {
                _ = self.stop.cancelled() => return Ok(false),
                fill = framer.fill(&mut reader) => fill?,
            };
            match fill {
                Fill::Lines(lines) => {
                    let out = rewrap(&lines, resume, &mut replay);
                    if !out.is_empty()
                        && !self
                            .ctx
                            .send_on(&self.stream, out, &mut framer, false)
                            .await
                    {
                        return Ok(false);
                    }
                }
                Fill::Partial => {}
                Fill::Eof => return Ok(true),
            }
        }
    }
}

/// `<RFC3339Nano> <content>` lines (the API's `timestamps=true`) into the CRI shape
/// `<time> stdout F <content>`, so the stage takes each line's time from it; repeats after a
/// resume are left out.
fn rewrap(lines: &[u8], resume: &mut Resume, replay: &mut Replay) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.len() + lines.len() / 8);
    for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let (stamp, content) = match memchr::memchr(b' ', line) {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        let time = std::str::from_utf8(stamp).ok().and_then(rfc3339);
        if let Some(t) = time
            && !resume.admit(t, replay)
        {
            continue;
        }
        if time.is_some() {
            out.extend_from_slice(stamp);
            out.extend_from_slice(b" stdout F ");
            out.extend_from_slice(content);
        } else {
            out.extend_from_slice(line);
        }
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumed_stream_skips_what_was_delivered() {
        let mut resume = Resume::default();
        let mut replay = resume.replay();
        let first = b"2024-05-14T08:00:01.5Z a\n2024-05-14T08:00:02Z b\n2024-05-14T08:00:02Z c\n";
        assert_eq!(
            rewrap(first, &mut resume, &mut replay),
            b"2024-05-14T08:00:01.5Z stdout F a\n2024-05-14T08:00:02Z stdout F b\n2024-05-14T08:00:02Z stdout F c\n"
        );
        // Resumed at the second: a, b and c come again before d.
        let mut replay = resume.replay();
        let again = b"2024-05-14T08:00:01.5Z a\n2024-05-14T08:00:02Z b\n2024-05-14T08:00:02Z c\n2024-05-14T08:00:02Z d\n2024-05-14T08:00:03Z e\n";
        assert_eq!(
            rewrap(again, &mut resume, &mut replay),
            b"2024-05-14T08:00:02Z stdout F d\n2024-05-14T08:00:03Z stdout F e\n"
        );
    }
}
