//! Pods and workload pod templates: labels, addresses, node, ports and the owning workload,
//! read once from the typed Kubernetes object.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod as K8sPod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use time::OffsetDateTime;

use super::owners::Owners;

/// The workload a pod belongs to: its top controller, else the pod itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Workload {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, `Job`, ..., or `Pod`.
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// A container port, which a named port in a policy resolves against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
    /// `TCP` unless the manifest says otherwise.
    pub protocol: String,
}

/// A pod, or a workload's pod template (`template`), as policies see it.
#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    /// The pod's name; a template's is its workload's.
    pub name: String,
    /// `metadata.uid`: its cgroup is named by it.
    pub uid: Option<String>,
    pub workload: Workload,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Sorted; empty for templates and pods not yet given an address.
    pub ips: Vec<IpAddr>,
    /// The node's address (`status.hostIP`).
    pub host_ip: Option<IpAddr>,
    pub node: Option<String>,
    pub host_network: bool,
    pub ports: Vec<ContainerPort>,
    pub template: bool,
    /// Phase Succeeded or Failed: it makes no more connections.
    pub finished: bool,
    /// When it started; an IP is only its own from then on.
    pub start: Option<OffsetDateTime>,
    /// When it finished or was deleted; `None` while it runs.
    pub end: Option<OffsetDateTime>,
    pub spec: PodSpec,
}

fn timestamp(t: &Time) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(t.0.as_nanosecond()).ok()
}

fn container_ports(spec: &PodSpec) -> Vec<ContainerPort> {
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    containers
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            Some(ContainerPort {
                name: p.name.clone(),
                port: u16::try_from(p.container_port).ok()?,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            })
        })
        .collect()
}

/// Who a pod is and when its addresses were its own: what the pod table keeps.
#[derive(Debug, Clone)]
pub struct Identity {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub workload: Workload,
    pub ips: Vec<IpAddr>,
    pub host_network: bool,
    pub finished: bool,
    pub start: Option<OffsetDateTime>,
    pub end: Option<OffsetDateTime>,
}

impl Identity {
    /// A pod object's identity; its workload through `owners`.
    pub fn of(pod: &K8sPod, owners: &Owners) -> Option<Identity> {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let name = meta.name.clone()?;
        let workload = owners.workload(&namespace, meta);
        let status = pod.status.as_ref();
        let mut ips: Vec<IpAddr> = status
            .and_then(|s| s.pod_ips.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|p| p.ip.parse().ok())
            .chain(status.and_then(|s| s.pod_ip.as_deref()?.parse().ok()))
            .collect();
        ips.sort();
        ips.dedup();
        let phase = status.and_then(|s| s.phase.as_deref());
        let finished = matches!(phase, Some("Succeeded" | "Failed"));
        let finished_at = finished
            .then(|| {
                status?
                    .container_statuses
                    .iter()
                    .flatten()
                    .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
                    .filter_map(timestamp)
                    .max()
            })
            .flatten();
        Some(Identity {
            namespace,
            name,
            uid: meta.uid.clone(),
            workload,
            ips,
            host_network: pod.spec.as_ref().and_then(|s| s.host_network) == Some(true),
            finished,
            start: status
                .and_then(|s| s.start_time.as_ref())
                .and_then(timestamp),
            end: meta
                .deletion_timestamp
                .as_ref()
                .and_then(timestamp)
                .or(finished_at),
        })
    }
}

impl Pod {
    /// A pod object; its workload through `owners` (ReplicaSets and Jobs read with it).
    pub fn from_k8s(pod: K8sPod, owners: &Owners) -> Option<Pod> {
        let id = Identity::of(&pod, owners)?;
        let meta = pod.metadata;
        let spec = pod.spec.unwrap_or_default();
        let host_ip = pod.status.and_then(|s| s.host_ip?.parse().ok());
        Some(Pod {
            namespace: id.namespace,
            name: id.name,
            uid: id.uid,
            workload: id.workload,
            labels: meta.labels.unwrap_or_default(),
            annotations: meta.annotations.unwrap_or_default(),
            ips: id.ips,
            host_ip,
            node: spec.node_name.clone(),
            host_network: id.host_network,
            ports: container_ports(&spec),
            template: false,
            finished: id.finished,
            start: id.start,
            end: id.end,
            spec,
        })
    }

    /// A workload's pod template, standing for pods it has not (or not yet) got.
    pub fn from_template(namespace: &str, workload: Workload, template: PodTemplateSpec) -> Pod {
        let meta = template.metadata.unwrap_or_default();
        let spec = template.spec.unwrap_or_default();
        Pod {
            namespace: namespace.to_string(),
            name: workload.name.clone(),
            uid: None,
            workload,
            labels: meta.labels.unwrap_or_default(),
            annotations: meta.annotations.unwrap_or_default(),
            ips: Vec::new(),
            host_ip: None,
            node: spec.node_name.clone(),
            host_network: spec.host_network == Some(true),
            ports: container_ports(&spec),
            template: true,
            finished: false,
            start: None,
            end: None,
            spec,
        }
    }

    /// `namespace/name`.
    pub fn qualified(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether an Istio sidecar mediates its TCP egress: an injected `istio-proxy`
    /// container (or the injector's status annotation); for a template, the injection label.
    pub fn has_sidecar(&self, namespace_labels: &BTreeMap<String, String>) -> bool {
        let proxy = |c: &k8s_openapi::api::core::v1::Container| c.name == "istio-proxy";
        let injected = self.spec.containers.iter().any(proxy)
            || self.spec.init_containers.iter().flatten().any(proxy)
            || self.annotations.contains_key("sidecar.istio.io/status");
        if injected || !self.template {
            return injected;
        }
        let label = self
            .labels
            .get("sidecar.istio.io/inject")
            .map(String::as_str);
        let ns = namespace_labels.get("istio-injection").map(String::as_str);
        label == Some("true") || (ns == Some("enabled") && label != Some("false"))
    }

    /// Whether the pod carries every label of `wanted` (a Service's selector, a Sidecar's
    /// workloadSelector, a generated matchLabels).
    pub fn has_labels(&self, wanted: &BTreeMap<String, String>) -> bool {
        wanted.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }

    /// The port a named container port resolves to for `protocol`.
    pub fn named_port(&self, name: &str, protocol: &str) -> Option<u16> {
        self.ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name) && p.protocol.eq_ignore_ascii_case(protocol))
            .map(|p| p.port)
    }
}
