//! Kubernetes NetworkPolicy (networking.k8s.io/v1): isolation by `policyTypes` (inferred when
//! omitted), additive rules, peers (ipBlock with except, podSelector, namespaceSelector, both
//! ANDed), ports (protocol TCP by default, endPort inclusive, named ports on the destination
//! pod).

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Connection, Direction, Evaluator, Found, in_cidr, is_everything, protocol_is};
use crate::cluster::selector::{Keys, matches};
use crate::cluster::{Pod, qualified};

/// Whether the policy restricts `dir`: `policyTypes` names it, or (omitted) Ingress always
/// and Egress when it has egress rules.
pub(super) fn restricts(policy: &NetworkPolicy, dir: Direction) -> bool {
    let Some(spec) = &policy.spec else {
        return false;
    };
    match (&spec.policy_types, dir) {
        (Some(types), Direction::Egress) => types.iter().any(|t| t == "Egress"),
        (Some(types), Direction::Ingress) => types.iter().any(|t| t == "Ingress"),
        (None, Direction::Egress) => spec.egress.is_some(),
        (None, Direction::Ingress) => true,
    }
}

/// Policies of the pod's namespace that select it and restrict `dir`.
fn selecting<'a>(
    ev: &'a Evaluator,
    pod: &'a Pod,
    dir: Direction,
) -> impl Iterator<Item = &'a NetworkPolicy> + 'a {
    ev.cluster.network_policies.iter().filter(move |p| {
        p.metadata.namespace.as_deref() == Some(pod.namespace.as_str())
            && restricts(p, dir)
            && p.spec.as_ref().is_some_and(|s| {
                s.pod_selector
                    .as_ref()
                    .is_none_or(|sel| matches(sel, &pod.labels, Keys::Kubernetes))
            })
    })
}

pub(super) fn isolating(ev: &Evaluator, pod: &Pod, dir: Direction) -> Vec<String> {
    selecting(ev, pod, dir)
        .map(|p| format!("NetworkPolicy {}", qualified(&p.metadata)))
        .collect()
}

/// A rule's peers (`to` or `from`) and ports; None: every peer, every port.
type Rule<'a> = (
    Option<&'a Vec<NetworkPolicyPeer>>,
    Option<&'a Vec<NetworkPolicyPort>>,
);

pub(super) fn judge(ev: &Evaluator, conn: &Connection, dir: Direction, subject: &Pod) -> Found {
    let mut found = Found::default();
    let mut policies: Vec<&NetworkPolicy> = selecting(ev, subject, dir).collect();
    policies.sort_by_key(|p| qualified(&p.metadata));
    for policy in policies {
        let name = qualified(&policy.metadata);
        found.isolating.push(format!("NetworkPolicy {name}"));
        let Some(spec) = &policy.spec else { continue };
        let policy_ns = policy.metadata.namespace.as_deref().unwrap_or_default();
        let rules: Vec<Rule> = match dir {
            Direction::Egress => spec
                .egress
                .iter()
                .flatten()
                .map(|r| (r.to.as_ref(), r.ports.as_ref()))
                .collect(),
            Direction::Ingress => spec
                .ingress
                .iter()
                .flatten()
                .map(|r| (r.from.as_ref(), r.ports.as_ref()))
                .collect(),
        };
        for (i, (peers, ports)) in rules.into_iter().enumerate() {
            let ports_ok = ports.is_none_or(|ports| {
                ports.is_empty() || ports.iter().any(|p| port_matches(p, conn))
            });
            if !ports_ok {
                continue;
            }
            let peer_ok = peers.is_none_or(|peers| {
                peers.is_empty()
                    || peers
                        .iter()
                        .any(|p| peer_matches(ev, p, policy_ns, conn, dir, &mut found.notes))
            });
            if peer_ok {
                found
                    .allowed_by
                    .push(format!("NetworkPolicy {name} {}[{i}]", dir.as_str()));
            }
        }
    }
    found
}

/// A rule's port against the connection's; a named port resolves on the destination pod
/// (so it never matches an address outside).
fn port_matches(p: &NetworkPolicyPort, conn: &Connection) -> bool {
    if !protocol_is(p.protocol.as_deref(), "TCP", conn.protocol) {
        return false;
    }
    let Some(port) = conn.port else {
        return true;
    };
    match &p.port {
        None => true,
        Some(IntOrString::Int(n)) => match p.end_port {
            Some(end) => (*n..=end).contains(&i32::from(port)),
            None => i32::from(port) == *n,
        },
        Some(IntOrString::String(name)) => {
            conn.dest_pod()
                .and_then(|d| d.named_port(name, conn.protocol.as_str()))
                == Some(port)
        }
    }
}

/// Whether the far side (the destination for egress, the source for ingress) is the peer.
fn peer_matches(
    ev: &Evaluator,
    peer: &NetworkPolicyPeer,
    policy_ns: &str,
    conn: &Connection,
    dir: Direction,
    notes: &mut Vec<String>,
) -> bool {
    let (pod, ip) = conn.peer(dir);
    if let Some(block) = &peer.ip_block {
        let except = block.except.as_deref().unwrap_or_default();
        return match (pod, ip) {
            (None, Some(ip)) => in_cidr(ip, &block.cidr, except),
            (None, None) => is_everything(&block.cidr, except),
            (Some(_), ip) => {
                if ip.is_some_and(|ip| in_cidr(ip, &block.cidr, except)) {
                    notes.push(format!(
                        "CNI-dependent: ipBlock {} covers a pod IP; judged as not matching (Cilium never matches pod IPs by ipBlock, some CNIs do)",
                        block.cidr
                    ));
                }
                false
            }
        };
    }
    let Some(pod) = pod else {
        return false;
    };
    let ns_ok = match &peer.namespace_selector {
        Some(sel) => matches(
            sel,
            ev.cluster.namespace_labels(&pod.namespace),
            Keys::Kubernetes,
        ),
        None => pod.namespace == policy_ns,
    };
    let pod_ok = peer
        .pod_selector
        .as_ref()
        .is_none_or(|sel| matches(sel, &pod.labels, Keys::Kubernetes));
    ns_ok && pod_ok
}
