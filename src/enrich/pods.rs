//! The pod table: pod IP (or UID, or name) -> namespace, pod and owning workload, from the
//! cluster model (a `kubectl get pods,replicasets,jobs -A -o json` file, or a watch).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod as K8sPod;
use time::OffsetDateTime;

use crate::cluster::load::Loader;
use crate::cluster::pod::Identity;
use crate::cluster::{Owners, Pod};

/// One pod as the table keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRecord {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
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
    #[error("{path} is not the JSON or YAML of `kubectl get pods -A -o json`: {reason}")]
    Unreadable { path: String, reason: String },
}

/// Pods by IP. Several pods may have held one IP over time (reuse after a pod ends).
/// Sources that know a pod without its address (its cgroup, its log file, a metric's labels)
/// find it by UID or by name, hostNetwork pods too.
#[derive(Debug, Default)]
pub struct PodTable {
    by_ip: HashMap<IpAddr, Vec<Arc<PodRecord>>>,
    by_uid: HashMap<String, Arc<PodRecord>>,
    /// By namespace, then name: looked up with borrowed names, on the stage's hot path.
    by_name: HashMap<String, HashMap<String, Arc<PodRecord>>>,
    /// Workload kinds by namespace, then workload name, for sources that name only the
    /// workload.
    kinds: HashMap<String, HashMap<String, String>>,
}

impl PodTable {
    /// Loads a file of Pods (a List, or objects), with the ReplicaSets and Jobs that own
    /// them when present. Other kinds are ignored; a file that does not parse is an error.
    pub fn load(path: &Path) -> Result<PodTable, PodsError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PodsError::Read {
            path: name.clone(),
            source,
        })?;
        let mut loader = Loader::default();
        loader.add_text(&text, &name);
        let cluster = loader.finish();
        if let Some(problem) = cluster.unavailable.first() {
            return Err(PodsError::Unreadable {
                path: name,
                reason: format!("{}: {}", problem.resource, problem.reason),
            });
        }
        Ok(PodTable::from_pods(cluster.pods.iter()))
    }

    /// Builds the table from the model's pods.
    pub fn from_pods<'a>(pods: impl Iterator<Item = &'a Pod>) -> PodTable {
        let mut table = PodTable::default();
        for pod in pods.filter(|p| !p.template) {
            table.insert(
                PodRecord {
                    namespace: pod.namespace.clone(),
                    name: pod.name.clone(),
                    uid: pod.uid.clone(),
                    workload_kind: pod.workload.kind.clone(),
                    workload: pod.workload.name.clone(),
                    ips: pod.ips.clone(),
                    start: pod.start,
                    end: pod.end,
                },
                pod.host_network,
            );
        }
        table
    }

    /// Builds the table from watched pods and the controllers that may own them.
    pub fn build<'a>(
        pods: impl Iterator<Item = &'a K8sPod>,
        replicasets: impl Iterator<Item = &'a ReplicaSet>,
        jobs: impl Iterator<Item = &'a Job>,
    ) -> PodTable {
        let mut owners = Owners::default();
        for rs in replicasets {
            owners.remember("ReplicaSet", &rs.metadata);
        }
        for job in jobs {
            owners.remember("Job", &job.metadata);
        }
        let mut table = PodTable::default();
        for id in pods.filter_map(|p| Identity::of(p, &owners)) {
            table.insert(
                PodRecord {
                    namespace: id.namespace,
                    name: id.name,
                    uid: id.uid,
                    workload_kind: id.workload.kind,
                    workload: id.workload.name,
                    ips: id.ips,
                    start: id.start,
                    end: id.end,
                },
                id.host_network,
            );
        }
        table
    }

    /// Adds a pod. A hostNetwork pod's addresses are its node's: attributing them to one of
    /// its pods would be wrong, so it is found by UID and name only.
    fn insert(&mut self, record: PodRecord, host_network: bool) {
        let record = Arc::new(record);
        if !host_network {
            for ip in &record.ips {
                self.by_ip.entry(*ip).or_default().push(record.clone());
            }
        }
        if let Some(uid) = &record.uid {
            self.by_uid.insert(uid.clone(), record.clone());
        }
        self.kinds
            .entry(record.namespace.clone())
            .or_default()
            .entry(record.workload.clone())
            .or_insert_with(|| record.workload_kind.clone());
        let names = self.by_name.entry(record.namespace.clone()).or_default();
        // Of pods that shared a name over time (a StatefulSet's), the latest.
        match names.get(&record.name) {
            Some(had) if had.start > record.start => {}
            _ => {
                names.insert(record.name.clone(), record);
            }
        }
    }

    /// The pod whose `metadata.uid` is `uid`.
    pub fn by_uid(&self, uid: &str) -> Option<&PodRecord> {
        self.by_uid.get(uid).map(Arc::as_ref)
    }

    /// The pod `namespace/name` (the latest of that name).
    pub fn by_name(&self, namespace: &str, name: &str) -> Option<&PodRecord> {
        self.by_name.get(namespace)?.get(name).map(Arc::as_ref)
    }

    /// The kind of the workload `namespace/name` (`Deployment`, ...), when a pod of it is known.
    pub fn workload_kind(&self, namespace: &str, name: &str) -> Option<&str> {
        self.kinds.get(namespace)?.get(name).map(String::as_str)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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

    fn table_of(objects: Vec<Value>) -> PodTable {
        let mut loader = Loader::default();
        loader.add(Value::Array(objects), "test");
        PodTable::from_pods(loader.finish().pods.iter())
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
        let table = table_of(objects);
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
        let table = table_of(objects);
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
