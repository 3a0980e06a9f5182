//! Istio's outbound side for pods with a sidecar (TCP only): the outbound traffic policy
//! (the workload's Sidecar, else the mesh config; ALLOW_ANY by default), ServiceEntries
//! visible to the pod's namespace (`exportTo`) matching by host, address or TCP port, and the
//! Sidecar's egress hosts, which must admit the entry under REGISTRY_ONLY.

use super::names::istio_host;
use super::{Connection, Decision, Evaluator, Layer, Target, allow, deny, in_cidr};
use crate::cluster::{Pod, ServiceEntry, Sidecar};
use crate::event::Protocol;

/// The Sidecar that configures the pod: one of its namespace selecting it, else its
/// namespace's selector-less one, else the root namespace's selector-less one.
fn sidecar_of<'c>(ev: &Evaluator<'c>, pod: &Pod) -> Option<&'c Sidecar> {
    let root = ev
        .cluster
        .mesh_config
        .as_ref()
        .map_or("istio-system", |m| m.root_namespace.as_str());
    let sidecars = &ev.cluster.sidecars;
    let selecting = sidecars.iter().find(|s| {
        s.namespace == pod.namespace
            && s.spec
                .workload_selector
                .as_ref()
                .is_some_and(|w| pod.has_labels(&w.labels))
    });
    let plain = |ns: &str| {
        sidecars
            .iter()
            .find(|s| s.namespace == ns && s.spec.workload_selector.is_none())
    };
    selecting
        .or_else(|| plain(&pod.namespace))
        .or_else(|| plain(root))
}

/// Whether an entry is visible to `namespace`.
fn exported(se: &ServiceEntry, namespace: &str) -> bool {
    let to = &se.spec.export_to;
    to.is_empty()
        || to
            .iter()
            .any(|t| t == "*" || t == namespace || (t == "." && se.namespace == namespace))
}

/// Whether the Sidecar's egress hosts (`namespace/dnsName`) admit `host` of an entry in
/// `entry_ns`, for a pod of `pod_ns`.
fn admits(sidecar: &Sidecar, pod_ns: &str, entry_ns: &str, host: &str) -> bool {
    sidecar.spec.egress.iter().flat_map(|e| &e.hosts).any(|h| {
        let Some((ns, dns)) = h.split_once('/') else {
            return false;
        };
        let ns_ok = match ns {
            "*" => true,
            "~" => false,
            "." => entry_ns == pod_ns,
            ns => ns == entry_ns,
        };
        ns_ok && istio_host(dns, host)
    })
}

/// The entry's host and port that the connection matches, if any.
fn entry_match(se: &ServiceEntry, conn: &Connection) -> Option<(String, String)> {
    let ip = match conn.to {
        Target::External(ip) => ip,
        Target::Pod { ip, .. } => ip,
    };
    let port_of = |protocol_by_name: bool| {
        let ports = &se.spec.ports;
        if ports.is_empty() {
            return Some(String::from("any port"));
        }
        ports
            .iter()
            .find(|p| {
                conn.port.is_none_or(|q| p.number == u32::from(q))
                    && (!protocol_by_name || is_tcp(p.protocol.as_deref()))
            })
            .map(|p| format!("{}/{}", p.protocol.as_deref().unwrap_or("TCP"), p.number))
    };
    if let Some(name) = conn.name
        && let Some(host) = se.spec.hosts.iter().find(|h| istio_host(h, name))
        && let Some(port) = port_of(false)
    {
        return Some((host.clone(), port));
    }
    let host = se.spec.hosts.first().cloned().unwrap_or_default();
    if let Some(ip) = ip
        && se.spec.addresses.iter().any(|a| in_cidr(ip, a, &[]))
        && let Some(port) = port_of(false)
    {
        return Some((host, port));
    }
    // A TCP port of an entry without addresses matches by port alone.
    if se.spec.addresses.is_empty() && !se.spec.ports.is_empty() && conn.port.is_some() {
        return port_of(true).map(|port| (host, port));
    }
    None
}

fn is_tcp(protocol: Option<&str>) -> bool {
    protocol.is_some_and(|p| p.eq_ignore_ascii_case("TCP"))
}

pub(super) fn egress(
    ev: &Evaluator,
    conn: &Connection,
    notes: &mut Vec<String>,
) -> Option<Decision> {
    let from = conn.from;
    if !from.has_sidecar(ev.cluster.namespace_labels(&from.namespace)) {
        return None;
    }
    if conn.protocol != Protocol::Tcp {
        notes.push("Istio mediates TCP only: this traffic bypasses the sidecar".into());
        return None;
    }
    let sidecar = sidecar_of(ev, from);
    let sidecar_mode = sidecar.and_then(|s| s.spec.outbound_traffic_policy.as_ref()?.mode.clone());
    let mesh_mode = ev
        .cluster
        .mesh_config
        .as_ref()
        .and_then(|m| m.outbound_mode.clone());
    if sidecar_mode.is_none() && mesh_mode.is_none() {
        notes.push("mesh config not read: Istio's default ALLOW_ANY assumed".into());
    }
    let mode = sidecar_mode
        .or(mesh_mode)
        .unwrap_or_else(|| "ALLOW_ANY".into());
    let by = match sidecar {
        Some(s) if s.spec.outbound_traffic_policy.is_some() => {
            format!("Sidecar {}/{}", s.namespace, s.name)
        }
        _ => "the mesh config".into(),
    };
    if let Target::Pod { pod, .. } = conn.to {
        return Some(allow(
            Layer::Istio,
            None,
            format!(
                "in-cluster destination {}: Istio's registry holds the cluster's Services",
                pod.qualified()
            ),
        ));
    }
    let mut declared = None;
    let mut entries: Vec<&ServiceEntry> = ev.cluster.service_entries.iter().collect();
    entries.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    for se in entries
        .into_iter()
        .filter(|se| exported(se, &from.namespace))
    {
        let Some((host, port)) = entry_match(se, conn) else {
            continue;
        };
        let rule = format!("ServiceEntry {}/{} host {host}", se.namespace, se.name);
        if sidecar.is_none_or(|s| admits(s, &from.namespace, &se.namespace, &host)) {
            let reason = format!("declared in the registry ({port})");
            return Some(allow(Layer::Istio, Some(rule), reason));
        }
        declared.get_or_insert((rule, sidecar));
    }
    if mode != "REGISTRY_ONLY" {
        return Some(allow(
            Layer::Istio,
            None,
            format!("{mode} ({by}): undeclared destinations pass through PassthroughCluster"),
        ));
    }
    let reason = match declared {
        Some((rule, Some(s))) => format!(
            "REGISTRY_ONLY ({by}): {rule} declares it but Sidecar {}/{} egress hosts do not admit it (BlackHoleCluster)",
            s.namespace, s.name
        ),
        _ => format!(
            "REGISTRY_ONLY ({by}): no ServiceEntry visible to {} declares {} {} (BlackHoleCluster)",
            from.namespace,
            conn.to_text(),
            conn.port_text()
        ),
    };
    Some(deny(Layer::Istio, None, reason))
}
