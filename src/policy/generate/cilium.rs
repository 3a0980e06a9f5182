//! CiliumNetworkPolicy per workload: the DNS rule through the proxy to the real resolver,
//! in-cluster as `toEntities: [cluster]`, names as `toFQDNs` `matchName` (patterns only when
//! asked), IP-only destinations as `toCIDR` /32, each with its observed ports.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{Document, InCluster, Kind, Options, Resolvers, Rules, Use, WorkloadEgress};

/// Observed names under one pattern (or one name) on one set of ports: one rule.
#[derive(Default)]
struct Named {
    names: BTreeSet<String>,
    comments: Vec<String>,
    ports: Option<Value>,
}

fn to_ports(u: &Use) -> Option<Value> {
    let ports = u.port_list()?.into_iter();
    let ports: Vec<Value> = ports
        .map(|(port, protocol)| json!({"port": port.to_string(), "protocol": protocol}))
        .collect();
    Some(json!([{"ports": ports}]))
}

fn dns_rules(resolvers: &Resolvers) -> Vec<Value> {
    let proxy = json!([{"ports": [{"port": "53", "protocol": "ANY"}],
                        "rules": {"dns": [{"matchPattern": "*"}]}}]);
    let mut rules = Vec::new();
    if let Some((ns, labels)) = &resolvers.pods {
        let mut select = serde_json::Map::new();
        select.insert("k8s:io.kubernetes.pod.namespace".into(), json!(ns));
        for (k, v) in labels {
            select.insert(format!("k8s:{k}"), json!(v));
        }
        rules.push(json!({"toEndpoints": [{"matchLabels": select}], "toPorts": proxy}));
    }
    if let Some(ip) = &resolvers.node_local {
        rules.push(json!({"toCIDR": [format!("{ip}/32")], "toPorts": proxy}));
    }
    // No resolver known: DNS through the proxy on port 53 to any peer, not a guessed label.
    if rules.is_empty() {
        rules.push(json!({"toPorts": proxy}));
    }
    rules
}

/// `*.parent` (or `**.domain` with Cilium 1.19) for names that share it, when asked.
fn pattern(name: &str, opts: &Options) -> String {
    if opts.cilium_double_star
        && let Some(domain) = psl::domain_str(name)
        && domain != name
    {
        return format!("**.{domain}");
    }
    match name.split_once('.') {
        Some((_, parent)) if parent.contains('.') => format!("*.{parent}"),
        _ => name.to_string(),
    }
}

pub(super) fn documents(
    workloads: &[WorkloadEgress],
    resolvers: &Resolvers,
    opts: &Options,
) -> (Vec<Document>, Vec<String>) {
    let mut docs = Vec::new();
    for w in workloads {
        let mut rules = Rules::default();
        let why = "DNS through Cilium's proxy to the cluster's resolvers: what toFQDNs needs";
        for (i, rule) in dns_rules(resolvers).into_iter().enumerate() {
            let comment = if i == 0 {
                vec![why.to_string()]
            } else {
                Vec::new()
            };
            rules.push(rule, comment);
        }
        if opts.in_cluster == InCluster::Allow {
            let why = "in-cluster (--in-cluster allow)";
            rules.push(json!({"toEntities": ["cluster"]}), vec![why.into()]);
        }
        // Names by pattern (or themselves) and ports; one rule each.
        let mut named: BTreeMap<(String, Option<String>), Named> = BTreeMap::new();
        for u in &w.uses {
            let Some(name) = &u.name else {
                let cidrs: Vec<String> = u
                    .ips
                    .iter()
                    .map(|ip| ipnet::IpNet::from(*ip).to_string())
                    .collect();
                let mut rule = json!({"toCIDR": cidrs});
                if let Some(p) = to_ports(u) {
                    rule["toPorts"] = p;
                }
                rules.push(rule, vec![u.comment()]);
                continue;
            };
            let key = if opts.fqdn_patterns {
                pattern(name, opts)
            } else {
                name.clone()
            };
            let ports = to_ports(u);
            let entry = named
                .entry((key, ports.as_ref().map(Value::to_string)))
                .or_insert_with(|| Named {
                    ports,
                    ..Named::default()
                });
            entry.names.insert(name.clone());
            entry.comments.push(u.comment());
        }
        for ((key, _), n) in named {
            // A pattern only where it stands for more than one observed name.
            let selectors: Vec<Value> = if n.names.len() > 1 {
                vec![json!({"matchPattern": key})]
            } else {
                n.names
                    .iter()
                    .map(|name| json!({"matchName": name}))
                    .collect()
            };
            let mut rule = json!({"toFQDNs": selectors});
            if let Some(p) = n.ports {
                rule["toPorts"] = p;
            }
            rules.push(rule, n.comments);
        }
        let value = json!({
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": w.metadata(),
            "spec": {
                "endpointSelector": {"matchLabels": w.selector},
                "egress": rules.list,
            }
        });
        docs.push(Document {
            kind: Kind::Cilium,
            value,
            comments: rules.comments,
        });
    }
    (docs, Vec::new())
}
