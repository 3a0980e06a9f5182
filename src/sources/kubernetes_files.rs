//! Node mode: the container log files the kubelet keeps (`/var/log/containers/*.log`, or
//! `/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log`), found by glob and followed across
//! both kinds of rotation. The pod and namespace come from the file name. Offsets are
//! checkpointed (by device and inode) to a state file written atomically, so a restart
//! resumes where the last run stopped: no loss, no repeats.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::SourceCtx;
use super::file::sleep_or_stop;
use super::framing::Fill;
use super::tail::{Identity, Rotation, Tail};
use crate::atomic_write::write_atomically;
use crate::config::{KubernetesFilesConfig, StartAt};
use crate::event::Endpoint;
use crate::pipeline::Stream;

/// How often offsets are written while running (and always at shutdown).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Reads per file per round, so one busy file cannot starve the others.
const READS_PER_ROUND: usize = 4;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoints {
    version: u32,
    files: Vec<Checkpoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    path: PathBuf,
    #[serde(flatten)]
    identity: Identity,
    offset: u64,
}

struct Followed {
    tail: Tail,
    stream: Stream,
}

pub async fn run(cfg: KubernetesFilesConfig, ctx: SourceCtx) -> io::Result<()> {
    let saved = load_checkpoints(cfg.checkpoint_file.as_deref());
    let by_identity: HashMap<Identity, u64> =
        saved.files.iter().map(|c| (c.identity, c.offset)).collect();
    let exclude: Vec<glob::Pattern> = cfg
        .exclude
        .iter()
        .filter_map(|p| glob::Pattern::new(p).ok())
        .collect();
    let poll = Duration::from_millis(cfg.poll_interval_ms);
    let rescan = Duration::from_millis(cfg.glob_interval_ms);
    let mut followed: BTreeMap<PathBuf, Followed> = BTreeMap::new();
    let mut next_stream = 0u64;
    let mut first_scan = true;
    let mut last_scan: Option<Instant> = None;
    let mut last_checkpoint = Instant::now();
    let mut limit_logged = false;
    let mut matched = BTreeSet::new();
    'run: loop {
        if last_scan.is_none_or(|t| t.elapsed() >= rescan) {
            matched = discover(&cfg.include, &exclude);
            last_scan = Some(Instant::now());
            for path in &matched {
                if followed.contains_key(path) {
                    continue;
                }
                if followed.len() >= cfg.max_open_files {
                    if !limit_logged {
                        tracing::warn!(source = %ctx.stats.name, max_open_files = cfg.max_open_files, "more files match than may be open; the rest wait");
                        limit_logged = true;
                    }
                    break;
                }
                let start = start_of(path, &by_identity, first_scan, cfg.start_at);
                match Tail::open(path, start, ctx.framer()).await {
                    Ok(tail) => {
                        next_stream += 1;
                        let stream = Stream {
                            id: next_stream,
                            origin: origin_of(path).map(Arc::new),
                        };
                        followed.insert(path.clone(), Followed { tail, stream });
                    }
                    Err(e) => tracing::warn!(path = %path.display(), "cannot open: {e}"),
                }
            }
            first_scan = false;
        }

        let mut progressed = false;
        let mut closed = Vec::new();
        for (path, f) in followed.iter_mut() {
            for _ in 0..READS_PER_ROUND {
                let fill = tokio::select! {
                    _ = ctx.shutdown.cancelled() => break 'run,
                    fill = f.tail.fill() => fill,
                };
                match fill {
                    Ok(Fill::Lines(lines)) => {
                        progressed = true;
                        if !ctx
                            .send_on(&f.stream, lines, &mut f.tail.framer, false)
                            .await
                        {
                            break 'run;
                        }
                    }
                    Ok(Fill::Partial) => progressed = true,
                    Ok(Fill::Eof) => {
                        match f.tail.rotation().await {
                            Rotation::Same => {}
                            Rotation::Truncated => {
                                tracing::info!(path = %path.display(), "file truncated; reading from its start");
                                f.tail.rewind().await?;
                                progressed = true;
                            }
                            // Read to its end: a replacement is found by the next scan.
                            Rotation::Replaced => closed.push(path.clone()),
                            Rotation::Gone if !matched.contains(path) => closed.push(path.clone()),
                            Rotation::Gone => {}
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), "read failed: {e}");
                        closed.push(path.clone());
                        break;
                    }
                }
            }
        }
        for path in closed {
            if let Some(mut f) = followed.remove(&path) {
                let last = f.tail.framer.finish().unwrap_or_default();
                if !ctx.send_on(&f.stream, last, &mut f.tail.framer, true).await {
                    break 'run;
                }
                last_scan = None;
            }
        }
        if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            save_checkpoints(&cfg, &ctx, &mut followed).await;
            last_checkpoint = Instant::now();
        }
        if !progressed && !sleep_or_stop(&ctx, poll).await {
            break;
        }
    }
    // Everything handed out has been sent; these offsets resume exactly after it.
    save_checkpoints(&cfg, &ctx, &mut followed).await;
    for f in followed.values() {
        ctx.send_stream(f.stream.clone(), Vec::new(), true).await;
    }
    ctx.finish(ctx.framer()).await;
    Ok(())
}

/// Where to start reading a file: at its checkpoint, else (for files there at start-up) as
/// configured, else (files that appeared while running) at its start.
fn start_of(
    path: &Path,
    saved: &HashMap<Identity, u64>,
    first_scan: bool,
    start_at: StartAt,
) -> SeekFrom {
    let identity = std::fs::metadata(path).ok().map(|m| Identity::of(&m));
    match identity.and_then(|i| saved.get(&i)) {
        Some(&offset) => SeekFrom::Start(offset),
        None if first_scan && start_at == StartAt::End => SeekFrom::End(0),
        None => SeekFrom::Start(0),
    }
}

fn discover(include: &[String], exclude: &[glob::Pattern]) -> BTreeSet<PathBuf> {
    include
        .iter()
        .filter_map(|pattern| glob::glob(pattern).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|p| p.is_file() && !exclude.iter().any(|x| x.matches_path(p)))
        .collect()
}

/// Pod and namespace from a kubelet log path:
/// `/var/log/containers/<pod>_<namespace>_<container>-<container id>.log` or
/// `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`.
pub fn origin_of(path: &Path) -> Option<Endpoint> {
    let endpoint = |namespace: &str, pod: &str| Endpoint {
        namespace: Some(namespace.to_string()),
        pod: Some(pod.to_string()),
        ..Endpoint::default()
    };
    let name = path.file_name()?.to_str()?.strip_suffix(".log")?;
    if let Some((front, _id)) = name.rsplit_once('-')
        && let [pod, namespace, _container] = front.splitn(3, '_').collect::<Vec<_>>()[..]
    {
        return Some(endpoint(namespace, pod));
    }
    let pod_dir = path.parent()?.parent()?.file_name()?.to_str()?;
    match pod_dir.splitn(3, '_').collect::<Vec<_>>()[..] {
        [namespace, pod, _uid] => Some(endpoint(namespace, pod)),
        _ => None,
    }
}

fn load_checkpoints(path: Option<&Path>) -> Checkpoints {
    let Some(path) = path else {
        return Checkpoints::default();
    };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), "checkpoint file unreadable, starting afresh: {e}");
            Checkpoints::default()
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Checkpoints::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot read checkpoints: {e}");
            Checkpoints::default()
        }
    }
}

/// Writes the offsets atomically, creating the folder if needed.
async fn save_checkpoints(
    cfg: &KubernetesFilesConfig,
    ctx: &SourceCtx,
    followed: &mut BTreeMap<PathBuf, Followed>,
) {
    let Some(path) = &cfg.checkpoint_file else {
        return;
    };
    let mut files = Vec::with_capacity(followed.len());
    for (p, f) in followed.iter_mut() {
        if let Ok(offset) = f.tail.offset().await {
            files.push(Checkpoint {
                path: p.clone(),
                identity: f.tail.identity,
                offset,
            });
        }
    }
    let doc = Checkpoints { version: 1, files };
    let write = async {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await?;
        }
        let bytes = serde_json::to_vec_pretty(&doc).map_err(io::Error::other)?;
        write_atomically(path, &bytes).await
    };
    if let Err(e) = write.await {
        tracing::error!(source = %ctx.stats.name, path = %path.display(), "cannot write checkpoints: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_from_kubelet_paths() {
        let o = origin_of(Path::new(
            "/var/log/containers/cart-7d9f-x2x_shop_istio-proxy-0123456789abcdef.log",
        ))
        .unwrap();
        assert_eq!(
            (o.namespace.as_deref(), o.pod.as_deref()),
            (Some("shop"), Some("cart-7d9f-x2x"))
        );
        let o = origin_of(Path::new(
            "/var/log/pods/kube-system_coredns-5d78c9869d-4kx2p_0f1e2d3c-aaaa/coredns/0.log",
        ))
        .unwrap();
        assert_eq!(
            (o.namespace.as_deref(), o.pod.as_deref()),
            (Some("kube-system"), Some("coredns-5d78c9869d-4kx2p"))
        );
        assert!(origin_of(Path::new("/tmp/app.log")).is_none());
    }
}
