//! The `ebpf` source: BPF programs on the cgroup v2 root's socket hooks (`connect4`,
//! `connect6`, `sendmsg4`, `sendmsg6`) see every `connect()` and UDP send of every process
//! on the node, and only observe (they always allow). Events come through a ring buffer; a
//! full ring drops events in the kernel, counted here (`ring_full`), never blocking a caller.
//! The pod is the cgroup's (by pod UID, so hostNetwork pods too), not the address's.
//!
//! The programs are attached through BPF links owned by this process and nothing is pinned:
//! the kernel detaches them when the process exits, a crash included, so a restart never
//! finds stale programs of an earlier run.

mod cgroups;
mod event;

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::time::{Duration, Instant};

use aya::maps::{Array, MapData, RingBuf};
use aya::programs::{CgroupAttachMode, CgroupSockAddr};
use aya::{Ebpf, EbpfLoader};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::SourceCtx;
use crate::capture::finding::Finding;
use crate::config::EbpfSourceConfig;
use crate::telemetry::{Outcome, RateLimitedWarn};
use cgroups::Cgroups;

/// The programs, by function name in connect.bpf.c.
const PROGRAMS: [&str; 4] = ["es_connect4", "es_connect6", "es_sendmsg4", "es_sendmsg6"];
/// Held events past which the oldest go out at once (naming degrades, nothing is lost).
const MAX_HELD: usize = 65_536;
/// How often held events are released and the kernel's loss counter read.
const TICK: Duration = Duration::from_millis(100);

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/connect.bpf.o"));

/// The loaded and attached programs with their maps; dropping it detaches and frees them.
pub struct Probes {
    ebpf: Ebpf,
}

impl Probes {
    /// Loads the programs and attaches them to the cgroup at `cgroup_root`. Fails with what
    /// the kernel said (no CAP_BPF, no BTF, not a cgroup v2 mount).
    pub fn attach(cfg: &EbpfSourceConfig) -> io::Result<Probes> {
        let fail = |what: &str, e: &dyn std::error::Error| {
            let mut why = e.to_string();
            let mut cause = e.source();
            while let Some(c) = cause {
                why = format!("{why}: {c}");
                cause = c.source();
            }
            io::Error::other(format!(
                "ebpf: {what}: {why} (needs Linux 5.8+, CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN or root, \
                 and cgroup_root a cgroup v2 mount)"
            ))
        };
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("EVENTS", cfg.ring_bytes)
            .load(OBJECT)
            .map_err(|e| fail("loading the BPF object", &e))?;
        let cgroup = File::open(&cfg.cgroup_root)
            .map_err(|e| fail(&format!("cgroup_root {}", cfg.cgroup_root.display()), &e))?;
        for name in PROGRAMS {
            let program: &mut CgroupSockAddr = ebpf
                .program_mut(name)
                .ok_or_else(|| {
                    io::Error::other(format!("ebpf: {name} is missing from the object"))
                })?
                .try_into()
                .map_err(|e| fail(name, &e))?;
            program
                .load()
                .map_err(|e| fail(&format!("loading {name}"), &e))?;
            // A BPF link (kernels 5.7+; the ring needs 5.8) takes no attach flags and always
            // runs beside other programs on the hook (Cilium's socket load balancing, say).
            program
                .attach(&cgroup, CgroupAttachMode::Single)
                .map_err(|e| fail(&format!("attaching {name}"), &e))?;
        }
        tracing::info!(cgroup_root = %cfg.cgroup_root.display(), "ebpf programs attached");
        Ok(Probes { ebpf })
    }
}

pub async fn run(cfg: EbpfSourceConfig, mut probes: Probes, ctx: SourceCtx) -> io::Result<()> {
    let ring = probes
        .ebpf
        .take_map("EVENTS")
        .ok_or_else(|| io::Error::other("ebpf: no EVENTS map"))?;
    let ring = RingBuf::try_from(ring).map_err(io::Error::other)?;
    // SAFETY: the ring owns its map's descriptor, open and the same until it is dropped, which
    // is after the AsyncFd that wraps it.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(io::Error::from)?;
    let lost: Array<MapData, u64> = probes
        .ebpf
        .take_map("LOST")
        .ok_or_else(|| io::Error::other("ebpf: no LOST map"))?
        .try_into()
        .map_err(io::Error::other)?;
    let mut reader = Reader {
        cgroups: Cgroups::new(&cfg.cgroup_root),
        clock: wall_minus_monotonic_ns(),
        held: VecDeque::new(),
        hold: Duration::from_millis(cfg.hold_ms),
        undecodable: 0,
    };
    let mut losses = Losses::default();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                while let Some(item) = guard.get_inner_mut().next() {
                    reader.read(&item);
                }
                guard.clear_ready();
                if reader.held.len() > MAX_HELD {
                    let out = reader.take(reader.held.len() - MAX_HELD);
                    if !ctx.send_findings(out, false).await {
                        return Ok(());
                    }
                }
            }
            _ = tick.tick() => {
                let due = reader.due(Instant::now());
                if !due.is_empty() && !ctx.send_findings(due, false).await {
                    return Ok(());
                }
                losses.count(&ctx, lost.get(&0, 0).unwrap_or(0), reader.undecodable);
            }
        }
    }
    // Shutdown: what is in the ring and held goes out, then the programs are detached.
    while let Some(item) = ring.get_mut().next() {
        reader.read(&item);
    }
    losses.count(&ctx, lost.get(&0, 0).unwrap_or(0), reader.undecodable);
    let rest = reader.take(reader.held.len());
    ctx.send_findings(rest, true).await;
    drop(probes);
    tracing::info!("ebpf programs detached");
    Ok(())
}

/// Turns ring records into findings, held for `hold` so that a DNS source on the node
/// (a capture of port 53) names the address before the stage sees the connection.
struct Reader {
    cgroups: Cgroups,
    clock: i64,
    held: VecDeque<(Instant, Finding)>,
    hold: Duration,
    undecodable: u64,
}

impl Reader {
    fn read(&mut self, raw: &[u8]) {
        let Some(call) = event::decode(raw) else {
            self.undecodable += 1;
            return;
        };
        let pod = self.cgroups.resolve(call.cgroup_id);
        let finding = Finding::Socket {
            time_ns: self.clock.saturating_add_unsigned(call.monotonic_ns),
            protocol: call.protocol,
            dst: call.dst,
            dport: call.port,
            pod_uid: pod.as_deref().map(|p| p.uid.clone()),
            container: pod.as_deref().and_then(|p| p.container.clone()),
            pid: call.pid,
            command: call.command,
        };
        self.held.push_back((Instant::now(), finding));
    }

    /// Findings held for `hold` by `now`.
    fn due(&mut self, now: Instant) -> Vec<Finding> {
        let n = self
            .held
            .iter()
            .take_while(|(at, _)| now.duration_since(*at) >= self.hold)
            .count();
        self.take(n)
    }

    /// The `n` oldest held findings.
    fn take(&mut self, n: usize) -> Vec<Finding> {
        self.held.drain(..n).map(|(_, f)| f).collect()
    }
}

/// The kernel's and the reader's losses, counted as they grow and logged rate-limited.
#[derive(Default)]
struct Losses {
    ring_full: u64,
    undecodable: u64,
    warn: RateLimitedWarn,
}

impl Losses {
    fn count(&mut self, ctx: &SourceCtx, ring_full: u64, undecodable: u64) {
        let new_full = ring_full.saturating_sub(self.ring_full);
        let new_bad = undecodable.saturating_sub(self.undecodable);
        (self.ring_full, self.undecodable) = (ring_full, undecodable);
        if new_full > 0 {
            ctx.count_lost(new_full, Outcome::Dropped, "ring_full");
        }
        if new_bad > 0 {
            ctx.count_lost(new_bad, Outcome::Malformed, "undecodable_event");
        }
        if new_full + new_bad > 0 && self.warn.should_log() {
            tracing::warn!(
                source = %ctx.stats.name,
                ring_full = self.ring_full,
                undecodable = self.undecodable,
                "ebpf events lost (raise ring_bytes if ring_full grows)"
            );
        }
    }
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in nanoseconds: turns the programs' timestamps into
/// wall-clock time.
fn wall_minus_monotonic_ns() -> i64 {
    let now = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec to the valid pointer it is given.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    };
    now(libc::CLOCK_REALTIME) - now(libc::CLOCK_MONOTONIC)
}
