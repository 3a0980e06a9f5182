//! What a pod's configuration names outside the cluster: endpoints in env values, args and
//! commands; Secret and ConfigMap references (listed, not resolved); images from registries
//! outside the internal list.

use std::str::FromStr;

use k8s_openapi::api::core::v1::Container;
use oci_spec::distribution::Reference;

use super::endpoints::{self, Host};
use super::{Finding, Kind, Rules, Severity};
use crate::cluster::Pod;

pub(super) fn config(pod: &Pod, rules: &Rules, out: &mut Vec<Finding>) {
    let containers = pod
        .spec
        .init_containers
        .iter()
        .flatten()
        .chain(&pod.spec.containers);
    for c in containers {
        image(pod, c, rules, out);
        let mut reference = |detail: String| {
            out.push(Finding {
                severity: Severity::Info,
                kind: Kind::ConfigReference,
                namespace: Some(pod.namespace.clone()),
                object: pod.workload.to_string(),
                destination: None,
                port: None,
                detail,
            })
        };
        for var in c.env.iter().flatten() {
            let from = var.value_from.as_ref();
            if let Some(s) = from.and_then(|f| f.secret_key_ref.as_ref()) {
                reference(format!(
                    "env {} of container {} from Secret {} key {}: not resolved",
                    var.name, c.name, s.name, s.key
                ));
            }
            if let Some(m) = from.and_then(|f| f.config_map_key_ref.as_ref()) {
                reference(format!(
                    "env {} of container {} from ConfigMap {} key {}: not resolved",
                    var.name, c.name, m.name, m.key
                ));
            }
        }
        for source in c.env_from.iter().flatten() {
            if let Some(s) = &source.secret_ref {
                reference(format!(
                    "envFrom Secret {} of container {}: not resolved",
                    s.name, c.name
                ));
            }
            if let Some(m) = &source.config_map_ref {
                reference(format!(
                    "envFrom ConfigMap {} of container {}: not resolved",
                    m.name, c.name
                ));
            }
        }
        let mut endpoints_in = |text: &str, bare_hosts: bool, place: String| {
            let found = endpoints::extract(text, bare_hosts);
            rules.endpoint_findings(
                found,
                Kind::ConfigEndpoint,
                &pod.namespace,
                &pod.workload.to_string(),
                &place,
                out,
            );
        };
        for var in c.env.iter().flatten() {
            if let Some(value) = &var.value {
                let place = format!("env {} of container {}", var.name, c.name);
                endpoints_in(value, endpoints::names_a_host(&var.name), place);
            }
        }
        for (what, list) in [("command", &c.command), ("args", &c.args)] {
            for arg in list.iter().flatten() {
                endpoints_in(arg, false, format!("{what} of container {}", c.name));
            }
        }
    }
}

/// A finding when the container's image comes from a registry outside the internal list
/// (or the cluster). Docker Hub is the default registry, `library/` its default namespace.
fn image(pod: &Pod, c: &Container, rules: &Rules, out: &mut Vec<Finding>) {
    let Some(image) = c.image.as_deref().map(str::trim).filter(|i| !i.is_empty()) else {
        return;
    };
    let Ok(reference) = Reference::from_str(image) else {
        return;
    };
    let registry = reference.registry();
    let path = format!("{registry}/{}", reference.repository());
    let internal_list = rules.internal_registries.iter().any(|r| {
        let r = r.trim_end_matches('/');
        path == r || path.starts_with(&format!("{r}/"))
    });
    // A registry inside the cluster (a Service name, a cluster IP) is not egress either.
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    let host = match host.parse() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Name(host.to_string()),
    };
    if internal_list || rules.external(&host).is_none() {
        return;
    }
    let pinned = match (reference.tag(), reference.digest()) {
        (_, Some(digest)) => format!("@{digest}"),
        (Some(tag), None) => format!(":{tag}"),
        (None, None) => String::new(),
    };
    out.push(Finding {
        severity: Severity::Low,
        kind: Kind::ExternalImage,
        namespace: Some(pod.namespace.clone()),
        object: pod.workload.to_string(),
        destination: Some(registry.to_string()),
        port: None,
        detail: format!("image {path}{pinned} of container {}", c.name),
    });
}
