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
/// file's pod wins).
pub fn attribute(src: &mut Endpoint, at: OffsetDateTime, pods: &PodTable) {
    if src.workload.is_some() {
        return;
    }
    let Some(pod) = src.ip.and_then(|ip| pods.lookup(ip, at)) else {
        return;
    };
    let agrees = src.namespace.as_ref().is_none_or(|ns| *ns == pod.namespace)
        && src.pod.as_ref().is_none_or(|p| *p == pod.name);
    if !agrees {
        return;
    }
    src.namespace = Some(pod.namespace.clone());
    src.pod = Some(pod.name.clone());
    src.workload = Some(pod.workload.clone());
    src.workload_kind = Some(pod.workload_kind.clone());
}
