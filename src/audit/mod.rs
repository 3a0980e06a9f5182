//! `egress-scout audit`: the egress a cluster's configuration declares or allows, read from
//! its objects (live API or `kubectl get -o json|yaml` files) without watching traffic.
//! NetworkPolicies (and which pods no egress policy selects), Istio ServiceEntries,
//! DestinationRules and the mesh's outbound policy, Cilium policies, endpoints in pod
//! configuration, images from external registries and, live, URLs in recent pod logs.
//! External is decided by the pipeline's own classifier.

mod cilium;
pub mod endpoints;
mod istio;
pub mod logs;
mod netpol;
mod pods;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::cluster::Cluster;
pub use crate::cluster::Unavailable;
use crate::egress::Judge;
use endpoints::{Host, Named};
pub use logs::ContainerLog;

/// The version of the JSON document's shape; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Pods no egress policy selects: they may connect anywhere.
    UnrestrictedPod,
    /// A rule allowing every destination (`egress: [{}]`, 0.0.0.0/0, toEntities world).
    EgressAllowAll,
    /// An allowed CIDR outside the cluster (NetworkPolicy ipBlock, Cilium toCIDR/toCIDRSet).
    ExternalCidr,
    /// A Cilium toFQDNs name or pattern.
    FqdnRule,
    /// An Istio ServiceEntry host outside the mesh.
    ServiceEntry,
    /// An Istio DestinationRule for an external host (TLS origination).
    DestinationRule,
    /// The mesh's outboundTrafficPolicy (ALLOW_ANY or REGISTRY_ONLY).
    MeshOutboundPolicy,
    /// An external endpoint in a pod's env, args or command.
    ConfigEndpoint,
    /// A value a pod takes from a Secret or ConfigMap: listed, not resolved.
    ConfigReference,
    /// An image pulled from a registry outside the internal list.
    ExternalImage,
    /// An external URL or host in a pod's recent log lines.
    LogEndpoint,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UnrestrictedPod => "unrestricted_pod",
            Kind::EgressAllowAll => "egress_allow_all",
            Kind::ExternalCidr => "external_cidr",
            Kind::FqdnRule => "fqdn_rule",
            Kind::ServiceEntry => "service_entry",
            Kind::DestinationRule => "destination_rule",
            Kind::MeshOutboundPolicy => "mesh_outbound_policy",
            Kind::ConfigEndpoint => "config_endpoint",
            Kind::ConfigReference => "config_reference",
            Kind::ExternalImage => "external_image",
            Kind::LogEndpoint => "log_endpoint",
        }
    }
}

/// Highest first, so sorted findings lead with what matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

/// A port as declared: a number, a name (`https`) or a range (`8000-9000`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum Port {
    Number(u16),
    Text(String),
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Port::Number(n) => write!(f, "{n}"),
            Port::Text(t) => f.write_str(t),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub kind: Kind,
    /// None for cluster-wide objects.
    pub namespace: Option<String>,
    /// `Kind/name` of the object that declares it (a pod's workload for pod findings).
    pub object: String,
    pub destination: Option<String>,
    /// None: every port.
    pub port: Option<Port>,
    pub detail: String,
}

/// What decides "external": the pipeline's classifier, and the registries images may come
/// from without a finding.
pub struct Rules {
    pub judge: Judge,
    pub internal_registries: Vec<String>,
    /// The cluster's namespaces: `service.namespace` and `service.namespace.svc` are Service
    /// names the search path completes, not hosts outside.
    pub namespaces: BTreeSet<String>,
}

impl Rules {
    /// The destination's display form when it is outside the cluster.
    fn external(&self, host: &Host) -> Option<String> {
        match host {
            Host::Ip(ip) => (!self.judge.classifier.ip_is_internal(*ip)).then(|| ip.to_string()),
            Host::Name(name) if self.is_service_short_name(name) => None,
            Host::Name(name) => self.judge.external_name(name),
        }
    }

    fn is_service_short_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        let labels: Vec<&str> = name.split('.').collect();
        match labels.as_slice() {
            [_, ns] | [_, ns, "svc"] => self.namespaces.contains(&ns.to_ascii_lowercase()),
            _ => false,
        }
    }

    /// A host pattern when it names something outside the cluster. Wildcards
    /// (`*.example.com`, Cilium's `api-*.example.com`) are judged as a name they match.
    fn external_pattern(&self, pattern: &str) -> Option<String> {
        let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = pattern.parse() {
            return self.external(&Host::Ip(ip));
        }
        let probe = pattern.replace('*', "x");
        self.judge.external_name(&probe).map(|_| pattern)
    }

    /// Findings for the external destinations among `found`.
    fn endpoint_findings(
        &self,
        found: Vec<Named>,
        kind: Kind,
        namespace: &str,
        object: &str,
        place: &str,
        out: &mut Vec<Finding>,
    ) {
        for named in found {
            let Some(destination) = self.external(&named.host) else {
                continue;
            };
            let detail = match &named.scheme {
                Some(scheme) => format!("{place} ({scheme})"),
                None => place.to_string(),
            };
            out.push(Finding {
                severity: Severity::Medium,
                kind,
                namespace: Some(namespace.to_string()),
                object: object.to_string(),
                destination: Some(destination),
                port: named.port.map(Port::Number),
                detail,
            });
        }
    }
}

/// Something one egress rule allows, before it is multiplied by the rule's ports.
struct Allowed {
    severity: Severity,
    kind: Kind,
    destination: Option<String>,
    detail: String,
}

impl Allowed {
    /// An allowed CIDR (`what` names the field): every address when its prefix is 0, a
    /// finding when it reaches outside the internal networks, nothing otherwise.
    fn cidr(rules: &Rules, net: ipnet::IpNet, excepts: &[&str], what: &str) -> Option<Allowed> {
        let except = if excepts.is_empty() {
            String::new()
        } else {
            format!(" except {}", excepts.join(", "))
        };
        if net.prefix_len() == 0 {
            Some(Allowed {
                severity: Severity::High,
                kind: Kind::EgressAllowAll,
                destination: Some(net.to_string()),
                detail: format!("{what} {net}{except}"),
            })
        } else if rules.judge.classifier.net_is_internal(&net) {
            None
        } else {
            Some(Allowed {
                severity: Severity::Medium,
                kind: Kind::ExternalCidr,
                destination: Some(net.trunc().to_string()),
                detail: format!("{what}{except}"),
            })
        }
    }
}

/// A rule's ports with their protocol; a single `(None, None)` when it names none.
type RulePorts = Vec<(Option<Port>, Option<String>)>;

/// One finding per allowed destination and port of a policy rule.
fn rule_findings(
    allowed: Vec<Allowed>,
    ports: &RulePorts,
    namespace: &Option<String>,
    object: &str,
    out: &mut Vec<Finding>,
) {
    for a in allowed {
        for (port, protocol) in ports {
            out.push(Finding {
                severity: a.severity,
                kind: a.kind,
                namespace: namespace.clone(),
                object: object.to_string(),
                destination: a.destination.clone(),
                port: port.clone(),
                detail: match protocol {
                    Some(p) => format!("{}; {p}", a.detail),
                    None => a.detail.clone(),
                },
            });
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Workloads read (a pod's owner, a pod template's object), and their pods.
    pub workloads: usize,
    pub pods: usize,
    /// Workloads and pods no egress policy selects; workloads per namespace.
    pub unrestricted_workloads: usize,
    pub unrestricted_pods: usize,
    pub unrestricted_by_namespace: BTreeMap<String, usize>,
    pub findings_by_kind: BTreeMap<&'static str, usize>,
    pub findings_by_severity: BTreeMap<&'static str, usize>,
    /// ALLOW_ANY or REGISTRY_ONLY when the mesh config was read.
    pub mesh_outbound_policy: Option<String>,
    pub unavailable: Vec<Unavailable>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

/// Audits the cluster (and recent container logs): every finding once, highest severity
/// first.
pub fn audit(cluster: &Cluster, logs: &[ContainerLog], rules: &Rules) -> Report {
    let mut findings = Vec::new();
    let mut summary = Summary {
        unavailable: cluster.unavailable.clone(),
        ..Summary::default()
    };
    if cluster.policies_unreadable {
        summary.unavailable.push(Unavailable {
            resource: "unrestricted pods".into(),
            reason: "not judged: some egress policies could not be read".into(),
        });
    } else {
        netpol::unrestricted(cluster, &mut findings, &mut summary);
    }
    for policy in &cluster.network_policies {
        netpol::rules(policy, rules, &mut findings);
    }
    for policy in &cluster.cilium_policies {
        cilium::rules(policy, rules, &mut findings);
    }
    istio::service_entries(cluster, rules, &mut findings);
    if let Some(mesh) = &cluster.mesh_config {
        summary.mesh_outbound_policy = istio::mesh_policy(mesh, &mut findings);
    }
    for pod in cluster.pods.iter().filter(|p| !p.finished) {
        pods::config(pod, rules, &mut findings);
    }
    for log in logs {
        let place = format!("log of container {}", log.container);
        let found = endpoints::extract(&log.text, false);
        rules.endpoint_findings(
            found,
            Kind::LogEndpoint,
            &log.namespace,
            &log.object,
            &place,
            &mut findings,
        );
    }
    findings.sort();
    findings.dedup();
    for f in &findings {
        *summary.findings_by_kind.entry(f.kind.as_str()).or_default() += 1;
        *summary
            .findings_by_severity
            .entry(f.severity.as_str())
            .or_default() += 1;
    }
    summary.unavailable.sort();
    Report {
        schema_version: SCHEMA_VERSION,
        findings,
        summary,
    }
}
