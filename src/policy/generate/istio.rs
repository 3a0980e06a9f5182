//! Istio: one ServiceEntry per external host (its observed ports, TLS on 443, HTTP on 80
//! and 8080, else TCP; `resolution: DNS`, `location: MESH_EXTERNAL`, exported to the
//! namespaces that use it), IP-only destinations by address, and a Sidecar per namespace (or
//! workload) admitting exactly those hosts. Switching the mesh to REGISTRY_ONLY is left as a
//! commented step.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{
    Document, InCluster, Kind, Options, Use, WorkloadEgress, metadata, object_name, window,
};
use crate::event::Protocol;

/// The protocol a ServiceEntry port declares, from the port (the inventory keeps no SNI or
/// Host header per port).
fn protocol(port: u16, protocol: Protocol) -> &'static str {
    match (port, protocol) {
        (_, Protocol::Udp) => "UDP",
        (443 | 8443, _) => "TLS",
        (80 | 8080, _) => "HTTP",
        _ => "TCP",
    }
}

/// A host every use of it shares: its ServiceEntry.
struct Host {
    host: String,
    addresses: Vec<String>,
    ports: BTreeSet<(u16, Protocol)>,
    namespaces: BTreeSet<String>,
    first: OffsetDateTime,
    last: OffsetDateTime,
    comments: Vec<String>,
}

fn host_of(u: &Use) -> (String, Vec<String>) {
    match &u.name {
        Some(name) => (name.clone(), Vec::new()),
        // An address without a name: a placeholder host that never resolves, and the address.
        None => {
            let ip = u.ips.first().map(ToString::to_string).unwrap_or_default();
            let label = ip.replace(['.', ':'], "-");
            let addresses = u
                .ips
                .iter()
                .map(|ip| ipnet::IpNet::from(*ip).to_string())
                .collect();
            (format!("ip-{label}.egress-scout.invalid"), addresses)
        }
    }
}

pub(super) fn documents(
    workloads: &[WorkloadEgress],
    opts: &Options,
) -> (Vec<Document>, Vec<String>) {
    let mut hosts: BTreeMap<String, Host> = BTreeMap::new();
    let mut notes = Vec::new();
    // What each Sidecar (namespace, or namespace and workload) must admit.
    let mut sidecars: BTreeMap<(String, Option<usize>), BTreeSet<String>> = BTreeMap::new();
    for (i, w) in workloads.iter().enumerate() {
        let scope = (
            w.namespace().to_string(),
            opts.per_workload_sidecar.then_some(i),
        );
        let admitted = sidecars.entry(scope).or_default();
        for u in &w.uses {
            if u.ports.is_empty() {
                notes.push(format!(
                    "Istio: no connection to {} was observed from {}/{}: no ServiceEntry port to declare",
                    u.label(), w.namespace(), w.pod.workload.name
                ));
                continue;
            }
            let (host, addresses) = host_of(u);
            let h = hosts.entry(host.clone()).or_insert_with(|| Host {
                host: host.clone(),
                addresses,
                ports: BTreeSet::new(),
                namespaces: BTreeSet::new(),
                first: u.first,
                last: u.last,
                comments: Vec::new(),
            });
            h.ports.extend(u.ports.iter().copied());
            h.namespaces.insert(w.namespace().to_string());
            h.first = h.first.min(u.first);
            h.last = h.last.max(u.last);
            h.comments.push(format!(
                "{}/{}: {}",
                w.namespace(),
                w.pod.workload.name,
                u.comment()
            ));
            admitted.insert(host);
        }
    }
    let mut docs = Vec::new();
    // Each entry lives in the first namespace that uses it.
    let mut home: BTreeMap<String, String> = BTreeMap::new();
    for h in hosts.values() {
        let ns = h.namespaces.first().cloned().unwrap_or_default();
        home.insert(h.host.clone(), ns.clone());
        let export: Vec<String> = h
            .namespaces
            .iter()
            .map(|n| if *n == ns { ".".to_string() } else { n.clone() })
            .collect();
        let ports: Vec<Value> = h
            .ports
            .iter()
            .map(|(port, proto)| {
                let p = protocol(*port, *proto);
                json!({"number": port, "name": format!("{}-{port}", p.to_ascii_lowercase()), "protocol": p})
            })
            .collect();
        let mut spec = json!({"hosts": [h.host], "location": "MESH_EXTERNAL"});
        if h.addresses.is_empty() {
            spec["resolution"] = json!("DNS");
        } else {
            spec["addresses"] = json!(h.addresses);
            spec["resolution"] = json!("NONE");
        }
        spec["ports"] = Value::Array(ports);
        spec["exportTo"] = json!(export);
        docs.push(Document {
            kind: Kind::Istio,
            value: json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": metadata(&object_name(&h.host), Some(&ns), h.first, h.last),
                "spec": spec,
            }),
            comments: BTreeMap::from([("/spec".to_string(), h.comments.clone())]),
        });
    }
    for ((ns, workload), admitted) in sidecars {
        let workload = workload.map(|i| &workloads[i]);
        let mut entries: Vec<String> = vec!["istio-system/*".into()];
        if opts.in_cluster == InCluster::Allow {
            entries.push(format!("*/*.svc.{}", opts.cluster_domain));
        }
        for host in &admitted {
            let at = home.get(host).map(String::as_str).unwrap_or(".");
            entries.push(if at == ns {
                format!("./{host}")
            } else {
                format!("{at}/{host}")
            });
        }
        let (name, first, last) = match workload {
            Some(w) => (w.object_name(), w.first, w.last),
            None => {
                let (first, last) = window(workloads.iter().filter(|w| w.namespace() == ns));
                ("egress-scout".to_string(), first, last)
            }
        };
        let mut spec = json!({"egress": [{"hosts": entries}]});
        if let Some(w) = workload {
            spec =
                json!({"workloadSelector": {"labels": w.selector}, "egress": [{"hosts": entries}]});
        }
        docs.push(Document {
            kind: Kind::Istio,
            value: json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "Sidecar",
                "metadata": metadata(&name, Some(&ns), first, last),
                "spec": spec,
            }),
            comments: BTreeMap::new(),
        });
    }
    if !docs.is_empty() {
        notes.push("Istio: these take effect once the mesh is REGISTRY_ONLY: set `outboundTrafficPolicy: {mode: REGISTRY_ONLY}` in the mesh config (istio-system ConfigMap istio, key mesh) after applying them".into());
    }
    (docs, notes)
}
