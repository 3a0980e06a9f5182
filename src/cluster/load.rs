//! The cluster from `kubectl get ... -o json|yaml` output: files, directories (their
//! `.json`, `.yaml` and `.yml` files) or stdin; Lists or single objects, several JSON values
//! or YAML documents per file. Kinds the model does not hold are passed over; a document or
//! object that does not parse is reported and the rest still read.

use std::io::Read;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Namespace, Pod as K8sPod, PodTemplateSpec, Service as K8sService,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::{
    Cluster, MeshConfig, NAMESPACE_NAME_LABEL, Owners, Pod, Service, ServicePort, TargetPort,
    Unavailable, Workload, admin, cilium, istio,
};

/// Reads every path (`-` is stdin); fails only when a path cannot be read at all.
pub fn from_paths(paths: &[PathBuf]) -> std::io::Result<Cluster> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files)?;
    }
    let mut loader = Loader::default();
    for path in files {
        let text = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text
        } else {
            std::fs::read_to_string(&path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?
        };
        loader.add_text(&text, &path.display().to_string());
    }
    Ok(loader.finish())
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.as_os_str() == "-" || !path.is_dir() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let manifest = entry
            .extension()
            .is_some_and(|e| e == "json" || e == "yaml" || e == "yml");
        if entry.is_dir() || manifest {
            collect(&entry, files)?;
        }
    }
    Ok(())
}

/// Objects as they arrive; pods wait for every ReplicaSet and Job to name their workload.
#[derive(Default)]
pub struct Loader {
    cluster: Cluster,
    pods: Vec<K8sPod>,
    owners: Owners,
}

impl Loader {
    /// Every object in one file's text: JSON when it opens with `{` or `[`, else YAML.
    pub fn add_text(&mut self, text: &str, origin: &str) {
        let docs: Result<Vec<Value>, String> = if text.trim_start().starts_with(['{', '[']) {
            serde_json::Deserializer::from_str(text)
                .into_iter::<Value>()
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())
        } else {
            serde_saphyr::from_multiple::<Value>(text).map_err(|e| e.to_string())
        };
        match docs {
            Ok(docs) => docs.into_iter().for_each(|d| self.add(d, origin)),
            Err(e) => self.unreadable(origin, format!("does not parse: {e}")),
        }
    }

    /// Records a resource that could not be read.
    pub fn unreadable(&mut self, resource: &str, reason: String) {
        tracing::warn!(resource, reason, "input skipped");
        self.cluster.unavailable.push(Unavailable {
            resource: resource.to_string(),
            reason,
        });
    }

    pub fn cluster_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }

    /// One object (or a List of them, or a JSON array).
    pub fn add(&mut self, object: Value, origin: &str) {
        if let Value::Array(items) = object {
            items.into_iter().for_each(|o| self.add(o, origin));
            return;
        }
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if kind.ends_with("List") || (kind.is_empty() && object.get("items").is_some()) {
            if let Some(Value::Array(items)) = object.get("items") {
                items.iter().for_each(|o| self.add(o.clone(), origin));
            }
            return;
        }
        let api_version = object.get("apiVersion").and_then(Value::as_str);
        let group = api_version
            .and_then(|v| v.split_once('/'))
            .map(|(g, _)| g.to_string());
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Err(e) = self.add_kind(group.as_deref(), &kind, &name, object) {
            self.unreadable(&format!("{origin}: {kind}/{name}"), e);
        }
    }

    fn add_kind(
        &mut self,
        group: Option<&str>,
        kind: &str,
        name: &str,
        object: Value,
    ) -> Result<(), String> {
        let c = &mut self.cluster;
        match (group, kind) {
            (None, "Pod") => self.pods.push(typed(object)?),
            (None, "Namespace") => {
                let ns: Namespace = typed(object)?;
                let mut labels = ns.metadata.labels.unwrap_or_default();
                labels.insert(NAMESPACE_NAME_LABEL.into(), name.into());
                c.namespaces.insert(name.to_string(), labels);
            }
            (None, "Service") => c.services.extend(service(typed(object)?)),
            (None, "ConfigMap") => self.add_mesh_config(&object, name),
            (Some("apps"), "ReplicaSet") => {
                let rs: ReplicaSet = typed(object.clone())?;
                self.owners.remember("ReplicaSet", &rs.metadata);
                self.add_template(object, kind, name)?;
            }
            (Some("batch"), "Job") => {
                let job: Job = typed(object.clone())?;
                self.owners.remember("Job", &job.metadata);
                self.add_template(object, kind, name)?;
            }
            (Some("apps" | "batch"), _) | (None, "ReplicationController") => {
                self.add_template(object, kind, name)?
            }
            (Some("networking.k8s.io"), "NetworkPolicy") => c.network_policies.push(typed(object)?),
            (Some("networking.istio.io"), "ServiceEntry") => {
                c.service_entries.push(istio::parse(object)?)
            }
            (Some("networking.istio.io"), "DestinationRule") => {
                c.destination_rules.push(istio::parse(object)?)
            }
            (Some("networking.istio.io"), "Sidecar") => c.sidecars.push(istio::parse(object)?),
            (Some("cilium.io"), "CiliumNetworkPolicy") => {
                c.cilium_policies.push(cilium::parse(object, false)?)
            }
            (Some("cilium.io"), "CiliumClusterwideNetworkPolicy") => {
                c.cilium_policies.push(cilium::parse(object, true)?)
            }
            (Some("policy.networking.k8s.io"), "AdminNetworkPolicy") => {
                c.admin_policies.push(admin::parse(object, false)?)
            }
            (Some("policy.networking.k8s.io"), "BaselineAdminNetworkPolicy") => {
                c.admin_policies.push(admin::parse(object, true)?)
            }
            _ => {}
        }
        Ok(())
    }

    /// A workload's pod template; ReplicaSets and Jobs a controller owns are covered by
    /// their owner's template.
    fn add_template(&mut self, object: Value, kind: &str, name: &str) -> Result<(), String> {
        let pointer = match kind {
            "Deployment"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicaSet"
            | "Job"
            | "ReplicationController" => "/spec/template",
            "CronJob" => "/spec/jobTemplate/spec/template",
            _ => return Ok(()),
        };
        let owned = object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| !refs.is_empty());
        let Some(template) = object.pointer(pointer).filter(|_| !owned) else {
            return Ok(());
        };
        let template: PodTemplateSpec =
            serde_json::from_value(template.clone()).map_err(|e| e.to_string())?;
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let workload = Workload {
            kind: kind.to_string(),
            name: name.to_string(),
        };
        let pod = Pod::from_template(namespace, workload, template);
        self.cluster.pods.push(pod);
        Ok(())
    }

    /// Istio's mesh config: the `mesh` key of the `istio` (or `istio-<revision>`) ConfigMap in
    /// istio-system.
    fn add_mesh_config(&mut self, object: &Value, name: &str) {
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str);
        let is_mesh =
            namespace == Some("istio-system") && (name == "istio" || name.starts_with("istio-"));
        if let Some(mesh) = object.pointer("/data/mesh").and_then(Value::as_str)
            && is_mesh
            && self.cluster.mesh_config.is_none()
        {
            let config = MeshConfig::parse(name, mesh);
            if config.outbound_mode.is_none() {
                self.unreadable(
                    &format!("istio-system/ConfigMap/{name}"),
                    "its `mesh` key is not valid YAML".into(),
                );
            }
            self.cluster.mesh_config = Some(config);
        }
    }

    /// The cluster, with every pod's workload named.
    pub fn finish(mut self) -> Cluster {
        for pod in self.pods.drain(..) {
            self.cluster.pods.extend(Pod::from_k8s(pod, &self.owners));
        }
        self.cluster.finish();
        self.cluster
    }
}

fn typed<T: serde::de::DeserializeOwned>(object: Value) -> Result<T, String> {
    serde_json::from_value(object).map_err(|e| e.to_string())
}

/// A Service's cluster IPs, selector and ports.
fn service(s: K8sService) -> Option<Service> {
    let spec = s.spec.unwrap_or_default();
    let ips = spec.cluster_ips.iter().flatten().chain(&spec.cluster_ip);
    let mut cluster_ips: Vec<_> = ips.filter_map(|ip| ip.parse().ok()).collect();
    cluster_ips.sort();
    cluster_ips.dedup();
    let ports = spec.ports.iter().flatten().filter_map(|p| {
        let port = u16::try_from(p.port).ok()?;
        let target = match &p.target_port {
            Some(IntOrString::Int(n)) => TargetPort::Number(u16::try_from(*n).ok()?),
            Some(IntOrString::String(name)) => match name.parse() {
                Ok(n) => TargetPort::Number(n),
                Err(_) => TargetPort::Name(name.clone()),
            },
            None => TargetPort::Number(port),
        };
        Some(ServicePort {
            port,
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            target,
        })
    });
    Some(Service {
        namespace: s.metadata.namespace.unwrap_or_else(|| "default".into()),
        name: s.metadata.name?,
        cluster_ips,
        selector: spec.selector.filter(|s| !s.is_empty()),
        ports: ports.collect(),
    })
}
