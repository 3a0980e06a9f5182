//! AdminNetworkPolicy per namespace (v1alpha1, experimental channel), for cluster admins:
//! DNS to the real resolvers, in-cluster kept, `domainNames` and `networks` allows by port,
//! then a Deny of every other address so the allows are the whole of the namespace's egress.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{
    Document, InCluster, Kind, Options, Resolvers, Rules, Use, WorkloadEgress, metadata,
    object_name, window,
};

/// The CRD's bound on `domainNames` and `networks` per peer.
const PER_PEER: usize = 25;

/// The names and addresses a namespace used on one set of ports: one Allow rule.
#[derive(Default)]
struct Group {
    names: BTreeSet<String>,
    networks: BTreeSet<String>,
    comments: Vec<String>,
    ports: Option<Value>,
}

fn ports(u: &Use) -> Option<Value> {
    let ports = u.port_list()?.into_iter();
    let ports =
        ports.map(|(port, protocol)| json!({"portNumber": {"protocol": protocol, "port": port}}));
    Some(Value::Array(ports.collect()))
}

pub(super) fn documents(
    workloads: &[WorkloadEgress],
    resolvers: &Resolvers,
    opts: &Options,
) -> (Vec<Document>, Vec<String>) {
    let mut by_ns: BTreeMap<&str, Vec<&WorkloadEgress>> = BTreeMap::new();
    for w in workloads {
        by_ns.entry(w.namespace()).or_default().push(w);
    }
    let mut docs = Vec::new();
    let mut notes = Vec::new();
    for (ns, ws) in by_ns {
        let mut rules = Rules::default();
        let dns = json!([{"portNumber": {"protocol": "UDP", "port": 53}},
                         {"portNumber": {"protocol": "TCP", "port": 53}}]);
        let mut to = Vec::new();
        if let Some((dns_ns, labels)) = &resolvers.pods {
            let ns = json!({"matchLabels": {"kubernetes.io/metadata.name": dns_ns}});
            to.push(
                json!({"pods": {"namespaceSelector": ns, "podSelector": {"matchLabels": labels}}}),
            );
        }
        if let Some(ip) = &resolvers.node_local {
            to.push(json!({"networks": [format!("{ip}/32")]}));
        }
        // No resolver known: port 53 to any address rather than a guessed label.
        if to.is_empty() {
            to.push(json!({"networks": ["0.0.0.0/0", "::/0"]}));
        }
        let rule = json!({"name": "dns", "action": "Allow", "to": to, "ports": dns});
        rules.push(rule, vec!["DNS: the cluster's resolvers".into()]);
        if opts.in_cluster == InCluster::Allow {
            let mut to = vec![json!({"namespaces": {}})];
            if !opts.cluster_cidrs.is_empty() {
                to.push(json!({"networks": opts.cluster_cidrs}));
            }
            let rule = json!({"name": "in-cluster", "action": "Allow", "to": to});
            rules.push(rule, Vec::new());
        }
        // Names and addresses by the ports they were used on.
        let mut groups: BTreeMap<Option<String>, Group> = BTreeMap::new();
        for w in &ws {
            for u in &w.uses {
                let p = ports(u);
                let g = groups
                    .entry(p.as_ref().map(Value::to_string))
                    .or_insert_with(|| Group {
                        ports: p,
                        ..Group::default()
                    });
                match &u.name {
                    Some(name) => {
                        g.names.insert(name.clone());
                    }
                    None => g
                        .networks
                        .extend(u.ips.iter().map(|ip| ipnet::IpNet::from(*ip).to_string())),
                }
                g.comments
                    .push(format!("{}: {}", w.pod.workload.name, u.comment()));
            }
        }
        for (i, g) in groups.into_values().enumerate() {
            let names: Vec<String> = g.names.into_iter().collect();
            let networks: Vec<String> = g.networks.into_iter().collect();
            let mut to: Vec<Value> = names
                .chunks(PER_PEER)
                .map(|c| json!({"domainNames": c}))
                .collect();
            to.extend(networks.chunks(PER_PEER).map(|c| json!({"networks": c})));
            let mut rule = json!({"name": format!("observed-{i}"), "action": "Allow", "to": to});
            if let Some(p) = g.ports {
                rule["ports"] = p;
            }
            rules.push(rule, g.comments);
        }
        let deny = json!({"name": "deny-other-egress", "action": "Deny",
                          "to": [{"networks": ["0.0.0.0/0", "::/0"]}]});
        rules.push(deny, vec!["everything else: denied".into()]);
        if rules.list.len() > 100 {
            notes.push(format!(
                "AdminNetworkPolicy for {ns}: {} rules, more than the 100 the CRD allows",
                rules.list.len()
            ));
        }
        let (first, last) = window(ws.iter().copied());
        docs.push(Document {
            kind: Kind::AdminNetworkPolicy,
            value: json!({
                "apiVersion": "policy.networking.k8s.io/v1alpha1",
                "kind": "AdminNetworkPolicy",
                "metadata": metadata(&object_name(ns), None, first, last),
                "spec": {
                    "priority": opts.priority,
                    "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": ns}}},
                    "egress": rules.list,
                }
            }),
            comments: rules.comments,
        });
    }
    (docs, notes)
}
