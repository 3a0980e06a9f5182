//! Enrichment of surviving observations: which pod and workload made them.

pub mod names;
pub mod pods;
mod watch;

use std::sync::Arc;

use arc_swap::ArcSwap;
use time::OffsetDateTime;

use crate::event::Endpoint;
pub use names::NameCache;
pub use pods::{PodRecord, PodTable, PodsError};
pub use watch::watch;

/// The pod table as the stage reads it: swapped whole when the cluster changes.
pub type SharedPods = Arc<ArcSwap<PodTable>>;

/// Fills namespace, pod and workload of `src` from its IP, when the table knows the pod that
/// held that IP at `at` and it does not contradict the pod the source already names (the log
/// file's pod wins); else from the pod it names. A workload named without its kind (Istio's
/// `source_workload`) gets the kind of its pods.
pub fn attribute(src: &mut Endpoint, at: OffsetDateTime, pods: &PodTable) {
    if let Some(workload) = &src.workload {
        if src.workload_kind.is_none()
            && let Some(ns) = &src.namespace
        {
            src.workload_kind = pods.workload_kind(ns, workload).map(str::to_owned);
        }
        return;
    }
    let named = || match (&src.namespace, &src.pod) {
        (Some(ns), Some(name)) => pods.by_name(ns, name),
        _ => None,
    };
    let Some(pod) = src.ip.and_then(|ip| pods.lookup(ip, at)).or_else(named) else {
        return;
    };
    let agrees = src.namespace.as_ref().is_none_or(|ns| *ns == pod.namespace)
        && src.pod.as_ref().is_none_or(|p| *p == pod.name);
    if agrees {
        fill(src, pod);
    }
}

/// Fills `src` from the pod whose UID is `uid` (the eBPF source knows pods by cgroup).
pub fn attribute_uid(src: &mut Endpoint, uid: &str, pods: &PodTable) {
    if let Some(pod) = pods.by_uid(uid) {
        fill(src, pod);
    }
}

fn fill(src: &mut Endpoint, pod: &PodRecord) {
    src.namespace = Some(pod.namespace.clone());
    src.pod = Some(pod.name.clone());
    src.workload = Some(pod.workload.clone());
    src.workload_kind = Some(pod.workload_kind.clone());
}
