//! Every allowance the cluster declares for destinations outside it, named as the evaluator
//! names the rule that allows a connection: so `policy check` can say which were never used.

use serde::Serialize;

use super::{Direction, admin, cilium};
use crate::cluster::{Cluster, qualified};

/// One declared allowance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Allowance {
    /// The rule, as answers name it.
    pub rule: String,
    /// What it allows: `ipBlock 203.0.113.0/24`, `toFQDNs *.stripe.com`, `host api.x.com`.
    pub allows: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

pub fn declared(cluster: &Cluster) -> Vec<Allowance> {
    let mut out = Vec::new();
    for policy in &cluster.network_policies {
        let egress = policy.spec.iter().flat_map(|s| s.egress.iter().flatten());
        for (i, rule) in egress.enumerate() {
            let blocks: Vec<String> = rule
                .to
                .iter()
                .flatten()
                .filter_map(|p| p.ip_block.as_ref())
                .map(|b| match b.except.as_deref() {
                    Some(except) if !except.is_empty() => {
                        format!("ipBlock {} except {}", b.cidr, except.join(", "))
                    }
                    _ => format!("ipBlock {}", b.cidr),
                })
                .collect();
            if !blocks.is_empty() {
                out.push(Allowance {
                    rule: format!("NetworkPolicy {} egress[{i}]", qualified(&policy.metadata)),
                    allows: blocks.join("; "),
                    namespace: policy.metadata.namespace.clone(),
                });
            }
        }
    }
    for policy in &cluster.cilium_policies {
        for (spec, rule) in policy.rules.iter().enumerate() {
            for (i, r) in rule.egress.iter().flatten().enumerate() {
                let mut allows: Vec<String> = Vec::new();
                for f in r.fqdns.iter().flatten() {
                    let pattern = f.match_name.as_ref().or(f.match_pattern.as_ref());
                    allows.extend(pattern.map(|p| format!("toFQDNs {p}")));
                }
                allows.extend(r.cidr.iter().flatten().map(|c| format!("toCIDR {c}")));
                let sets = r.cidr_set.iter().flatten();
                allows.extend(sets.filter_map(|s| Some(format!("toCIDRSet {}", s.cidr.as_ref()?))));
                let world = r
                    .entities
                    .iter()
                    .flatten()
                    .filter(|e| e.starts_with("world"));
                allows.extend(world.map(|e| format!("toEntities {e}")));
                if !allows.is_empty() {
                    out.push(Allowance {
                        rule: cilium::rule_name(policy, spec, "egress", i),
                        allows: allows.join("; "),
                        namespace: policy.namespace.clone(),
                    });
                }
            }
        }
    }
    for se in cluster
        .service_entries
        .iter()
        .filter(|s| !s.spec.internal())
    {
        for host in &se.spec.hosts {
            out.push(Allowance {
                rule: format!("ServiceEntry {}/{} host {host}", se.namespace, se.name),
                allows: format!("host {host}"),
                namespace: Some(se.namespace.clone()),
            });
        }
    }
    for policy in &cluster.admin_policies {
        for (i, rule) in policy.egress.iter().enumerate() {
            if rule.action != "Allow" {
                continue;
            }
            let mut allows: Vec<String> = Vec::new();
            for peer in &rule.to {
                allows.extend(
                    peer.networks
                        .iter()
                        .flatten()
                        .map(|n| format!("network {n}")),
                );
                allows.extend(
                    peer.domain_names
                        .iter()
                        .flatten()
                        .map(|d| format!("domain {d}")),
                );
            }
            if !allows.is_empty() {
                out.push(Allowance {
                    rule: admin::rule_name(policy, Direction::Egress, i, rule),
                    allows: allows.join("; "),
                    namespace: None,
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
