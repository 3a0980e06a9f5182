//! AdminNetworkPolicy and BaselineAdminNetworkPolicy: rules in order within a policy,
//! policies by priority; Allow and Deny decide, Pass hands the connection to
//! NetworkPolicies. `networks` match pod IPs too; `domainNames` (egress, Allow only) match
//! with ANP's wildcard rule.

use super::names::admin_domain;
use super::{Connection, Decision, Direction, Evaluator, Layer, in_cidr, protocol_is};
use crate::cluster::Pod;
use crate::cluster::admin::{AdminPeer, AdminPolicy, AdminPort, AdminRule, PodPeer, Subject};
use crate::cluster::selector::{Keys, matches};

pub(super) enum Outcome {
    /// An Allow or Deny rule matched.
    Decided(Decision),
    /// A Pass rule matched: NetworkPolicies decide.
    Passed(String),
    /// Some policy selects the pod but none of its rules matched.
    Selected,
    /// No policy selects the pod.
    None,
}

fn selects(ev: &Evaluator, subject: &Subject, pod: &Pod) -> bool {
    let ns_labels = ev.cluster.namespace_labels(&pod.namespace);
    match (&subject.namespaces, &subject.pods) {
        (Some(ns), _) => matches(ns, ns_labels, Keys::Kubernetes),
        (None, Some(pods)) => pod_peer(ev, pods, pod),
        (None, None) => false,
    }
}

fn pod_peer(ev: &Evaluator, peer: &PodPeer, pod: &Pod) -> bool {
    let ns_labels = ev.cluster.namespace_labels(&pod.namespace);
    matches(&peer.namespace_selector, ns_labels, Keys::Kubernetes)
        && matches(&peer.pod_selector, &pod.labels, Keys::Kubernetes)
}

/// The first rule, in priority order, that matches the connection for `subject`.
pub(super) fn tier(
    ev: &Evaluator,
    policies: &[&AdminPolicy],
    conn: &Connection,
    dir: Direction,
    subject: &Pod,
) -> Outcome {
    let mut outcome = Outcome::None;
    for policy in policies {
        let rules = match dir {
            Direction::Egress => &policy.egress,
            Direction::Ingress => &policy.ingress,
        };
        if rules.is_empty() || !selects(ev, &policy.subject, subject) {
            continue;
        }
        outcome = Outcome::Selected;
        for (i, rule) in rules.iter().enumerate() {
            let ports_ok = rule
                .ports
                .as_ref()
                .is_none_or(|ports| ports.iter().any(|p| port_matches(p, conn)));
            let peer_ok = rule.to.iter().any(|p| peer_matches(ev, p, conn, dir));
            if !(ports_ok && peer_ok) {
                continue;
            }
            let name = rule_name(policy, dir, i, rule);
            let layer = Layer::AdminNetworkPolicy;
            return match rule.action.as_str() {
                "Allow" => Outcome::Decided(super::allow(layer, Some(name), "allowed".into())),
                "Pass" if !policy.baseline => Outcome::Passed(name),
                "Deny" => {
                    let reason = format!("denied by {name}");
                    Outcome::Decided(super::deny(layer, Some(name), reason))
                }
                // An action this model does not know: the rule is skipped, as invalid.
                _ => continue,
            };
        }
    }
    outcome
}

/// How answers name a rule: `AdminNetworkPolicy name egress[0] (rule-name)`.
pub(super) fn rule_name(
    policy: &AdminPolicy,
    dir: Direction,
    i: usize,
    rule: &AdminRule,
) -> String {
    match rule.name.as_str() {
        "" => format!("{} {}[{i}]", policy.title(), dir.as_str()),
        n => format!("{} {}[{i}] ({n})", policy.title(), dir.as_str()),
    }
}

fn port_matches(p: &AdminPort, conn: &Connection) -> bool {
    let Some(port) = conn.port else {
        return true;
    };
    let port = i32::from(port);
    if let Some(n) = &p.port_number {
        return protocol_is(n.protocol.as_deref(), "TCP", conn.protocol) && n.port == port;
    }
    if let Some(r) = &p.port_range {
        return protocol_is(r.protocol.as_deref(), "TCP", conn.protocol)
            && (r.start..=r.end).contains(&port);
    }
    if let Some(name) = &p.named_port {
        let dest = conn.dest_pod();
        return dest.and_then(|d| d.named_port(name, conn.protocol.as_str())) == Some(port as u16);
    }
    false
}

fn peer_matches(ev: &Evaluator, peer: &AdminPeer, conn: &Connection, dir: Direction) -> bool {
    let (pod, ip) = conn.peer(dir);
    if let Some(networks) = &peer.networks {
        return ip.is_some_and(|ip| networks.iter().any(|n| in_cidr(ip, n, &[])));
    }
    if let Some(domains) = &peer.domain_names {
        return dir == Direction::Egress
            && pod.is_none()
            && conn
                .name
                .is_some_and(|name| domains.iter().any(|d| admin_domain(d, name)));
    }
    let Some(pod) = pod else {
        return false;
    };
    if let Some(ns) = &peer.namespaces {
        return matches(
            ns,
            ev.cluster.namespace_labels(&pod.namespace),
            Keys::Kubernetes,
        );
    }
    if let Some(pods) = &peer.pods {
        return pod_peer(ev, pods, pod);
    }
    // `nodes` peers need Node objects, which the model does not hold.
    false
}
