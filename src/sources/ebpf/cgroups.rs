//! Which pod a cgroup belongs to. The kubelet names pod cgroups by pod UID, with either
//! cgroup driver, and the runtime names container cgroups by container id:
//! - systemd: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<UID with _>.slice/`
//!   `cri-containerd-<ID>.scope` (CRI-O: `crio-<ID>.scope`, docker: `docker-<ID>.scope`);
//!   under kind and other nested nodes `kubelet.slice/kubelet-kubepods.slice/...`.
//! - cgroupfs: `kubepods/burstable/pod<UID>/<ID>`, `kubepods/pod<UID>/<ID>` for Guaranteed.
//!
//! A cgroup's v2 id (what `bpf_get_current_cgroup_id` returns) is its directory's inode
//! number, so ids are mapped to paths by walking the cgroup mount, again when an unknown id
//! shows up (at most every [`RESCAN`]); cgroup ids are never reused.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The least time between two walks of the cgroup mount.
const RESCAN: Duration = Duration::from_millis(100);
/// Cgroups deeper than this are not pods' (the kubelet's are 3 to 6 deep).
const MAX_DEPTH: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCgroup {
    pub uid: String,
    /// The container's id; none for the pod's own cgroup or a runtime's monitor (conmon).
    pub container: Option<String>,
}

/// The pod (and container) of a cgroup path relative to the mount; none when it is not a
/// pod's (the node's own processes).
pub fn pod_of(path: &str) -> Option<PodCgroup> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let uid = segments.by_ref().find_map(pod_uid)?;
    let container = segments.next().and_then(container_id);
    Some(PodCgroup { uid, container })
}

/// `pod<UID>` (cgroupfs) or `...-pod<UID_WITH_UNDERSCORES>.slice` (systemd).
fn pod_uid(segment: &str) -> Option<String> {
    let uid = match segment.strip_suffix(".slice") {
        Some(slice) => slice.rsplit_once("-pod")?.1.replace('_', "-"),
        None => segment.strip_prefix("pod")?.to_string(),
    };
    let uuid = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    uuid.then_some(uid)
}

/// `cri-containerd-<ID>.scope`, `crio-<ID>.scope`, `docker-<ID>.scope` or a bare `<ID>`.
fn container_id(segment: &str) -> Option<String> {
    let name = segment.strip_suffix(".scope").unwrap_or(segment);
    if name.starts_with("crio-conmon-") {
        return None;
    }
    let id = ["cri-containerd-", "crio-", "docker-"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    (id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
}

/// Cgroup ids to pods, learned from the cgroup mount.
pub struct Cgroups {
    root: PathBuf,
    by_id: HashMap<u64, Option<Arc<PodCgroup>>>,
    scanned: Option<Instant>,
}

impl Cgroups {
    pub fn new(root: &Path) -> Self {
        Cgroups {
            root: root.to_path_buf(),
            by_id: HashMap::new(),
            scanned: None,
        }
    }

    /// The pod of cgroup `id`; none for the node's processes and cgroups already gone.
    pub fn resolve(&mut self, id: u64) -> Option<Arc<PodCgroup>> {
        if let Some(known) = self.by_id.get(&id) {
            return known.clone();
        }
        if self.scanned.is_none_or(|t| t.elapsed() >= RESCAN) {
            self.rescan();
        }
        self.by_id.get(&id).cloned().flatten()
    }

    /// Maps every cgroup now under the mount; cgroups gone since are forgotten.
    fn rescan(&mut self) {
        self.scanned = Some(Instant::now());
        let mut found = HashMap::with_capacity(self.by_id.len());
        let mut stack = vec![(self.root.clone(), 0)];
        while let Some((dir, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                if !meta.is_dir() {
                    continue;
                }
                let path = entry.path();
                let pod = path
                    .strip_prefix(&self.root)
                    .ok()
                    .and_then(|p| p.to_str())
                    .and_then(pod_of);
                // Keep the Arc of a pod already known, so attribution stays cheap.
                let pod = match self.by_id.remove(&meta.ino()) {
                    Some(known) if known.as_deref() == pod.as_ref() => known,
                    _ => pod.map(Arc::new),
                };
                found.insert(meta.ino(), pod);
                if depth + 1 < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
            }
        }
        self.by_id = found;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "5f3d7c1e-2b4a-4e8f-9a6b-0c1d2e3f4a5b";
    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn kubelet_cgroup_names_of_both_drivers_and_every_runtime() {
        let systemd_uid = UID.replace('-', "_");
        for path in [
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{systemd_uid}.slice/cri-containerd-{ID}.scope"
            ),
            format!("/kubepods.slice/kubepods-pod{systemd_uid}.slice/crio-{ID}.scope"),
            format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{systemd_uid}.slice/docker-{ID}.scope"
            ),
            format!(
                "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{systemd_uid}.slice/cri-containerd-{ID}.scope"
            ),
            format!("/kubepods/burstable/pod{UID}/{ID}"),
            format!("kubepods/pod{UID}/{ID}"),
        ] {
            assert_eq!(
                pod_of(&path),
                Some(PodCgroup {
                    uid: UID.into(),
                    container: Some(ID.into())
                }),
                "{path}"
            );
        }
        let pod_only = format!("/kubepods/besteffort/pod{UID}");
        assert_eq!(pod_of(&pod_only).unwrap().container, None);
        let conmon =
            format!("/kubepods.slice/kubepods-pod{systemd_uid}.slice/crio-conmon-{ID}.scope");
        assert_eq!(pod_of(&conmon).unwrap().container, None);
    }

    #[test]
    fn node_cgroups_are_not_pods() {
        for path in [
            "/",
            "/system.slice/containerd.service",
            "/user.slice/user-0.slice/session-1.scope",
            "/kubepods.slice/kubepods-burstable.slice",
            "/kubepods/podnot-a-uid/abc",
            "/system.slice/podman-pod1234.slice",
        ] {
            assert_eq!(pod_of(path), None, "{path}");
        }
    }

    #[test]
    fn ids_are_directory_inodes_of_the_mount() {
        let dir = tempfile::tempdir().unwrap();
        let pod = dir.path().join(format!("kubepods/pod{UID}/{ID}"));
        std::fs::create_dir_all(&pod).unwrap();
        std::fs::create_dir_all(dir.path().join("system.slice")).unwrap();
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        let mut cgroups = Cgroups::new(dir.path());
        assert_eq!(cgroups.resolve(ino(&pod)).unwrap().uid, UID);
        assert_eq!(cgroups.resolve(ino(&dir.path().join("system.slice"))), None);
        // A cgroup made after the walk is found by the next one.
        let later = dir
            .path()
            .join(format!("kubepods/pod{}", UID.replace('5', "6")));
        std::fs::create_dir_all(&later).unwrap();
        cgroups.scanned = None;
        assert!(cgroups.resolve(ino(&later)).is_some());
    }
}
