//! Istio: ServiceEntries outside the mesh (MESH_EXTERNAL, the default when `location` is
//! omitted), DestinationRules for external hosts (TLS origination), and the mesh's
//! outboundTrafficPolicy (ALLOW_ANY lets pods reach hosts no ServiceEntry declares).

use serde_json::Value;

use super::{Finding, Kind, Objects, Port, Rules, Severity, metadata, str_of};

fn strings<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn is_internal_entry(se: &Value) -> bool {
    se.get("spec").and_then(|s| str_of(s, "location")) == Some("MESH_INTERNAL")
}

/// Whether a ServiceEntry host (maybe `*.domain`) covers `host`.
fn covers(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

pub(super) fn service_entries(objects: &Objects, rules: &Rules, out: &mut Vec<Finding>) {
    let mut mesh_hosts: Vec<&str> = Vec::new();
    let mut external_entries: Vec<(&str, String)> = Vec::new();
    for se in &objects.service_entries {
        let Some(spec) = se.get("spec") else { continue };
        let name = metadata(se, "name").unwrap_or_default();
        if is_internal_entry(se) {
            mesh_hosts.extend(strings(spec, "hosts"));
            continue;
        }
        let mut detail = format!(
            "resolution {}",
            str_of(spec, "resolution").unwrap_or("NONE")
        );
        let addresses: Vec<&str> = strings(spec, "addresses").collect();
        if !addresses.is_empty() {
            detail.push_str(&format!(", addresses {}", addresses.join(" ")));
        }
        let endpoints: Vec<&str> = spec
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| str_of(e, "address"))
            .collect();
        if !endpoints.is_empty() {
            detail.push_str(&format!(", endpoints {}", endpoints.join(" ")));
        }
        let ports: Vec<(Option<Port>, String)> = match spec.get("ports").and_then(Value::as_array) {
            Some(ports) if !ports.is_empty() => ports
                .iter()
                .map(|p| {
                    let number = p
                        .get("number")
                        .and_then(Value::as_u64)
                        .and_then(|n| u16::try_from(n).ok());
                    let protocol = str_of(p, "protocol").unwrap_or("unknown protocol");
                    (number.map(Port::Number), format!("{protocol}, {detail}"))
                })
                .collect(),
            _ => vec![(None, detail.clone())],
        };
        for host in strings(spec, "hosts") {
            let Some(destination) = rules.external_pattern(host) else {
                continue;
            };
            external_entries.push((host, format!("ServiceEntry/{name}")));
            for (port, detail) in &ports {
                out.push(Finding {
                    severity: Severity::Medium,
                    kind: Kind::ServiceEntry,
                    namespace: metadata(se, "namespace").map(str::to_string),
                    object: format!("ServiceEntry/{name}"),
                    destination: Some(destination.clone()),
                    port: port.clone(),
                    detail: detail.clone(),
                });
            }
        }
    }
    for dr in &objects.destination_rules {
        let Some(spec) = dr.get("spec") else { continue };
        let Some(host) = str_of(spec, "host") else {
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
        let policy = spec.get("trafficPolicy");
        let mut tls: Vec<(Option<Port>, &str)> = Vec::new();
        if let Some(mode) = policy
            .and_then(|p| p.get("tls"))
            .and_then(|t| str_of(t, "mode"))
        {
            tls.push((None, mode));
        }
        let port_level = policy
            .and_then(|p| p.get("portLevelSettings"))
            .and_then(Value::as_array);
        for setting in port_level.into_iter().flatten() {
            let port = setting
                .get("port")
                .and_then(|p| p.get("number"))
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok());
            if let Some(mode) = setting.get("tls").and_then(|t| str_of(t, "mode")) {
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
                namespace: metadata(dr, "namespace").map(str::to_string),
                object: format!(
                    "DestinationRule/{}",
                    metadata(dr, "name").unwrap_or_default()
                ),
                destination: Some(destination.clone()),
                port,
                detail: format!("{origination}; {declared}"),
            });
        }
    }
}

/// The mesh's outbound policy from its config (ALLOW_ANY when unset, as Istio defaults);
/// None when the config does not parse.
pub(super) fn mesh_policy(configmap: &str, mesh: &str, out: &mut Vec<Finding>) -> Option<String> {
    let config: Value = if mesh.trim().is_empty() {
        Value::Null
    } else {
        serde_saphyr::from_str(mesh).ok()?
    };
    let mode = config
        .get("outboundTrafficPolicy")
        .and_then(|p| str_of(p, "mode"))
        .unwrap_or("ALLOW_ANY")
        .to_string();
    let (severity, detail) = if mode == "REGISTRY_ONLY" {
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
        object: format!("ConfigMap/{configmap}"),
        destination: None,
        port: None,
        detail: detail.into(),
    });
    Some(mode)
}
