//! What the cluster's policies allow, per connection: the evaluator behind `policy query`
//! and `policy check`. Layer by layer, as the data path decides: AdminNetworkPolicies by
//! priority (Allow, Deny, Pass), then NetworkPolicies (with Cilium's policies where Cilium
//! enforces them), then the BaselineAdminNetworkPolicy; Istio's outbound policy for pods
//! with a sidecar; for a pod destination, the ingress side as well. Every answer names the
//! rule that decided it, or why nothing allows it.

mod admin;
pub mod allowances;
pub mod check;
mod cilium;
pub mod generate;
mod istio;
pub mod names;
mod netpol;
pub mod query;
pub mod render;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::cluster::{AdminPolicy, Cluster, Pod, Service, TargetPort};
use crate::event::Protocol;

/// The far end of a connection.
#[derive(Debug, Clone, Copy)]
pub enum Target<'c> {
    /// A pod of the cluster (after a Service's DNAT), at one of its addresses.
    Pod { pod: &'c Pod, ip: Option<IpAddr> },
    /// An address no pod holds; None when only a name is known.
    External(Option<IpAddr>),
}

/// One connection to judge: from a pod (or a workload's pod template) to a target.
#[derive(Debug, Clone, Copy)]
pub struct Connection<'c, 'q> {
    pub from: &'c Pod,
    pub to: Target<'c>,
    /// The DNS name the source asked for, when known: what FQDN and host rules match.
    pub name: Option<&'q str>,
    /// None: not observed (a lookup without a connection); port rules then match any port.
    pub port: Option<u16>,
    pub protocol: Protocol,
}

impl Connection<'_, '_> {
    /// `TCP/443`, or `TCP` when the port is unknown.
    fn port_text(&self) -> String {
        let protocol = self.protocol.as_str().to_ascii_uppercase();
        match self.port {
            Some(port) => format!("{protocol}/{port}"),
            None => protocol,
        }
    }

    /// The destination as a reason names it.
    fn to_text(self) -> String {
        let ip = match self.to {
            Target::Pod { pod, .. } => return format!("pod {}", pod.qualified()),
            Target::External(ip) => ip,
        };
        match (self.name, ip) {
            (Some(name), Some(ip)) => format!("{name} ({ip})"),
            (Some(name), None) => name.to_string(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => "an unknown address".into(),
        }
    }

    /// The far side a rule for `dir` judges: the destination for egress, the source for
    /// ingress; its pod (None outside the cluster) and address.
    fn peer(&self, dir: Direction) -> (Option<&Pod>, Option<IpAddr>) {
        match (dir, self.to) {
            (Direction::Egress, Target::Pod { pod, ip }) => (Some(pod), ip),
            (Direction::Egress, Target::External(ip)) => (None, ip),
            (Direction::Ingress, _) => (Some(self.from), self.from.ips.first().copied()),
        }
    }

    fn dest_pod(&self) -> Option<&Pod> {
        match self.to {
            Target::Pod { pod, .. } => Some(pod),
            Target::External(_) => None,
        }
    }
}

/// Which side of a connection a rule is judged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Egress,
    Ingress,
}

/// Who decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// hostNetwork pods and traffic to the pod's own node: outside pod policies.
    Host,
    AdminNetworkPolicy,
    /// Kubernetes NetworkPolicies, with Cilium's policies where Cilium enforces them.
    NetworkPolicy,
    BaselineAdminNetworkPolicy,
    /// Nothing selects the pod in this direction: allowed, and would break under default deny.
    Unrestricted,
    Istio,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Host => "host",
            Layer::AdminNetworkPolicy => "admin_network_policy",
            Layer::NetworkPolicy => "network_policy",
            Layer::BaselineAdminNetworkPolicy => "baseline_admin_network_policy",
            Layer::Unrestricted => "unrestricted",
            Layer::Istio => "istio",
        }
    }
}

/// One layer's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub layer: Layer,
    pub allowed: bool,
    /// The deciding rule: `NetworkPolicy shop/cart-egress egress[0]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Further rules that allow it too (policies are additive).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    pub reason: String,
}

/// One direction's answer: allowed when every layer that applies allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub allowed: bool,
    /// Some policy selects the pod in this direction.
    pub isolated: bool,
    pub decisions: Vec<Decision>,
    /// What the answer depends on: the CNI, ports not observed, rules not modelled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Side {
    fn new(isolated: bool, decisions: Vec<Decision>, mut notes: Vec<String>) -> Side {
        notes.sort();
        notes.dedup();
        Side {
            allowed: decisions.iter().all(|d| d.allowed),
            isolated,
            decisions,
            notes,
        }
    }
}

/// The answer for one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub allowed: bool,
    pub egress: Side,
    /// For a pod destination: its ingress side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Side>,
}

/// What a NetworkPolicy-like layer found: who isolates the pod, which rule allows or
/// denies, and hints for a denial's reason.
#[derive(Debug, Default)]
struct Found {
    isolating: Vec<String>,
    /// Every rule that allows it, in policy order.
    allowed_by: Vec<String>,
    denied_by: Option<String>,
    hints: Vec<String>,
    notes: Vec<String>,
}

impl Found {
    fn merge(&mut self, other: Found) {
        self.isolating.extend(other.isolating);
        self.allowed_by.extend(other.allowed_by);
        self.denied_by = self.denied_by.take().or(other.denied_by);
        self.hints.extend(other.hints);
        self.notes.extend(other.notes);
    }
}

/// Whether a NetworkPolicy restricts egress: `policyTypes` names Egress, or (omitted) it has
/// egress rules.
pub fn restricts_egress(policy: &k8s_openapi::api::networking::v1::NetworkPolicy) -> bool {
    netpol::restricts(policy, Direction::Egress)
}

/// A Service's backend pod and the port a connection reaches on it.
pub type Backend<'c> = (&'c Pod, Option<u16>);

/// The cluster's policies, indexed for many queries.
pub struct Evaluator<'c> {
    pub cluster: &'c Cluster,
    /// AdminNetworkPolicies by priority, then name (equal priorities are undefined upstream).
    admin: Vec<&'c AdminPolicy>,
    baseline: Option<&'c AdminPolicy>,
    pods_by_ip: HashMap<IpAddr, &'c Pod>,
    services_by_ip: HashMap<IpAddr, &'c Service>,
    /// Cilium policies exist: Cilium is the CNI and enforces NetworkPolicies with them.
    cilium: bool,
}

impl<'c> Evaluator<'c> {
    pub fn new(cluster: &'c Cluster) -> Self {
        let mut admin: Vec<&AdminPolicy> = cluster
            .admin_policies
            .iter()
            .filter(|p| !p.baseline)
            .collect();
        admin.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
        let baseline = cluster
            .admin_policies
            .iter()
            .find(|p| p.baseline && p.name == "default");
        let mut pods_by_ip = HashMap::new();
        for pod in cluster
            .pods
            .iter()
            .filter(|p| !p.finished && !p.host_network)
        {
            for ip in &pod.ips {
                pods_by_ip.insert(*ip, pod);
            }
        }
        let mut services_by_ip = HashMap::new();
        for service in &cluster.services {
            for ip in &service.cluster_ips {
                services_by_ip.insert(*ip, service);
            }
        }
        Evaluator {
            cluster,
            admin,
            baseline,
            pods_by_ip,
            services_by_ip,
            cilium: !cluster.cilium_policies.is_empty(),
        }
    }

    /// What an address is: a pod's, else outside.
    pub fn target(&self, ip: IpAddr) -> Target<'c> {
        match self.pods_by_ip.get(&ip) {
            Some(pod) => Target::Pod { pod, ip: Some(ip) },
            None => Target::External(Some(ip)),
        }
    }

    /// A Service's cluster IP and port after DNAT: a backend pod and its target port.
    pub fn through_service(
        &self,
        ip: IpAddr,
        port: Option<u16>,
        protocol: Protocol,
    ) -> Option<(&'c Service, Option<Backend<'c>>)> {
        let service = *self.services_by_ip.get(&ip)?;
        let selector = service.selector.as_ref();
        let backend = self.cluster.pods.iter().find(|p| {
            !p.template
                && !p.finished
                && p.namespace == service.namespace
                && selector.is_some_and(|s| p.has_labels(s))
        });
        let backend = backend.map(|pod| {
            let mapped = port.and_then(|port| {
                let sp = service.ports.iter().find(|sp| {
                    sp.port == port && sp.protocol.eq_ignore_ascii_case(protocol.as_str())
                })?;
                match &sp.target {
                    TargetPort::Number(n) => Some(*n),
                    TargetPort::Name(name) => pod.named_port(name, &sp.protocol),
                }
            });
            (pod, mapped.or(port))
        });
        Some((service, backend))
    }

    /// Judges one connection: its egress side and, for a pod destination, its ingress side.
    pub fn evaluate(&self, conn: &Connection) -> Verdict {
        let egress = self.egress(conn);
        let ingress = conn.dest_pod().map(|dest| self.ingress(conn, dest));
        Verdict {
            allowed: egress.allowed && ingress.as_ref().is_none_or(|s| s.allowed),
            egress,
            ingress,
        }
    }

    /// The policies that isolate the pod for egress (default deny: NetworkPolicies and
    /// Cilium's); empty: it may connect anywhere no admin policy denies.
    pub fn egress_isolation(&self, pod: &Pod) -> Vec<String> {
        if pod.host_network {
            return Vec::new();
        }
        let mut by = netpol::isolating(self, pod, Direction::Egress);
        by.extend(cilium::isolating(self, pod, Direction::Egress));
        by
    }

    fn egress(&self, conn: &Connection) -> Side {
        let from = conn.from;
        if from.host_network {
            let d = host("hostNetwork pod: pod policies do not select it");
            return Side::new(false, vec![d], vec![cni_note_host()]);
        }
        if let Target::External(Some(ip)) = conn.to
            && from.host_ip == Some(ip)
        {
            let d = host("traffic to the pod's own node is allowed");
            return Side::new(false, vec![d], vec![cni_note_host()]);
        }
        let mut notes = Vec::new();
        let (tier, isolated) = self.kubernetes(conn, Direction::Egress, from, &mut notes);
        let mut decisions = vec![tier];
        if let Some(d) = istio::egress(self, conn, &mut notes) {
            decisions.push(d);
        }
        if conn.port.is_none() {
            notes.push("no port observed: port rules were taken to match".into());
        }
        Side::new(isolated, decisions, notes)
    }

    fn ingress(&self, conn: &Connection, dest: &Pod) -> Side {
        if dest.host_network {
            let d = host("hostNetwork pod: pod policies do not select it");
            return Side::new(false, vec![d], vec![cni_note_host()]);
        }
        let mut notes = Vec::new();
        let (tier, isolated) = self.kubernetes(conn, Direction::Ingress, dest, &mut notes);
        Side::new(isolated, vec![tier], notes)
    }

    /// The Kubernetes tiers for `subject` (the source for egress, the destination for
    /// ingress): ANP by priority, then NetworkPolicies (and Cilium's), then the BANP.
    fn kubernetes(
        &self,
        conn: &Connection,
        dir: Direction,
        subject: &Pod,
        notes: &mut Vec<String>,
    ) -> (Decision, bool) {
        // Admin policies decide by their rules; selecting a pod does not isolate it.
        let mut admin_selected = false;
        let outcome = admin::tier(self, &self.admin, conn, dir, subject);
        if self.cilium && !matches!(outcome, admin::Outcome::None) {
            notes.push("CNI-dependent: Cilium does not enforce AdminNetworkPolicies".into());
        }
        match outcome {
            admin::Outcome::Decided(d) => return (d, false),
            admin::Outcome::Passed(rule) => {
                notes.push(format!("passed to NetworkPolicies by {rule}"));
            }
            admin::Outcome::Selected => admin_selected = true,
            admin::Outcome::None => {}
        }
        let mut found = netpol::judge(self, conn, dir, subject);
        if self.cilium {
            found.merge(cilium::judge(self, conn, dir, subject));
        }
        notes.append(&mut found.notes);
        if let Some(rule) = found.denied_by {
            let reason = format!("denied by {rule}");
            return (deny(Layer::NetworkPolicy, Some(rule), reason), true);
        }
        if !found.isolating.is_empty() {
            found.isolating.sort();
            found.isolating.dedup();
            let by = found.isolating.join(", ");
            let mut rules = found.allowed_by.into_iter();
            let Some(rule) = rules.next() else {
                let (to, peer) = match dir {
                    Direction::Egress => ("to", conn.to_text()),
                    Direction::Ingress => ("from", format!("pod {}", conn.from.qualified())),
                };
                let mut reason = format!(
                    "isolated by {by}; no rule allows {} {to} {peer}",
                    conn.port_text()
                );
                for hint in found.hints {
                    reason.push_str("; ");
                    reason.push_str(&hint);
                }
                return (deny(Layer::NetworkPolicy, None, reason), true);
            };
            let mut d = allow(
                Layer::NetworkPolicy,
                Some(rule),
                format!("isolated by {by}"),
            );
            d.also = rules.collect();
            return (d, true);
        }
        if let Some(baseline) = self.baseline {
            match admin::tier(self, &[baseline], conn, dir, subject) {
                admin::Outcome::Decided(mut d) => {
                    d.layer = Layer::BaselineAdminNetworkPolicy;
                    return (d, false);
                }
                admin::Outcome::Selected | admin::Outcome::Passed(_) => admin_selected = true,
                admin::Outcome::None => {}
            }
        }
        let mut reason = format!(
            "no {} policy isolates {}",
            dir.as_str(),
            subject.qualified()
        );
        if admin_selected {
            reason.push_str("; no admin policy rule matched");
        }
        (allow(Layer::Unrestricted, None, reason), false)
    }
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
        }
    }
}

fn allow(layer: Layer, rule: Option<String>, reason: String) -> Decision {
    Decision {
        layer,
        allowed: true,
        rule,
        also: Vec::new(),
        reason,
    }
}

fn deny(layer: Layer, rule: Option<String>, reason: String) -> Decision {
    Decision {
        layer,
        allowed: false,
        rule,
        also: Vec::new(),
        reason,
    }
}

fn host(reason: &str) -> Decision {
    allow(Layer::Host, None, reason.into())
}

fn cni_note_host() -> String {
    "CNI-dependent: node and hostNetwork traffic is outside NetworkPolicy; Cilium host policies may still apply".into()
}

/// Whether a policy port's protocol (`default` when omitted) is the connection's.
fn protocol_is(declared: Option<&str>, default: &str, protocol: Protocol) -> bool {
    let declared = declared.unwrap_or(default);
    declared.eq_ignore_ascii_case("ANY") || declared.eq_ignore_ascii_case(protocol.as_str())
}

/// Whether `ip` is in `cidr` (a network or a bare address) and in none of `except`.
fn in_cidr(ip: IpAddr, cidr: &str, except: &[String]) -> bool {
    let net = |s: &str| {
        s.parse::<ipnet::IpNet>()
            .ok()
            .or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
    };
    net(cidr).is_some_and(|n| n.contains(&ip))
        && !except
            .iter()
            .any(|e| net(e).is_some_and(|n| n.contains(&ip)))
}

/// Whether a CIDR rule matches every address (so also one only known by name).
fn is_everything(cidr: &str, except: &[String]) -> bool {
    except.is_empty()
        && cidr
            .parse::<ipnet::IpNet>()
            .is_ok_and(|n| n.prefix_len() == 0)
}
