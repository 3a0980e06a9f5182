//! Enrichment of surviving observations: which pod and workload made them.

pub mod pods;

use time::OffsetDateTime;

use crate::event::Endpoint;
pub use pods::{PodRecord, PodTable, PodsError};

/// Fills namespace, pod and workload of `src` from its IP, when the table knows the pod that
/// held that IP at `at` and the source did not already name one.
pub fn attribute(src: &mut Endpoint, at: OffsetDateTime, pods: &PodTable) {
    if src.namespace.is_some() {
        return;
    }
    let Some(pod) = src.ip.and_then(|ip| pods.lookup(ip, at)) else {
        return;
    };
    src.namespace = Some(pod.namespace.clone());
    src.pod = Some(pod.name.clone());
    src.workload = Some(pod.workload.clone());
    src.workload_kind = Some(pod.workload_kind.clone());
}
