//! `policy generate --diff`: what the generated set adds, changes or leaves as it is among
//! the cluster's policies, and which earlier generated ones it no longer has.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::{Generated, Kind};
use crate::cluster::{Cluster, qualified};

/// Objects of the generated kinds in the cluster, by `Kind ns/name`; a NetworkPolicy's spec
/// as JSON, to say whether it changes.
fn existing(
    cluster: &Cluster,
    kinds: &BTreeSet<Kind>,
) -> BTreeMap<String, Option<serde_json::Value>> {
    let mut out = BTreeMap::new();
    if kinds.contains(&Kind::NetworkPolicy) {
        for p in &cluster.network_policies {
            let spec = serde_json::to_value(&p.spec).ok();
            out.insert(format!("NetworkPolicy {}", qualified(&p.metadata)), spec);
        }
    }
    if kinds.contains(&Kind::Cilium) {
        for p in cluster
            .cilium_policies
            .iter()
            .filter(|p| p.namespace.is_some())
        {
            out.insert(p.title(), None);
        }
    }
    if kinds.contains(&Kind::Istio) {
        for s in &cluster.service_entries {
            out.insert(format!("ServiceEntry {}/{}", s.namespace, s.name), None);
        }
        for s in &cluster.sidecars {
            out.insert(format!("Sidecar {}/{}", s.namespace, s.name), None);
        }
    }
    if kinds.contains(&Kind::AdminNetworkPolicy) {
        for p in cluster.admin_policies.iter().filter(|p| !p.baseline) {
            out.insert(p.title(), None);
        }
    }
    out
}

pub fn diff(cluster: &Cluster, generated: &Generated) -> String {
    let kinds: BTreeSet<Kind> = generated.documents.iter().map(|d| d.kind).collect();
    let mut have = existing(cluster, &kinds);
    let mut lines = Vec::new();
    for doc in &generated.documents {
        let v = &doc.value;
        let kind = v["kind"].as_str().unwrap_or_default();
        let name = v["metadata"]["name"].as_str().unwrap_or_default();
        let title = match v["metadata"]["namespace"].as_str() {
            Some(ns) => format!("{kind} {ns}/{name}"),
            None => format!("{kind} {name}"),
        };
        let line = match have.remove(&title) {
            None => format!("+ {title}: new"),
            Some(Some(spec)) => {
                let ours = serde_json::from_value::<NetworkPolicy>(v.clone())
                    .ok()
                    .and_then(|p| serde_json::to_value(&p.spec).ok());
                if ours.as_ref() == Some(&spec) {
                    format!("= {title}: unchanged")
                } else {
                    format!("~ {title}: changes the existing one")
                }
            }
            Some(None) => format!("~ {title}: replaces the existing one"),
        };
        lines.push(line);
    }
    for title in have.keys() {
        // The object's name: after `ns/`, else after the kind.
        let name = title.rsplit(['/', ' ']).next().unwrap_or_default();
        let ours = name.starts_with("egress-scout");
        if ours {
            lines.push(format!(
                "- {title}: generated before, nothing observed needs it now"
            ));
        }
    }
    lines.sort_by(|a, b| a[2..].cmp(&b[2..]));
    let (add, change, same, remove) = lines.iter().fold((0, 0, 0, 0), |c, l| match &l[..1] {
        "+" => (c.0 + 1, c.1, c.2, c.3),
        "~" => (c.0, c.1 + 1, c.2, c.3),
        "=" => (c.0, c.1, c.2 + 1, c.3),
        _ => (c.0, c.1, c.2, c.3 + 1),
    });
    let mut out = lines.join("\n");
    out.push_str(&format!(
        "\n{add} new, {change} changed, {same} unchanged, {remove} to remove\n"
    ));
    out
}
