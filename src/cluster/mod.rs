//! The cluster as egress-scout reads it: one typed model of the objects that decide or reveal
//! egress (namespaces, pods and workload templates, Services, NetworkPolicies, Cilium, Istio
//! and AdminNetworkPolicy objects), loaded from `kubectl get -o json|yaml` files or the live
//! API. `audit`, the pod table and the policy evaluator all read this model.

pub mod admin;
pub mod cilium;
pub mod istio;
pub mod live;
pub mod load;
mod owners;
pub mod pod;
pub mod selector;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

pub use admin::AdminPolicy;
pub use cilium::CiliumPolicy;
pub use istio::{DestinationRule, MeshConfig, ServiceEntry, Sidecar};
pub use owners::Owners;
pub use pod::{ContainerPort, Pod, Workload};

/// The label every namespace carries since Kubernetes 1.21, set here for older dumps too.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A resource that could not be read: a missing CRD, an RBAC denial, a malformed object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Unavailable {
    pub resource: String,
    pub reason: String,
}

/// A Service: what a connection to its cluster IP reaches after DNAT.
#[derive(Debug, Clone)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub cluster_ips: Vec<IpAddr>,
    /// None: a Service without selector (its endpoints are managed by hand).
    pub selector: Option<BTreeMap<String, String>>,
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Clone)]
pub struct ServicePort {
    pub port: u16,
    pub protocol: String,
    pub target: TargetPort,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    Number(u16),
    /// A container port's name, resolved per backend pod.
    Name(String),
}

/// Every object read, however it was obtained.
#[derive(Debug, Default)]
pub struct Cluster {
    /// Namespaces and their labels; namespaces only seen in other objects' metadata carry
    /// just [`NAMESPACE_NAME_LABEL`].
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Pods, and the pod templates of workloads read as manifests.
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub network_policies: Vec<NetworkPolicy>,
    /// CiliumNetworkPolicies and CiliumClusterwideNetworkPolicies.
    pub cilium_policies: Vec<CiliumPolicy>,
    pub service_entries: Vec<ServiceEntry>,
    pub destination_rules: Vec<DestinationRule>,
    pub sidecars: Vec<Sidecar>,
    /// AdminNetworkPolicies and the BaselineAdminNetworkPolicy.
    pub admin_policies: Vec<AdminPolicy>,
    /// The mesh config (the `mesh` key of istio-system's `istio` ConfigMap), when read.
    pub mesh_config: Option<MeshConfig>,
    pub unavailable: Vec<Unavailable>,
    /// Some egress policies could not be read (RBAC): what isolates a pod is unknown.
    pub policies_unreadable: bool,
}

/// `namespace/name` of an object's metadata (just the name for cluster-wide objects).
pub fn qualified(meta: &ObjectMeta) -> String {
    let name = meta.name.as_deref().unwrap_or_default();
    match meta.namespace.as_deref() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

impl Cluster {
    /// The namespaces the objects live in or name.
    pub fn namespace_names(&self) -> BTreeSet<String> {
        self.namespaces.keys().cloned().collect()
    }

    /// Labels of namespace `ns` (empty for one never seen).
    pub fn namespace_labels(&self, ns: &str) -> &BTreeMap<String, String> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        self.namespaces.get(ns).unwrap_or(&NONE)
    }

    /// Records a namespace seen in an object's metadata, keeping labels already read.
    fn saw_namespace(&mut self, ns: &str) {
        self.namespaces
            .entry(ns.to_string())
            .or_insert_with(|| BTreeMap::from([(NAMESPACE_NAME_LABEL.into(), ns.into())]));
    }

    /// Records every namespace the objects name; called once all are read.
    fn finish(&mut self) {
        let seen: Vec<String> = self
            .pods
            .iter()
            .map(|p| p.namespace.clone())
            .chain(self.services.iter().map(|s| s.namespace.clone()))
            .chain(
                self.network_policies
                    .iter()
                    .filter_map(|p| p.metadata.namespace.clone()),
            )
            .chain(
                self.cilium_policies
                    .iter()
                    .filter_map(|p| p.namespace.clone()),
            )
            .chain(self.service_entries.iter().map(|s| s.namespace.clone()))
            .chain(self.destination_rules.iter().map(|s| s.namespace.clone()))
            .chain(self.sidecars.iter().map(|s| s.namespace.clone()))
            .collect();
        for ns in seen {
            self.saw_namespace(&ns);
        }
        self.unavailable.sort();
        self.unavailable.dedup();
    }

    /// Keeps only one namespace's objects (cluster-wide ones stay).
    pub fn retain_namespace(&mut self, ns: &str) {
        self.pods.retain(|p| p.namespace == ns);
        self.services.retain(|s| s.namespace == ns);
        self.network_policies
            .retain(|p| p.metadata.namespace.as_deref().is_none_or(|n| n == ns));
        self.cilium_policies
            .retain(|p| p.namespace.as_deref().is_none_or(|n| n == ns));
        self.service_entries.retain(|s| s.namespace == ns);
        self.destination_rules.retain(|s| s.namespace == ns);
        self.sidecars.retain(|s| s.namespace == ns);
    }
}
