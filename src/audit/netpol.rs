//! NetworkPolicies: which pods no egress policy selects (NetworkPolicy or Cilium), and what
//! egress rules allow outside the cluster (ipBlocks beyond the internal networks, allow-all).

use std::collections::BTreeMap;

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Allowed, Finding, Kind, Port, RulePorts, Rules, Severity, Summary, rule_findings};
use crate::cluster::Cluster;
use crate::policy::Evaluator;

/// Workloads whose pods no egress policy isolates (NetworkPolicy or Cilium, as the policy
/// evaluator sees them): the most important finding, counted per
/// namespace. A workload is unrestricted when any of its pods (or its template) is.
pub(super) fn unrestricted(cluster: &Cluster, out: &mut Vec<Finding>, summary: &mut Summary) {
    let evaluator = Evaluator::new(cluster);
    // (namespace, object) -> (pods, unrestricted pods, unrestricted at all, host network)
    let mut workloads: BTreeMap<(&str, String), (usize, usize, bool, bool)> = BTreeMap::new();
    for pod in cluster.pods.iter().filter(|p| !p.finished) {
        let restricted = !evaluator.egress_isolation(pod).is_empty();
        let pods = usize::from(!pod.template);
        let w = workloads
            .entry((pod.namespace.as_str(), pod.workload.to_string()))
            .or_default();
        w.0 += pods;
        if !restricted {
            w.1 += pods;
            w.2 = true;
            w.3 |= pod.host_network;
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
            object,
            destination: None,
            port: None,
            detail,
        });
    }
}

/// What one policy's egress rules allow outside the cluster.
pub(super) fn rules(policy: &NetworkPolicy, rules: &Rules, out: &mut Vec<Finding>) {
    if !crate::policy::restricts_egress(policy) {
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
