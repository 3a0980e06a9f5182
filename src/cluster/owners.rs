//! Which workload owns a pod, through ownerReferences: Pod -> ReplicaSet -> Deployment,
//! Pod -> Job -> CronJob, StatefulSet, DaemonSet, else the pod itself.

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::Workload;

/// A controller's own controller, by (namespace, kind, name): what ReplicaSets and Jobs read
/// beside the pods say.
#[derive(Debug, Default)]
pub struct Owners(HashMap<(String, String, String), OwnerReference>);

fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let refs = meta.owner_references.as_deref()?;
    refs.iter()
        .find(|r| r.controller == Some(true))
        .or(refs.first())
}

impl Owners {
    /// Remembers the controller of a ReplicaSet or Job (`kind`).
    pub fn remember(&mut self, kind: &str, meta: &ObjectMeta) {
        let (Some(ns), Some(name)) = (&meta.namespace, &meta.name) else {
            return;
        };
        if let Some(owner) = controller_of(meta) {
            self.0
                .insert((ns.clone(), kind.to_string(), name.clone()), owner.clone());
        }
    }

    /// The workload of a pod of namespace `ns` with this metadata.
    pub fn workload(&self, ns: &str, meta: &ObjectMeta) -> Workload {
        let workload = |kind: &str, name: &str| Workload {
            kind: kind.to_string(),
            name: name.to_string(),
        };
        let name = meta.name.as_deref().unwrap_or_default();
        let Some(owner) = controller_of(meta) else {
            return workload("Pod", name);
        };
        let key = (ns.to_string(), owner.kind.clone(), owner.name.clone());
        if let Some(top) = self.0.get(&key) {
            return workload(&top.kind, &top.name);
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
            return workload("Deployment", deployment);
        }
        workload(&owner.kind, &owner.name)
    }

    /// Whether a workload object is itself owned (a Deployment's ReplicaSet, a CronJob's
    /// Job): its owner's template covers it.
    pub fn is_owned(meta: &ObjectMeta) -> bool {
        meta.owner_references
            .as_ref()
            .is_some_and(|r| !r.is_empty())
    }
}
