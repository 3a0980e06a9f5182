//! Istio (networking.istio.io, any served version): ServiceEntries, DestinationRules,
//! Sidecars and the mesh config's outbound policy.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// An Istio object: where it lives and its spec.
#[derive(Debug, Clone)]
pub struct IstioObject<S> {
    pub namespace: String,
    pub name: String,
    pub spec: S,
}

pub type ServiceEntry = IstioObject<EntrySpec>;
pub type DestinationRule = IstioObject<RuleSpec>;
pub type Sidecar = IstioObject<SidecarSpec>;

#[derive(Debug, Deserialize)]
struct Object<S> {
    #[serde(default)]
    metadata: ObjectMeta,
    spec: Option<S>,
}

pub fn parse<S: DeserializeOwned + Default>(
    object: serde_json::Value,
) -> Result<IstioObject<S>, String> {
    let o: Object<S> = serde_json::from_value(object).map_err(|e| e.to_string())?;
    Ok(IstioObject {
        namespace: o.metadata.namespace.unwrap_or_else(|| "default".into()),
        name: o.metadata.name.unwrap_or_default(),
        spec: o.spec.unwrap_or_default(),
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EntrySpec {
    pub hosts: Vec<String>,
    pub addresses: Vec<String>,
    pub ports: Vec<EntryPort>,
    /// MESH_EXTERNAL or MESH_INTERNAL; omitted reads as MESH_EXTERNAL.
    pub location: Option<String>,
    pub resolution: Option<String>,
    pub endpoints: Vec<EntryEndpoint>,
    /// Omitted: every namespace; `.`: its own; `*`: all; else namespace names.
    pub export_to: Vec<String>,
}

impl EntrySpec {
    pub fn internal(&self) -> bool {
        self.location.as_deref() == Some("MESH_INTERNAL")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EntryPort {
    pub number: u32,
    /// HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP, TLS.
    pub protocol: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EntryEndpoint {
    pub address: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RuleSpec {
    pub host: Option<String>,
    pub traffic_policy: Option<TrafficPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrafficPolicy {
    pub tls: Option<Tls>,
    pub port_level_settings: Vec<PortSettings>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Tls {
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PortSettings {
    pub port: Option<PortSelector>,
    pub tls: Option<Tls>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PortSelector {
    pub number: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SidecarSpec {
    pub workload_selector: Option<WorkloadSelector>,
    pub egress: Vec<SidecarEgress>,
    pub outbound_traffic_policy: Option<OutboundPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WorkloadSelector {
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SidecarEgress {
    /// `namespace/dnsName`.
    pub hosts: Vec<String>,
    pub port: Option<SidecarPort>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SidecarPort {
    pub number: Option<u32>,
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OutboundPolicy {
    /// ALLOW_ANY or REGISTRY_ONLY.
    pub mode: Option<String>,
}

/// The mesh config's parts that decide egress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshConfig {
    /// The ConfigMap it came from.
    pub configmap: String,
    /// ALLOW_ANY (Istio's default when unset) or REGISTRY_ONLY; None when the config does
    /// not parse.
    pub outbound_mode: Option<String>,
    /// Where mesh-wide Sidecars live (`istio-system` unless configured).
    pub root_namespace: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct MeshText {
    outbound_traffic_policy: OutboundPolicy,
    root_namespace: Option<String>,
}

impl MeshConfig {
    /// From the `mesh` key's YAML.
    pub fn parse(configmap: &str, mesh: &str) -> MeshConfig {
        let parsed: Option<MeshText> = if mesh.trim().is_empty() {
            Some(MeshText::default())
        } else {
            serde_saphyr::from_str(mesh).ok()
        };
        MeshConfig {
            configmap: configmap.to_string(),
            outbound_mode: parsed.as_ref().map(|m| {
                let mode = m.outbound_traffic_policy.mode.as_deref();
                mode.unwrap_or("ALLOW_ANY").to_string()
            }),
            root_namespace: parsed
                .and_then(|m| m.root_namespace)
                .unwrap_or_else(|| "istio-system".into()),
        }
    }

    pub fn registry_only(&self) -> bool {
        self.outbound_mode.as_deref() == Some("REGISTRY_ONLY")
    }
}
