//! CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2): the fields the
//! audit and the evaluator read. Unknown fields are ignored.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Deserializer};

/// One Cilium policy object: its `spec` and `specs` as one list of rules.
#[derive(Debug, Clone)]
pub struct CiliumPolicy {
    /// None for a clusterwide policy.
    pub namespace: Option<String>,
    pub name: String,
    pub rules: Vec<CiliumRule>,
}

impl CiliumPolicy {
    /// `CiliumNetworkPolicy ns/name` or `CiliumClusterwideNetworkPolicy name`.
    pub fn title(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("CiliumNetworkPolicy {ns}/{}", self.name),
            None => format!("CiliumClusterwideNetworkPolicy {}", self.name),
        }
    }

    /// `Kind/name`, as audit findings name objects.
    pub fn object(&self) -> String {
        match &self.namespace {
            Some(_) => format!("CiliumNetworkPolicy/{}", self.name),
            None => format!("CiliumClusterwideNetworkPolicy/{}", self.name),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Object {
    #[serde(default)]
    metadata: ObjectMeta,
    spec: Option<CiliumRule>,
    #[serde(default)]
    specs: Vec<CiliumRule>,
}

/// Reads a policy of `kind` from its JSON.
pub fn parse(object: serde_json::Value, clusterwide: bool) -> Result<CiliumPolicy, String> {
    let o: Object = serde_json::from_value(object).map_err(|e| e.to_string())?;
    Ok(CiliumPolicy {
        namespace: o.metadata.namespace.filter(|_| !clusterwide),
        name: o.metadata.name.unwrap_or_default(),
        rules: o.spec.into_iter().chain(o.specs).collect(),
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CiliumRule {
    pub endpoint_selector: Option<LabelSelector>,
    /// Host policies select nodes, not pods.
    pub node_selector: Option<LabelSelector>,
    pub egress: Option<Vec<PeerRule>>,
    pub egress_deny: Option<Vec<PeerRule>>,
    pub ingress: Option<Vec<PeerRule>>,
    pub ingress_deny: Option<Vec<PeerRule>>,
    pub enable_default_deny: DefaultDeny,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DefaultDeny {
    pub egress: Option<bool>,
    pub ingress: Option<bool>,
}

/// An egress (`to*`) or ingress (`from*`) rule: its L3 peers, ANDed with its ports.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PeerRule {
    #[serde(rename = "toEndpoints", alias = "fromEndpoints")]
    pub endpoints: Option<Vec<LabelSelector>>,
    #[serde(rename = "toCIDR", alias = "fromCIDR")]
    pub cidr: Option<Vec<String>>,
    #[serde(rename = "toCIDRSet", alias = "fromCIDRSet")]
    pub cidr_set: Option<Vec<CidrRule>>,
    #[serde(rename = "toEntities", alias = "fromEntities")]
    pub entities: Option<Vec<String>>,
    #[serde(rename = "toFQDNs")]
    pub fqdns: Option<Vec<FqdnSelector>>,
    #[serde(rename = "toServices")]
    pub services: Option<Vec<serde_json::Value>>,
    #[serde(rename = "toPorts")]
    pub to_ports: Option<Vec<PortRule>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CidrRule {
    pub cidr: Option<String>,
    pub except: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FqdnSelector {
    pub match_name: Option<String>,
    pub match_pattern: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PortRule {
    pub ports: Vec<PortProtocol>,
    pub rules: Option<L7Rules>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct L7Rules {
    /// The DNS proxy's rules: what names the endpoint may look up (and so learn for toFQDNs).
    pub dns: Option<Vec<FqdnSelector>>,
    pub http: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PortProtocol {
    /// A number, a named port, or `0`/absent for every port (a string in the CRD).
    #[serde(deserialize_with = "text_or_number")]
    pub port: Option<String>,
    pub end_port: Option<i32>,
    /// TCP, UDP, SCTP or ANY (the default).
    pub protocol: Option<String>,
}

fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}
