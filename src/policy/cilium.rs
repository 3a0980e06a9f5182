//! Cilium's policies (cilium.io/v2): an endpoint selected by a rule with egress (ingress)
//! rules is default-deny in that direction unless `enableDefaultDeny` says otherwise;
//! `egressDeny` wins over allows; toEndpoints, toEntities, toCIDR/toCIDRSet (never
//! in-cluster endpoints), toFQDNs (only with a DNS-proxy rule for the same endpoint), toPorts.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::names::cilium_pattern;
use super::{Connection, Direction, Evaluator, Found, in_cidr, is_everything, protocol_is};
use crate::cluster::Pod;
use crate::cluster::cilium::{CiliumPolicy, CiliumRule, FqdnSelector, PeerRule, PortRule};
use crate::cluster::selector::{Keys, matches};

const NAMESPACE_KEY: &str = "io.kubernetes.pod.namespace";

/// A pod's labels as Cilium selects on them: its own, its namespace, its namespace's labels
/// and its service account.
pub(crate) fn endpoint_labels(ev: &Evaluator, pod: &Pod) -> BTreeMap<String, String> {
    let mut labels = pod.labels.clone();
    labels.insert(NAMESPACE_KEY.into(), pod.namespace.clone());
    for (k, v) in ev.cluster.namespace_labels(&pod.namespace) {
        labels.insert(format!("io.cilium.k8s.namespace.labels.{k}"), v.clone());
    }
    let account = pod
        .spec
        .service_account_name
        .as_deref()
        .unwrap_or("default");
    labels.insert("io.cilium.k8s.policy.serviceaccount".into(), account.into());
    labels
}

fn rules_of(rule: &CiliumRule, dir: Direction) -> (&[PeerRule], &[PeerRule], Option<bool>) {
    let (allow, deny, default) = match dir {
        Direction::Egress => (
            &rule.egress,
            &rule.egress_deny,
            rule.enable_default_deny.egress,
        ),
        Direction::Ingress => (
            &rule.ingress,
            &rule.ingress_deny,
            rule.enable_default_deny.ingress,
        ),
    };
    (
        allow.as_deref().unwrap_or_default(),
        deny.as_deref().unwrap_or_default(),
        default,
    )
}

/// The rules of every policy that select the pod (by endpointSelector; in the policy's
/// namespace unless clusterwide).
fn selecting<'c>(ev: &Evaluator<'c>, pod: &Pod) -> Vec<(&'c CiliumPolicy, usize, &'c CiliumRule)> {
    let labels = endpoint_labels(ev, pod);
    let mut out = Vec::new();
    for policy in &ev.cluster.cilium_policies {
        if policy
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != pod.namespace)
        {
            continue;
        }
        for (i, rule) in policy.rules.iter().enumerate() {
            let selected = rule
                .endpoint_selector
                .as_ref()
                .is_some_and(|s| matches(s, &labels, Keys::Cilium));
            if selected {
                out.push((policy, i, rule));
            }
        }
    }
    out
}

pub(super) fn isolating(ev: &Evaluator, pod: &Pod, dir: Direction) -> Vec<String> {
    let mut by: Vec<String> = selecting(ev, pod)
        .into_iter()
        .filter(|(_, _, rule)| {
            let (allow, deny, default) = rules_of(rule, dir);
            (!allow.is_empty() || !deny.is_empty()) && default != Some(false)
        })
        .map(|(p, _, _)| p.title())
        .collect();
    by.dedup();
    by
}

/// The DNS proxy's patterns for the pod: the `rules.dns` of its egress rules.
fn dns_patterns<'c>(
    selected: &[(&'c CiliumPolicy, usize, &'c CiliumRule)],
) -> Vec<&'c FqdnSelector> {
    selected
        .iter()
        .flat_map(|(_, _, rule)| rule.egress.iter().flatten())
        .flat_map(|r| r.to_ports.iter().flatten())
        .filter_map(|p| p.rules.as_ref()?.dns.as_ref())
        .flatten()
        .collect()
}

fn fqdn_matches(selector: &FqdnSelector, name: &str) -> bool {
    match (&selector.match_name, &selector.match_pattern) {
        (Some(exact), _) => super::names::normalise(exact) == super::names::normalise(name),
        (None, Some(pattern)) => cilium_pattern(pattern, name),
        (None, None) => false,
    }
}

pub(super) fn judge(ev: &Evaluator, conn: &Connection, dir: Direction, subject: &Pod) -> Found {
    let mut found = Found::default();
    let selected = selecting(ev, subject);
    let dns = dns_patterns(&selected);
    for (policy, spec, rule) in &selected {
        let (allow, deny, default) = rules_of(rule, dir);
        let at = |what: &str, i: usize| rule_name(policy, *spec, what, i);
        if (!allow.is_empty() || !deny.is_empty()) && default != Some(false) {
            found.isolating.push(policy.title());
        }
        let what = match dir {
            Direction::Egress => "egressDeny",
            Direction::Ingress => "ingressDeny",
        };
        for (i, r) in deny.iter().enumerate() {
            if found.denied_by.is_none() && rule_matches(ev, policy, r, conn, dir, None, &mut found)
            {
                found.denied_by = Some(at(what, i));
            }
        }
        for (i, r) in allow.iter().enumerate() {
            if rule_matches(ev, policy, r, conn, dir, Some(&dns), &mut found) {
                found.allowed_by.push(at(dir.as_str(), i));
                if r.to_ports
                    .iter()
                    .flatten()
                    .any(|p| p.rules.as_ref().is_some_and(|l| l.http.is_some()))
                {
                    found.notes.push(format!(
                        "{}: L7 HTTP rules apply; a request they do not allow gets 403",
                        at(dir.as_str(), i)
                    ));
                }
            }
        }
    }
    found
}

/// How answers name a rule: `CiliumNetworkPolicy ns/name egress[1]`, with `specs[i].` when
/// the policy has several.
pub(super) fn rule_name(policy: &CiliumPolicy, spec: usize, what: &str, i: usize) -> String {
    match policy.rules.len() {
        1 => format!("{} {what}[{i}]", policy.title()),
        _ => format!("{} specs[{spec}].{what}[{i}]", policy.title()),
    }
}

/// Whether one rule's peers and ports match. `dns`: the pod's DNS-proxy patterns, for
/// toFQDNs (None for deny rules, which have no toFQDNs).
fn rule_matches(
    ev: &Evaluator,
    policy: &CiliumPolicy,
    rule: &PeerRule,
    conn: &Connection,
    dir: Direction,
    dns: Option<&[&FqdnSelector]>,
    found: &mut Found,
) -> bool {
    let ports_ok = rule
        .to_ports
        .as_ref()
        .is_none_or(|ports| ports.is_empty() || ports.iter().any(|p| ports_match(p, conn)));
    if !ports_ok {
        return false;
    }
    let (pod, ip) = conn.peer(dir);
    let l3 = rule.endpoints.is_some()
        || rule.cidr.is_some()
        || rule.cidr_set.is_some()
        || rule.entities.is_some()
        || rule.fqdns.is_some()
        || rule.services.is_some();
    if !l3 {
        // A toPorts-only rule allows every peer on its ports; an empty rule allows nothing.
        return rule.to_ports.as_ref().is_some_and(|p| !p.is_empty());
    }
    if let (Some(selectors), Some(pod)) = (&rule.endpoints, pod)
        && selectors
            .iter()
            .any(|s| endpoint_matches(ev, policy, s, pod))
    {
        return true;
    }
    for entity in rule.entities.iter().flatten() {
        let hit = match entity.as_str() {
            "all" => true,
            "world" => pod.is_none(),
            "world-ipv4" => pod.is_none() && ip.is_none_or(|ip| ip.is_ipv4()),
            "world-ipv6" => pod.is_none() && ip.is_none_or(|ip| ip.is_ipv6()),
            "cluster" => pod.is_some(),
            _ => false,
        };
        if hit {
            return true;
        }
    }
    if pod.is_none() {
        let cidrs = rule.cidr.iter().flatten().map(|c| (c.as_str(), &[][..]));
        let sets = rule.cidr_set.iter().flatten();
        let sets = sets.filter_map(|s| Some((s.cidr.as_deref()?, s.except.as_slice())));
        for (cidr, except) in cidrs.chain(sets) {
            let hit = match ip {
                Some(ip) => in_cidr(ip, cidr, except),
                None => is_everything(cidr, except),
            };
            if hit {
                return true;
            }
        }
        if let (Some(fqdns), Some(name)) = (&rule.fqdns, conn.name)
            && fqdns.iter().any(|f| fqdn_matches(f, name))
        {
            let dns = dns.unwrap_or_default();
            if dns.iter().any(|d| fqdn_matches(d, name)) {
                return true;
            }
            found.hints.push(if dns.is_empty() {
                format!("{} has toFQDNs for {name} but no DNS rule: toFQDNs without a DNS rule allows nothing", policy.title())
            } else {
                format!("{}: the DNS rule's patterns do not admit {name}, so toFQDNs learns no address for it", policy.title())
            });
        }
    }
    false
}

/// An endpoint selector against a pod; without a namespace key it stays in a namespaced
/// policy's namespace.
fn endpoint_matches(
    ev: &Evaluator,
    policy: &CiliumPolicy,
    selector: &LabelSelector,
    pod: &Pod,
) -> bool {
    let names_namespace = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .chain(selector.match_expressions.iter().flatten().map(|e| &e.key))
        .any(|k| k.trim_start_matches("k8s:").trim_start_matches("any:") == NAMESPACE_KEY);
    if !names_namespace
        && let Some(ns) = &policy.namespace
        && *ns != pod.namespace
    {
        return false;
    }
    matches(selector, &endpoint_labels(ev, pod), Keys::Cilium)
}

fn ports_match(rule: &PortRule, conn: &Connection) -> bool {
    if rule.ports.is_empty() {
        return true;
    }
    rule.ports.iter().any(|p| {
        if !protocol_is(p.protocol.as_deref(), "ANY", conn.protocol) {
            return false;
        }
        let Some(port) = conn.port else {
            return true;
        };
        match p.port.as_deref() {
            None | Some("0") | Some("") => true,
            Some(text) => match text.parse::<u16>() {
                Ok(n) => match p.end_port {
                    Some(end) if end > 0 => (i32::from(n)..=end).contains(&i32::from(port)),
                    _ => n == port,
                },
                Err(_) => {
                    conn.dest_pod()
                        .and_then(|d| d.named_port(text, conn.protocol.as_str()))
                        == Some(port)
                }
            },
        }
    })
}
