//! Cilium policies (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, cilium.io/v2):
//! which pods their egress sections restrict, and what they allow outside the cluster:
//! toFQDNs names and patterns, toCIDR/toCIDRSet beyond the internal networks, toEntities
//! world or all.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde_json::Value;

use super::selector::matches;
use super::{
    Allowed, Finding, Kind, PodLike, Port, RulePorts, Rules, Severity, metadata, rule_findings,
    str_of,
};

/// The policy's rule specs: `spec`, and each of `specs`.
fn specs(policy: &Value) -> impl Iterator<Item = &Value> {
    policy.get("spec").into_iter().chain(
        policy
            .get("specs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    )
}

fn clusterwide(policy: &Value) -> bool {
    str_of(policy, "kind") == Some("CiliumClusterwideNetworkPolicy")
}

/// A pod's labels as Cilium selects on them: its own and its namespace's.
pub(super) fn endpoint_labels(pod: &PodLike) -> BTreeMap<String, String> {
    let mut labels = pod.labels.clone();
    labels.insert("io.kubernetes.pod.namespace".into(), pod.namespace.clone());
    labels
}

/// Whether a spec with egress rules selects a pod of `namespace` with these
/// [`endpoint_labels`] (Cilium denies the rest then).
pub(super) fn restricts(
    policy: &Value,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    if !clusterwide(policy) && metadata(policy, "namespace") != Some(namespace) {
        return false;
    }
    specs(policy).any(|spec| {
        (spec.get("egress").is_some() || spec.get("egressDeny").is_some())
            && spec
                .get("endpointSelector")
                .is_some_and(|s| matches(s, labels, true))
    })
}

/// What the policy's egress rules allow outside the cluster.
pub(super) fn rules(policy: &Value, rules: &Rules, out: &mut Vec<Finding>) {
    let kind = if clusterwide(policy) {
        "CiliumClusterwideNetworkPolicy"
    } else {
        "CiliumNetworkPolicy"
    };
    let name = metadata(policy, "name");
    let object = format!("{kind}/{}", name.unwrap_or_default());
    let namespace = metadata(policy, "namespace").map(str::to_string);
    let rule_list = specs(policy)
        .filter_map(|s| s.get("egress").and_then(Value::as_array))
        .flatten();
    for rule in rule_list {
        let mut allowed = Vec::new();
        let list = |key: &str| {
            rule.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        };
        for fqdn in list("toFQDNs") {
            let (how, pattern) = match (str_of(fqdn, "matchName"), str_of(fqdn, "matchPattern")) {
                (Some(n), _) => ("matchName", n.trim()),
                (None, Some(p)) => ("matchPattern", p.trim()),
                _ => continue,
            };
            if pattern == "*" {
                allowed.push(Allowed {
                    severity: Severity::High,
                    kind: Kind::EgressAllowAll,
                    destination: Some("*".into()),
                    detail: "toFQDNs matchPattern \"*\": every name".into(),
                });
            } else if let Some(d) = rules.external_pattern(pattern) {
                allowed.push(Allowed {
                    severity: Severity::Medium,
                    kind: Kind::FqdnRule,
                    destination: Some(d),
                    detail: format!("toFQDNs {how}"),
                });
            }
        }
        let cidrs = list("toCIDR")
            .filter_map(Value::as_str)
            .map(|c| (c, Vec::new()))
            .chain(list("toCIDRSet").filter_map(|set| {
                let excepts = set.get("except").and_then(Value::as_array);
                let excepts = excepts.into_iter().flatten().filter_map(Value::as_str);
                Some((str_of(set, "cidr")?, excepts.collect::<Vec<_>>()))
            }));
        for (cidr, excepts) in cidrs {
            // toCIDR also takes a bare address.
            let net = cidr
                .parse::<IpNet>()
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from));
            if let Ok(net) = net {
                allowed.extend(Allowed::cidr(rules, net, &excepts, "toCIDR"));
            }
        }
        for entity in list("toEntities").filter_map(Value::as_str) {
            if matches!(entity, "world" | "world-ipv4" | "world-ipv6" | "all") {
                allowed.push(Allowed {
                    severity: Severity::High,
                    kind: Kind::EgressAllowAll,
                    destination: Some(entity.into()),
                    detail: format!("toEntities {entity}: everything outside the cluster"),
                });
            }
        }
        rule_findings(allowed, &ports(rule), &namespace, &object, out);
    }
}

/// A rule's `toPorts` (ports are strings in Cilium); one `None` port when it has none.
fn ports(rule: &Value) -> RulePorts {
    let to_ports = rule.get("toPorts").and_then(Value::as_array);
    let all: Vec<_> = to_ports
        .into_iter()
        .flatten()
        .filter_map(|tp| tp.get("ports").and_then(Value::as_array))
        .flatten()
        .map(|p| {
            let protocol = str_of(p, "protocol").unwrap_or("ANY").to_string();
            let port = match p.get("port") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            let end = p.get("endPort").and_then(Value::as_u64);
            let port = port
                .filter(|p| p != "0")
                .map(|p| match (p.parse::<u16>(), end) {
                    (Ok(n), Some(end)) => Port::Text(format!("{n}-{end}")),
                    (Ok(n), None) => Port::Number(n),
                    (Err(_), _) => Port::Text(p),
                });
            (port, Some(protocol))
        })
        .collect();
    if all.is_empty() {
        vec![(None, None)]
    } else {
        all
    }
}
