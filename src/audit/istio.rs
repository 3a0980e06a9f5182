//! Istio: ServiceEntries outside the mesh (MESH_EXTERNAL, the default when `location` is
//! omitted), DestinationRules for external hosts (TLS origination), and the mesh's
//! outboundTrafficPolicy (ALLOW_ANY lets pods reach hosts no ServiceEntry declares).

use super::{Finding, Kind, Port, Rules, Severity};
use crate::cluster::{Cluster, MeshConfig};
use crate::policy::names::istio_host as covers;

pub(super) fn service_entries(cluster: &Cluster, rules: &Rules, out: &mut Vec<Finding>) {
    let mut mesh_hosts: Vec<&str> = Vec::new();
    let mut external_entries: Vec<(&str, String)> = Vec::new();
    for se in &cluster.service_entries {
        let spec = &se.spec;
        let name = &se.name;
        if spec.internal() {
            mesh_hosts.extend(spec.hosts.iter().map(String::as_str));
            continue;
        }
        let mut detail = format!(
            "resolution {}",
            spec.resolution.as_deref().unwrap_or("NONE")
        );
        if !spec.addresses.is_empty() {
            detail.push_str(&format!(", addresses {}", spec.addresses.join(" ")));
        }
        let endpoints: Vec<&str> = spec
            .endpoints
            .iter()
            .filter_map(|e| e.address.as_deref())
            .collect();
        if !endpoints.is_empty() {
            detail.push_str(&format!(", endpoints {}", endpoints.join(" ")));
        }
        let ports: Vec<(Option<Port>, String)> = if spec.ports.is_empty() {
            vec![(None, detail.clone())]
        } else {
            spec.ports
                .iter()
                .map(|p| {
                    let number = u16::try_from(p.number).ok().filter(|n| *n > 0);
                    let protocol = p.protocol.as_deref().unwrap_or("unknown protocol");
                    (number.map(Port::Number), format!("{protocol}, {detail}"))
                })
                .collect()
        };
        for host in &spec.hosts {
            let Some(destination) = rules.external_pattern(host) else {
                continue;
            };
            external_entries.push((host, format!("ServiceEntry/{name}")));
            for (port, detail) in &ports {
                out.push(Finding {
                    severity: Severity::Medium,
                    kind: Kind::ServiceEntry,
                    namespace: Some(se.namespace.clone()),
                    object: format!("ServiceEntry/{name}"),
                    destination: Some(destination.clone()),
                    port: port.clone(),
                    detail: detail.clone(),
                });
            }
        }
    }
    for dr in &cluster.destination_rules {
        let Some(host) = dr.spec.host.as_deref() else {
            continue;
        };
        if mesh_hosts.iter().any(|p| covers(p, host)) {
            continue;
        }
        let Some(destination) = rules.external_pattern(host) else {
            continue;
        };
        let declared = match external_entries.iter().find(|(p, _)| covers(p, host)) {
            Some((_, entry)) => format!("declared by {entry}"),
            None => "no ServiceEntry declares it".into(),
        };
        let policy = dr.spec.traffic_policy.as_ref();
        let mut tls: Vec<(Option<Port>, &str)> = Vec::new();
        if let Some(mode) = policy.and_then(|p| p.tls.as_ref()?.mode.as_deref()) {
            tls.push((None, mode));
        }
        for setting in policy.iter().flat_map(|p| &p.port_level_settings) {
            let port = setting.port.as_ref().and_then(|p| p.number);
            let port = port.and_then(|n| u16::try_from(n).ok());
            if let Some(mode) = setting.tls.as_ref().and_then(|t| t.mode.as_deref()) {
                tls.push((port.map(Port::Number), mode));
            }
        }
        if tls.is_empty() {
            tls.push((None, ""));
        }
        for (port, mode) in tls {
            let origination = match mode {
                "" => "no TLS settings".to_string(),
                "SIMPLE" | "MUTUAL" | "ISTIO_MUTUAL" => format!("TLS origination {mode}"),
                other => format!("TLS mode {other}"),
            };
            out.push(Finding {
                severity: Severity::Low,
                kind: Kind::DestinationRule,
                namespace: Some(dr.namespace.clone()),
                object: format!("DestinationRule/{}", dr.name),
                destination: Some(destination.clone()),
                port,
                detail: format!("{origination}; {declared}"),
            });
        }
    }
}

/// The mesh's outbound policy (ALLOW_ANY when unset, as Istio defaults); None when the
/// config does not parse.
pub(super) fn mesh_policy(mesh: &MeshConfig, out: &mut Vec<Finding>) -> Option<String> {
    let mode = mesh.outbound_mode.clone()?;
    let (severity, detail) = if mesh.registry_only() {
        (
            Severity::Info,
            "REGISTRY_ONLY: only hosts declared by ServiceEntries are reachable",
        )
    } else {
        (
            Severity::High,
            "ALLOW_ANY: sidecars pass traffic to any external host, declared or not",
        )
    };
    out.push(Finding {
        severity,
        kind: Kind::MeshOutboundPolicy,
        namespace: Some("istio-system".into()),
        object: format!("ConfigMap/{}", mesh.configmap),
        destination: None,
        port: None,
        detail: detail.into(),
    });
    Some(mode)
}
