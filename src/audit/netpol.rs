//! NetworkPolicies: which pods no egress policy selects (NetworkPolicy or Cilium), and what
//! egress rules allow outside the cluster (ipBlocks beyond the internal networks, allow-all).

use std::collections::BTreeMap;

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::selector::matches;
use super::{
    Allowed, Finding, Kind, Objects, Port, RulePorts, Rules, Severity, Summary, cilium,
    rule_findings,
};

/// Whether the policy restricts egress: `policyTypes` names Egress, or (without
/// `policyTypes`) it has egress rules.
fn restricts_egress(policy: &NetworkPolicy) -> bool {
    let Some(spec) = &policy.spec else {
        return false;
    };
    match &spec.policy_types {
        Some(types) => types.iter().any(|t| t == "Egress"),
        None => spec.egress.is_some(),
    }
}

/// Workloads whose pods no egress policy selects: the most important finding, counted per
/// namespace. A workload is unrestricted when any of its pods (or its template) is.
pub(super) fn unrestricted(objects: &Objects, out: &mut Vec<Finding>, summary: &mut Summary) {
    // Each egress policy's namespace and pod selector, taken once for all pods.
    let egress_policies: Vec<(Option<&str>, Value)> = objects
        .network_policies
        .iter()
        .filter(|p| restricts_egress(p))
        .map(|p| {
            let selector = p.spec.as_ref().map(|s| &s.pod_selector);
            let selector = selector.and_then(|s| serde_json::to_value(s).ok());
            (
                p.metadata.namespace.as_deref(),
                selector.unwrap_or(Value::Null),
            )
        })
        .collect();
    // (namespace, object) -> (pods, unrestricted pods, unrestricted at all, host network)
    let mut workloads: BTreeMap<(&str, &str), (usize, usize, bool, bool)> = BTreeMap::new();
    for pod in &objects.pods {
        let host_network = pod.spec.host_network == Some(true);
        let selected = || {
            egress_policies.iter().any(|(ns, selector)| {
                *ns == Some(pod.namespace.as_str()) && matches(selector, &pod.labels, false)
            })
        };
        let cilium_selected = || {
            let labels = cilium::endpoint_labels(pod);
            let mut policies = objects.cilium_policies.iter();
            policies.any(|p| cilium::restricts(p, &pod.namespace, &labels))
        };
        let restricted = !host_network && (selected() || cilium_selected());
        let w = workloads
            .entry((pod.namespace.as_str(), pod.object.as_str()))
            .or_default();
        w.0 += pod.pods;
        if !restricted {
            w.1 += pod.pods;
            w.2 = true;
            w.3 |= host_network;
        }
    }
    summary.workloads = workloads.len();
    summary.pods = workloads.values().map(|w| w.0).sum();
    for ((namespace, object), (_, pods, unrestricted, host_network)) in workloads {
        if !unrestricted {
            continue;
        }
        summary.unrestricted_workloads += 1;
        summary.unrestricted_pods += pods;
        *summary
            .unrestricted_by_namespace
            .entry(namespace.to_string())
            .or_default() += 1;
        let why = if host_network {
            "hostNetwork: NetworkPolicies do not apply"
        } else {
            "no egress policy selects it: any destination is allowed"
        };
        let detail = match pods {
            0 => format!("pod template; {why}"),
            1 => format!("1 pod; {why}"),
            n => format!("{n} pods; {why}"),
        };
        out.push(Finding {
            severity: Severity::High,
            kind: Kind::UnrestrictedPod,
            namespace: Some(namespace.to_string()),
            object: object.to_string(),
            destination: None,
            port: None,
            detail,
        });
    }
}

/// What one policy's egress rules allow outside the cluster.
pub(super) fn rules(policy: &NetworkPolicy, rules: &Rules, out: &mut Vec<Finding>) {
    if !restricts_egress(policy) {
        return;
    }
    let namespace = policy.metadata.namespace.clone();
    let object = format!(
        "NetworkPolicy/{}",
        policy.metadata.name.as_deref().unwrap_or_default()
    );
    let egress = policy.spec.as_ref().and_then(|s| s.egress.as_ref());
    for (i, rule) in egress.into_iter().flatten().enumerate() {
        let ports = ports(rule.ports.as_deref().unwrap_or_default());
        let mut allowed = Vec::new();
        let peers = rule.to.as_deref().unwrap_or_default();
        if peers.is_empty() {
            allowed.push(Allowed {
                severity: Severity::High,
                kind: Kind::EgressAllowAll,
                destination: None,
                detail: format!("egress rule {} has no `to`: every destination", i + 1),
            });
        }
        for block in peers.iter().filter_map(|p| p.ip_block.as_ref()) {
            let excepts: Vec<&str> = block.except.iter().flatten().map(String::as_str).collect();
            if let Ok(net) = block.cidr.parse::<IpNet>() {
                allowed.extend(Allowed::cidr(rules, net, &excepts, "ipBlock"));
            }
        }
        rule_findings(allowed, &ports, &namespace, &object, out);
    }
}

/// A rule's ports with their protocol (TCP when omitted); one `None` port for none.
fn ports(ports: &[NetworkPolicyPort]) -> RulePorts {
    if ports.is_empty() {
        return vec![(None, None)];
    }
    ports
        .iter()
        .map(|p| {
            let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            let port = match (&p.port, p.end_port) {
                (Some(IntOrString::Int(n)), Some(end)) => Some(Port::Text(format!("{n}-{end}"))),
                (Some(IntOrString::Int(n)), None) => u16::try_from(*n).ok().map(Port::Number),
                (Some(IntOrString::String(name)), _) => Some(Port::Text(name.clone())),
                (None, _) => None,
            };
            (port, Some(protocol))
        })
        .collect()
}
