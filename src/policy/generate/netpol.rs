//! NetworkPolicy per workload: `policyTypes: [Egress]`, DNS to the real resolvers, in-cluster
//! egress kept working, and each external destination as `ipBlock` /32 (/128) with its ports,
//! the names it carries in a comment. Names seen without an address cannot be expressed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Value, json};

use super::{Document, InCluster, Kind, Options, Resolvers, Rules, Use, WorkloadEgress};
use crate::event::Protocol;

/// `ports` of a rule: protocol and number; none when every port stays open.
fn ports(u: &Use) -> Option<Value> {
    let ports = u.port_list()?.into_iter();
    let ports = ports.map(|(port, protocol)| json!({"protocol": protocol, "port": port}));
    Some(Value::Array(ports.collect()))
}

fn dns_rule(resolvers: &Resolvers) -> Value {
    let mut to = Vec::new();
    if let Some((ns, labels)) = &resolvers.pods {
        to.push(
            json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                       "podSelector": {"matchLabels": labels}}),
        );
    }
    if let Some(ip) = &resolvers.node_local {
        to.push(json!({"ipBlock": {"cidr": format!("{ip}/32")}}));
    }
    let ports = json!([{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]);
    // No resolver known: port 53 to any address rather than a guessed label.
    match to.is_empty() {
        true => json!({"ports": ports}),
        false => json!({"to": to, "ports": ports}),
    }
}

fn host_net(ip: IpAddr) -> String {
    IpNet::from(ip).to_string()
}

pub(super) fn documents(
    workloads: &[WorkloadEgress],
    resolvers: &Resolvers,
    opts: &Options,
) -> (Vec<Document>, Vec<String>) {
    let mut docs = Vec::new();
    let mut notes = Vec::new();
    for w in workloads {
        let mut rules = Rules::default();
        rules.push(
            dns_rule(resolvers),
            vec!["DNS: the cluster's resolvers".into()],
        );
        if opts.in_cluster == InCluster::Allow {
            let mut to = vec![json!({"namespaceSelector": {}})];
            to.extend(
                opts.cluster_cidrs
                    .iter()
                    .map(|c| json!({"ipBlock": {"cidr": c}})),
            );
            let why = match opts.cluster_cidrs.is_empty() {
                true => {
                    "in-cluster: every pod of every namespace (--in-cluster allow); nodes and the API server are not pods: name their networks with --cluster-cidr"
                }
                false => {
                    "in-cluster: every pod of every namespace and the cluster's CIDRs (--in-cluster allow)"
                }
            };
            rules.push(json!({"to": to}), vec![why.into()]);
        }
        // Addresses by the ports they were used on, for --aggregate-ipv4.
        let mut uses: Vec<(Use, Vec<IpAddr>)> = Vec::new();
        for u in &w.uses {
            if u.ips.is_empty() {
                notes.push(format!(
                    "NetworkPolicy cannot express {} for {}/{}: no address was observed (use --kind cilium or --kind istio)",
                    u.label(),
                    w.namespace(),
                    w.pod.workload.name
                ));
                continue;
            }
            uses.push((u.clone(), u.ips.clone()));
        }
        if let Some(prefix) = opts.aggregate_ipv4 {
            aggregate(&mut uses, prefix, opts.aggregate_min, &mut rules);
        }
        for (u, ips) in uses.iter().filter(|(_, ips)| !ips.is_empty()) {
            let blocks: Vec<Value> = ips
                .iter()
                .map(|ip| json!({"ipBlock": {"cidr": host_net(*ip)}}))
                .collect();
            let mut rule = json!({"to": blocks});
            if let Some(p) = ports(u) {
                rule["ports"] = p;
            }
            rules.push(rule, vec![u.comment()]);
        }
        let value = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": w.metadata(),
            "spec": {
                "podSelector": {"matchLabels": w.selector},
                "policyTypes": ["Egress"],
                "egress": rules.list,
            }
        });
        docs.push(Document {
            kind: Kind::NetworkPolicy,
            value,
            comments: rules.comments,
        });
    }
    (docs, notes)
}

/// Replaces IPv4 addresses that share a /`prefix` with at least `min` others on the same
/// ports by one rule for the network.
fn aggregate(uses: &mut [(Use, Vec<IpAddr>)], prefix: u8, min: usize, rules: &mut Rules) {
    type PortSet = (bool, BTreeSet<(u16, Protocol)>);
    let mut nets: BTreeMap<(PortSet, IpNet), BTreeSet<IpAddr>> = BTreeMap::new();
    for (u, ips) in uses.iter() {
        for ip in ips.iter().filter(|ip| ip.is_ipv4()) {
            let Ok(net) = IpNet::new(*ip, prefix) else {
                continue;
            };
            let key = ((u.any_port, u.ports.clone()), net.trunc());
            nets.entry(key).or_default().insert(*ip);
        }
    }
    for (((any_port, used), net), ips) in nets.into_iter().filter(|(_, ips)| ips.len() >= min) {
        let mut names = BTreeSet::new();
        let mut template: Option<Use> = None;
        for (u, have) in uses.iter_mut() {
            if (u.any_port, &u.ports) != (any_port, &used) {
                continue;
            }
            let before = have.len();
            have.retain(|ip| !ips.contains(ip));
            if have.len() != before {
                names.insert(u.label());
                template.get_or_insert_with(|| u.clone());
            }
        }
        let Some(u) = template else { continue };
        let mut rule = json!({"to": [{"ipBlock": {"cidr": net.to_string()}}]});
        if let Some(p) = ports(&u) {
            rule["ports"] = p;
        }
        let names: Vec<String> = names.into_iter().collect();
        let why = format!(
            "{} addresses aggregated (--aggregate-ipv4 /{prefix}): {}",
            ips.len(),
            names.join(", ")
        );
        rules.push(rule, vec![why]);
    }
}
