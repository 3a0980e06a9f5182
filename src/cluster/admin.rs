//! AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1,
//! network-policy-api v0.1.8, experimental channel for `domainNames`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Deserialize;

/// An ANP, or the BANP (`baseline`, no priority).
#[derive(Debug, Clone)]
pub struct AdminPolicy {
    pub name: String,
    pub baseline: bool,
    pub priority: i32,
    pub subject: Subject,
    pub egress: Vec<AdminRule>,
    pub ingress: Vec<AdminRule>,
}

impl AdminPolicy {
    /// `AdminNetworkPolicy name` or `BaselineAdminNetworkPolicy name`.
    pub fn title(&self) -> String {
        let kind = if self.baseline {
            "BaselineAdminNetworkPolicy"
        } else {
            "AdminNetworkPolicy"
        };
        format!("{kind} {}", self.name)
    }
}

#[derive(Debug, Deserialize)]
struct Object {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Spec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Spec {
    priority: i32,
    subject: Subject,
    egress: Vec<AdminRule>,
    ingress: Vec<AdminRule>,
}

pub fn parse(object: serde_json::Value, baseline: bool) -> Result<AdminPolicy, String> {
    let o: Object = serde_json::from_value(object).map_err(|e| e.to_string())?;
    Ok(AdminPolicy {
        name: o.metadata.name.unwrap_or_default(),
        baseline,
        priority: o.spec.priority,
        subject: o.spec.subject,
        egress: o.spec.egress,
        ingress: o.spec.ingress,
    })
}

/// Whom the policy applies to: pods of the selected namespaces, or selected pods.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Subject {
    pub namespaces: Option<LabelSelector>,
    pub pods: Option<PodPeer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodPeer {
    pub namespace_selector: LabelSelector,
    pub pod_selector: LabelSelector,
}

/// One rule: its action for traffic to (from) one of its peers on one of its ports.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AdminRule {
    pub name: String,
    /// Allow, Deny or Pass (ANP); Allow or Deny (BANP).
    pub action: String,
    #[serde(alias = "from")]
    pub to: Vec<AdminPeer>,
    pub ports: Option<Vec<AdminPort>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AdminPeer {
    pub namespaces: Option<LabelSelector>,
    pub pods: Option<PodPeer>,
    pub nodes: Option<LabelSelector>,
    pub networks: Option<Vec<String>>,
    pub domain_names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AdminPort {
    pub port_number: Option<PortNumber>,
    pub named_port: Option<String>,
    pub port_range: Option<PortRange>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PortNumber {
    pub protocol: Option<String>,
    pub port: i32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PortRange {
    pub protocol: Option<String>,
    pub start: i32,
    pub end: i32,
}
