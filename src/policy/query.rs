//! `policy query`: connections asked as JSON lines, answered one JSON line each, like
//! `cilium policy trace` for many connections at once. A question naming something the
//! cluster does not hold is answered with an `error`, never a failure.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Connection, Evaluator, Target, Verdict};
use crate::cluster::Pod;
use crate::event::Protocol;

/// One question: `from` a pod or workload (`NS/NAME`), `to` an address or a pod or workload.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Query {
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// TCP (the default), UDP or SCTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The DNS name the source asked for: what FQDN and host rules match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The question with its answer.
#[derive(Debug, Serialize)]
pub struct Answer {
    #[serde(flatten)]
    pub query: Query,
    /// The pod judged for `from` (a workload's first running pod, or its template).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_pod: Option<String>,
    /// The pod reached, for a pod destination (after a Service's DNAT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_pod: Option<String>,
    /// The Service whose cluster IP `to` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Pods by `namespace/name` and by workload, for answering many questions.
pub struct Resolver<'c> {
    pub evaluator: Evaluator<'c>,
    by_name: HashMap<(&'c str, &'c str), Vec<&'c Pod>>,
}

pub fn parse_protocol(text: Option<&str>) -> Result<Protocol, String> {
    match text.map(str::to_ascii_uppercase).as_deref() {
        None | Some("TCP") => Ok(Protocol::Tcp),
        Some("UDP") => Ok(Protocol::Udp),
        Some("SCTP") => Ok(Protocol::Sctp),
        Some(other) => Err(format!("protocol {other:?}: use TCP, UDP or SCTP")),
    }
}

impl<'c> Resolver<'c> {
    pub fn new(evaluator: Evaluator<'c>) -> Self {
        let mut by_name: HashMap<(&str, &str), Vec<&Pod>> = HashMap::new();
        let mut workloads: HashMap<(&str, &str), Vec<&Pod>> = HashMap::new();
        for pod in &evaluator.cluster.pods {
            if !pod.template {
                by_name
                    .entry((&pod.namespace, &pod.name))
                    .or_default()
                    .push(pod);
            }
            workloads
                .entry((&pod.namespace, &pod.workload.name))
                .or_default()
                .push(pod);
        }
        // A workload's running pods stand for it; its template only when it has none.
        for (key, mut pods) in workloads {
            if pods.iter().any(|p| !p.template) {
                pods.retain(|p| !p.template);
            }
            pods.sort_by_key(|p| (p.finished, p.name.clone()));
            by_name.entry(key).or_insert(pods);
        }
        Resolver { evaluator, by_name }
    }

    /// The pod `NS/NAME` names (a pod, else a workload; `NS/KIND/NAME` a workload of that
    /// kind), or a pod's address.
    pub fn pod(&self, text: &str) -> Result<&'c Pod, String> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return self.at(ip);
        }
        let Some((ns, name)) = text.split_once('/') else {
            return Err(format!("{text:?} is neither NAMESPACE/NAME nor an address"));
        };
        match name.split_once('/') {
            Some((kind, name)) => self.named(ns, Some(kind), name),
            None => self.named(ns, None, name),
        }
    }

    /// The pod holding `ip`.
    pub fn at(&self, ip: IpAddr) -> Result<&'c Pod, String> {
        match self.evaluator.target(ip) {
            Target::Pod { pod, .. } => Ok(pod),
            Target::External(_) => Err(format!("no pod has the address {ip}")),
        }
    }

    /// The pod `name` of namespace `ns`, else a pod of its workload `name` (of `kind`, when
    /// given).
    pub fn named(&self, ns: &str, kind: Option<&str>, name: &str) -> Result<&'c Pod, String> {
        self.by_name
            .get(&(ns, name))
            .and_then(|pods| {
                pods.iter()
                    .find(|p| kind.is_none_or(|k| p.workload.kind.eq_ignore_ascii_case(k)))
            })
            .copied()
            .ok_or_else(|| {
                let text = match kind {
                    Some(kind) => format!("{ns}/{kind}/{name}"),
                    None => format!("{ns}/{name}"),
                };
                format!("no pod or workload {text} in the cluster objects read")
            })
    }

    pub fn answer(&self, query: Query) -> Answer {
        let mut answer = Answer {
            query,
            from_pod: None,
            to_pod: None,
            service: None,
            verdict: None,
            error: None,
        };
        if let Err(e) = self.judge(&mut answer) {
            answer.error = Some(e);
        }
        answer
    }

    fn judge(&self, answer: &mut Answer) -> Result<(), String> {
        let q = &answer.query;
        let protocol = parse_protocol(q.protocol.as_deref())?;
        let from = self.pod(&q.from)?;
        answer.from_pod = Some(from.qualified());
        let mut port = q.port;
        let to = match q.to.parse::<IpAddr>() {
            Ok(ip) => match self.evaluator.through_service(ip, port, protocol) {
                Some((service, backend)) => {
                    answer.service = Some(format!("{}/{}", service.namespace, service.name));
                    let (pod, mapped) = backend.ok_or_else(|| {
                        format!(
                            "Service {}/{} has no pod behind it",
                            service.namespace, service.name
                        )
                    })?;
                    port = mapped;
                    Target::Pod {
                        pod,
                        ip: pod.ips.first().copied(),
                    }
                }
                None => self.evaluator.target(ip),
            },
            Err(_) => {
                let pod = self.pod(&q.to)?;
                Target::Pod {
                    pod,
                    ip: pod.ips.first().copied(),
                }
            }
        };
        if let Target::Pod { pod, .. } = to {
            answer.to_pod = Some(pod.qualified());
        }
        let conn = Connection {
            from,
            to,
            name: q.name.as_deref(),
            port,
            protocol,
        };
        answer.verdict = Some(self.evaluator.evaluate(&conn));
        Ok(())
    }
}

/// One question and its answer for people.
pub fn readable(answer: &Answer) -> String {
    use std::fmt::Write as _;
    let q = &answer.query;
    let mut out = format!("{} -> {}", q.from, q.to);
    if let Some(port) = q.port {
        let _ = write!(out, ":{port}");
    }
    let _ = write!(
        out,
        "/{}",
        q.protocol.as_deref().unwrap_or("TCP").to_ascii_uppercase()
    );
    if let Some(name) = &q.name {
        let _ = write!(out, " ({name})");
    }
    let Some(v) = &answer.verdict else {
        let _ = writeln!(
            out,
            ": ERROR\n  {}",
            answer.error.as_deref().unwrap_or_default()
        );
        return out;
    };
    let _ = writeln!(out, ": {}", if v.allowed { "ALLOWED" } else { "DENIED" });
    for (pod, what) in [
        (&answer.from_pod, "from"),
        (&answer.to_pod, "to"),
        (&answer.service, "via Service"),
    ] {
        if let Some(pod) = pod {
            let _ = writeln!(out, "  {what} {pod}");
        }
    }
    for (side, name) in [(Some(&v.egress), "egress"), (v.ingress.as_ref(), "ingress")] {
        let Some(side) = side else { continue };
        for d in &side.decisions {
            let verdict = if d.allowed { "allowed" } else { "denied" };
            let layer = d.layer.as_str();
            let _ = write!(out, "  {name:<7} {verdict:<7} {layer}");
            if let Some(rule) = &d.rule {
                let _ = write!(out, ": {rule}");
            }
            let _ = writeln!(out, " ({})", d.reason);
        }
        for note in &side.notes {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    out
}
