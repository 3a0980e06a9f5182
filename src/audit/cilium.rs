//! Cilium policies (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, cilium.io/v2): what
//! their egress rules allow outside the cluster: toFQDNs names and patterns, toCIDR/toCIDRSet
//! beyond the internal networks, toEntities world or all.

use ipnet::IpNet;

use super::{Allowed, Finding, Kind, Port, RulePorts, Rules, Severity, rule_findings};
use crate::cluster::CiliumPolicy;
use crate::cluster::cilium::PeerRule;

/// What the policy's egress rules allow outside the cluster.
pub(super) fn rules(policy: &CiliumPolicy, rules: &Rules, out: &mut Vec<Finding>) {
    let object = policy.object();
    let rule_list = policy.rules.iter().flat_map(|r| r.egress.iter().flatten());
    for rule in rule_list {
        let mut allowed = Vec::new();
        for fqdn in rule.fqdns.iter().flatten() {
            let (how, pattern) = match (&fqdn.match_name, &fqdn.match_pattern) {
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
        let cidrs = rule
            .cidr
            .iter()
            .flatten()
            .map(|c| (c.as_str(), Vec::new()))
            .chain(rule.cidr_set.iter().flatten().filter_map(|set| {
                let excepts = set.except.iter().map(String::as_str).collect();
                Some((set.cidr.as_deref()?, excepts))
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
        for entity in rule.entities.iter().flatten() {
            if matches!(
                entity.as_str(),
                "world" | "world-ipv4" | "world-ipv6" | "all"
            ) {
                allowed.push(Allowed {
                    severity: Severity::High,
                    kind: Kind::EgressAllowAll,
                    destination: Some(entity.clone()),
                    detail: format!("toEntities {entity}: everything outside the cluster"),
                });
            }
        }
        rule_findings(allowed, &ports(rule), &policy.namespace, &object, out);
    }
}

/// A rule's `toPorts` (ports are strings in Cilium); one `None` port when it has none.
fn ports(rule: &PeerRule) -> RulePorts {
    let all: Vec<_> = rule
        .to_ports
        .iter()
        .flatten()
        .flat_map(|tp| &tp.ports)
        .map(|p| {
            let protocol = p.protocol.clone().unwrap_or_else(|| "ANY".into());
            let port = p.port.clone().filter(|p| p != "0").map(|text| {
                match (text.parse::<u16>(), p.end_port) {
                    (Ok(n), Some(end)) => Port::Text(format!("{n}-{end}")),
                    (Ok(n), None) => Port::Number(n),
                    (Err(_), _) => Port::Text(text),
                }
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
