//! Cluster objects from `kubectl get ... -o json|yaml` output: files, directories (their
//! `.json`, `.yaml` and `.yml` files) or stdin; Lists or single objects, several JSON values
//! or YAML documents per file. Kinds the audit does not read are passed over; a document
//! that does not parse is reported and the rest still read.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use serde_json::Value;

use super::{Objects, PodLike, Unavailable, metadata};

/// Reads every path (`-` is stdin); fails only when a path cannot be read at all.
pub fn from_paths(paths: &[PathBuf]) -> std::io::Result<Objects> {
    let mut objects = Objects::default();
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files)?;
    }
    for path in files {
        let text = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text
        } else {
            std::fs::read_to_string(&path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?
        };
        objects.add_text(&text, &path.display().to_string());
    }
    Ok(objects)
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

impl Objects {
    /// Keeps only one namespace's objects (cluster-wide ones stay).
    pub fn retain_namespace(&mut self, ns: &str) {
        let keep = |v: &Value| metadata(v, "namespace").is_none_or(|n| n == ns);
        self.pods.retain(|p| p.namespace == ns);
        self.network_policies
            .retain(|p| p.metadata.namespace.as_deref().is_none_or(|n| n == ns));
        self.service_entries.retain(keep);
        self.destination_rules.retain(keep);
        self.cilium_policies.retain(keep);
    }

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

    fn unreadable(&mut self, resource: &str, reason: String) {
        tracing::warn!(resource, reason, "input skipped");
        self.unavailable.push(Unavailable {
            resource: resource.to_string(),
            reason,
        });
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
        let name = metadata(&object, "name").unwrap_or_default().to_string();
        let result = match (group.as_deref(), kind.as_str()) {
            (None, "Pod") => self.add_pod(object),
            (None, "ConfigMap") => {
                self.add_mesh_config(&object, &name);
                Ok(())
            }
            (Some("apps" | "batch"), _) => self.add_template(object, &kind, &name),
            (Some("networking.k8s.io"), "NetworkPolicy") => serde_json::from_value(object)
                .map(|p| self.network_policies.push(p))
                .map_err(|e| e.to_string()),
            (Some("networking.istio.io"), "ServiceEntry") => {
                self.service_entries.push(object);
                Ok(())
            }
            (Some("networking.istio.io"), "DestinationRule") => {
                self.destination_rules.push(object);
                Ok(())
            }
            (Some("cilium.io"), "CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy") => {
                self.cilium_policies.push(object);
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.unreadable(&format!("{origin}: {kind}/{name}"), e);
        }
    }

    fn add_pod(&mut self, object: Value) -> Result<(), String> {
        let pod: Pod = serde_json::from_value(object).map_err(|e| e.to_string())?;
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        // Finished pods make no more connections.
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return Ok(());
        }
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let (kind, name) = crate::enrich::workload(&pod);
        self.pods.push(PodLike {
            namespace,
            object: format!("{kind}/{name}"),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            spec: pod.spec.unwrap_or_default(),
            pods: 1,
        });
        Ok(())
    }

    /// A workload's pod template; ReplicaSets and Jobs a controller owns are covered by
    /// their owner's template.
    fn add_template(&mut self, object: Value, kind: &str, name: &str) -> Result<(), String> {
        let pointer = match kind {
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => "/spec/template",
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
        let namespace = metadata(&object, "namespace");
        let labels: BTreeMap<String, String> =
            template.metadata.and_then(|m| m.labels).unwrap_or_default();
        self.pods.push(PodLike {
            namespace: namespace.unwrap_or("default").to_string(),
            object: format!("{kind}/{name}"),
            labels,
            spec: template.spec.unwrap_or_default(),
            pods: 0,
        });
        Ok(())
    }

    /// Istio's mesh config: the `mesh` key of the `istio` (or `istio-<revision>`) ConfigMap in
    /// istio-system.
    fn add_mesh_config(&mut self, object: &Value, name: &str) {
        let namespace = metadata(object, "namespace");
        let is_mesh =
            namespace == Some("istio-system") && (name == "istio" || name.starts_with("istio-"));
        if let Some(mesh) = object.pointer("/data/mesh").and_then(Value::as_str)
            && is_mesh
            && self.mesh_config.is_none()
        {
            self.mesh_config = Some((name.to_string(), mesh.to_string()));
        }
    }
}
