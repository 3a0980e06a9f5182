//! The `ebpf` source's settings.

use std::path::PathBuf;

use serde::Deserialize;

/// Every `connect()` and UDP send on the node, from BPF programs on the cgroup v2 root's
/// socket hooks. Needs a build with `--features ebpf`, Linux 5.8+, CAP_BPF, CAP_PERFMON
/// and CAP_NET_ADMIN (or root), and the host's cgroup mount.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EbpfSourceConfig {
    /// The cgroup v2 mount the programs attach to: `/sys/fs/cgroup`, or
    /// `/sys/fs/cgroup/unified` on hosts with both cgroup versions.
    #[serde(default = "default_cgroup_root")]
    pub cgroup_root: PathBuf,
    /// The kernel's event ring (a power of two, at least 4096); a full ring loses events,
    /// counted as `ring_full`.
    #[serde(default = "default_ring_bytes")]
    pub ring_bytes: u32,
    /// How long an event waits before the stage judges it, so that a DNS source on the node
    /// (a `pcap` source on port 53) has named its address.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
    pub name: Option<String>,
}

fn default_cgroup_root() -> PathBuf {
    PathBuf::from("/sys/fs/cgroup")
}

fn default_ring_bytes() -> u32 {
    4 << 20
}

fn default_hold_ms() -> u64 {
    500
}
