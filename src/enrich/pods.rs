//! The pod table: pod IP -> namespace, pod and owning workload, from Kubernetes objects
//! (`kubectl get pods,replicasets,jobs -A -o json`, or a watch). Workloads are found through
//! ownerReferences: Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob, StatefulSet,
//! DaemonSet, else the pod itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

/// One pod as the table keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRecord {
    pub namespace: String,
    pub name: String,
    pub workload_kind: String,
    pub workload: String,
    pub ips: Vec<IpAddr>,
    /// When the pod started; an IP is only its own from then on.
    pub start: Option<OffsetDateTime>,
    /// When it finished or was deleted; `None` while it runs.
    pub end: Option<OffsetDateTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum PodsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not the JSON of `kubectl get pods -A -o json`: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
}

/// Pods by IP. Several pods may have held one IP over time (reuse after a pod ends).
#[derive(Debug, Default)]
pub struct PodTable {
    by_ip: HashMap<IpAddr, Vec<Arc<PodRecord>>>,
}

/// A controller's own controller, by (namespace, kind, name).
type Owners = HashMap<(String, String, String), OwnerReference>;

impl PodTable {
    /// Loads a JSON file holding a `List` of objects (or one object): Pods, and optionally
    /// the ReplicaSets and Jobs that own them. Other kinds are ignored.
    pub fn load(path: &Path) -> Result<PodTable, PodsError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| PodsError::Read {
            path: name.clone(),
            source,
        })?;
        let doc: Value = serde_json::from_slice(&bytes).map_err(|source| PodsError::Json {
            path: name.clone(),
            source,
        })?;
        let items = match doc {
            Value::Object(mut o) if o.get("items").is_some_and(Value::is_array) => {
                match o.remove("items") {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                }
            }
            other => vec![other],
        };
        PodTable::from_objects(items).map_err(|source| PodsError::Json { path: name, source })
    }

    /// Builds the table from decoded objects of any kind. Each pod is decoded and dropped in
    /// turn: a cluster's typed pods at once would be most of a scan's memory.
    pub fn from_objects(items: Vec<Value>) -> Result<PodTable, serde_json::Error> {
        let is_pod = |item: &Value| item.get("kind").and_then(Value::as_str) == Some("Pod");
        let mut owners = Owners::new();
        for item in &items {
            match item.get("kind").and_then(Value::as_str) {
                Some("ReplicaSet") => {
                    let rs = ReplicaSet::deserialize(item)?;
                    remember_owner(&mut owners, "ReplicaSet", &rs.metadata);
                }
                Some("Job") => {
                    remember_owner(&mut owners, "Job", &Job::deserialize(item)?.metadata)
                }
                _ => {}
            }
        }
        let mut table = PodTable::default();
        for item in items.into_iter().filter(is_pod) {
            table.add(&serde_json::from_value::<Pod>(item)?, &owners);
        }
        Ok(table)
    }

    /// Builds the table from pods and the controllers that may own them.
    pub fn build<'a>(
        pods: impl Iterator<Item = &'a Pod>,
        replicasets: impl Iterator<Item = &'a ReplicaSet>,
        jobs: impl Iterator<Item = &'a Job>,
    ) -> PodTable {
        let mut owners = Owners::new();
        for rs in replicasets {
            remember_owner(&mut owners, "ReplicaSet", &rs.metadata);
        }
        for job in jobs {
            remember_owner(&mut owners, "Job", &job.metadata);
        }
        let mut table = PodTable::default();
        for pod in pods {
            table.add(pod, &owners);
        }
        table
    }

    fn add(&mut self, pod: &Pod, owners: &Owners) {
        if let Some(record) = record_of(pod, owners) {
            self.insert(record);
        }
    }

    fn insert(&mut self, record: PodRecord) {
        let record = Arc::new(record);
        for ip in &record.ips {
            self.by_ip.entry(*ip).or_default().push(record.clone());
        }
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// The pod that held `ip` at `at`: the one whose lifetime contains it, else the latest
    /// one started before it, else the latest one.
    pub fn lookup(&self, ip: IpAddr, at: OffsetDateTime) -> Option<&PodRecord> {
        let pods = self.by_ip.get(&ip)?;
        let alive =
            |p: &&Arc<PodRecord>| p.start.is_none_or(|s| s <= at) && p.end.is_none_or(|e| at <= e);
        pods.iter()
            .find(alive)
            .or_else(|| {
                pods.iter()
                    .filter(|p| p.start.is_none_or(|s| s <= at))
                    .max_by_key(|p| p.start)
            })
            .or_else(|| pods.iter().max_by_key(|p| p.start))
            .map(|p| p.as_ref())
    }
}

fn remember_owner(owners: &mut Owners, kind: &str, meta: &ObjectMeta) {
    let (Some(ns), Some(name)) = (&meta.namespace, &meta.name) else {
        return;
    };
    if let Some(owner) = controller_of(meta) {
        owners.insert((ns.clone(), kind.to_string(), name.clone()), owner.clone());
    }
}

fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let refs = meta.owner_references.as_deref()?;
    refs.iter()
        .find(|r| r.controller == Some(true))
        .or(refs.first())
}

/// (kind, name) of the workload that owns the pod, from its own metadata alone (a
/// Deployment's name from its ReplicaSet's, else the owner, else the pod).
pub fn workload(pod: &Pod) -> (String, String) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    workload_of(pod, ns, &Owners::new())
}

/// (kind, name) of the workload that owns the pod.
fn workload_of(pod: &Pod, ns: &str, owners: &Owners) -> (String, String) {
    let meta = &pod.metadata;
    let name = meta.name.clone().unwrap_or_default();
    let Some(owner) = controller_of(meta) else {
        return ("Pod".into(), name);
    };
    let key = (ns.to_string(), owner.kind.clone(), owner.name.clone());
    if let Some(top) = owners.get(&key) {
        return (top.kind.clone(), top.name.clone());
    }
    // Without the ReplicaSet object: the Deployment controller names its ReplicaSets
    // `<deployment>-<pod-template-hash>` and labels their pods with that hash.
    let hash = meta
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"));
    if owner.kind == "ReplicaSet"
        && let Some(deployment) = hash.and_then(|h| owner.name.strip_suffix(&format!("-{h}")))
    {
        return ("Deployment".into(), deployment.to_string());
    }
    (owner.kind.clone(), owner.name.clone())
}

fn timestamp(t: &Time) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(t.0.as_nanosecond()).ok()
}

fn record_of(pod: &Pod, owners: &Owners) -> Option<PodRecord> {
    let meta = &pod.metadata;
    let namespace = meta.namespace.clone()?;
    let name = meta.name.clone()?;
    // A hostNetwork pod shares its node's IP: attributing that IP to it would be wrong.
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        return None;
    }
    let status = pod.status.as_ref()?;
    let mut ips: Vec<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .filter_map(|p| p.ip.parse().ok())
        .chain(status.pod_ip.as_deref().and_then(|ip| ip.parse().ok()))
        .collect();
    ips.sort();
    ips.dedup();
    if ips.is_empty() {
        return None;
    }
    let finished = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
    let finished_at = finished
        .then(|| {
            status
                .container_statuses
                .iter()
                .flatten()
                .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
                .filter_map(timestamp)
                .max()
        })
        .flatten();
    let (workload_kind, workload) = workload_of(pod, &namespace, owners);
    Some(PodRecord {
        namespace,
        name,
        workload_kind,
        workload,
        ips,
        start: status.start_time.as_ref().and_then(timestamp),
        end: meta
            .deletion_timestamp
            .as_ref()
            .and_then(timestamp)
            .or(finished_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, ip: &str, owner: Option<(&str, &str)>, extra: Value) -> Value {
        let mut p = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": ns, "name": name, "labels": {}},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "startTime": "2024-05-14T08:00:00Z"}
        });
        if let Some((kind, oname)) = owner {
            p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind,
                "name": oname, "uid": "u", "controller": true}]);
        }
        merge(&mut p, extra);
        p
    }

    fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn at(s: &str) -> OffsetDateTime {
        crate::parse::time::rfc3339(s).unwrap()
    }

    #[test]
    fn workloads_through_owner_references() {
        let objects = vec![
            pod(
                "shop",
                "cart-7d9f-x2x",
                "10.244.1.10",
                Some(("ReplicaSet", "cart-7d9f")),
                json!({"metadata": {"labels": {"pod-template-hash": "7d9f"}}}),
            ),
            pod(
                "shop",
                "db-0",
                "10.244.1.11",
                Some(("StatefulSet", "db")),
                json!({}),
            ),
            pod(
                "batch",
                "report-28571234-abcde",
                "10.244.1.12",
                Some(("Job", "report-28571234")),
                json!({}),
            ),
            json!({"apiVersion": "batch/v1", "kind": "Job",
                   "metadata": {"namespace": "batch", "name": "report-28571234",
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "report", "uid": "c", "controller": true}]}}),
            pod(
                "kube-system",
                "kube-proxy-abc",
                "172.18.0.2",
                Some(("DaemonSet", "kube-proxy")),
                json!({"spec": {"hostNetwork": true}}),
            ),
            pod("default", "debug", "10.244.1.13", None, json!({})),
        ];
        let table = PodTable::from_objects(objects).unwrap();
        let t = at("2024-05-14T09:00:00Z");
        let w = |ip: &str| {
            table.lookup(ip.parse().unwrap(), t).map(|p| {
                (
                    p.namespace.as_str(),
                    p.workload_kind.as_str(),
                    p.workload.as_str(),
                )
            })
        };
        assert_eq!(w("10.244.1.10"), Some(("shop", "Deployment", "cart")));
        assert_eq!(w("10.244.1.11"), Some(("shop", "StatefulSet", "db")));
        assert_eq!(w("10.244.1.12"), Some(("batch", "CronJob", "report")));
        assert_eq!(w("10.244.1.13"), Some(("default", "Pod", "debug")));
        assert_eq!(
            w("172.18.0.2"),
            None,
            "hostNetwork pods are never attributed by IP"
        );
    }

    #[test]
    fn ip_reuse_follows_pod_lifetimes() {
        let objects = vec![
            pod(
                "a",
                "old",
                "10.244.2.2",
                None,
                json!({"status": {"phase": "Succeeded",
                "startTime": "2024-05-14T08:00:00Z",
                "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                  "state": {"terminated": {"exitCode": 0, "finishedAt": "2024-05-14T08:30:00Z"}}}]}}),
            ),
            pod(
                "b",
                "new",
                "10.244.2.2",
                None,
                json!({"status": {"startTime": "2024-05-14T08:40:00Z"}}),
            ),
        ];
        let table = PodTable::from_objects(objects).unwrap();
        let name = |t: &str| {
            table
                .lookup("10.244.2.2".parse().unwrap(), at(t))
                .map(|p| p.name.clone())
        };
        assert_eq!(name("2024-05-14T08:10:00Z").as_deref(), Some("old"));
        assert_eq!(name("2024-05-14T08:50:00Z").as_deref(), Some("new"));
        assert_eq!(
            name("2024-05-14T08:35:00Z").as_deref(),
            Some("old"),
            "between: the latest started"
        );
    }
}
