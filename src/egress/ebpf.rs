//! What a socket call seen by the eBPF source means: a connection (or UDP send) by a pod's
//! process to an address outside the cluster. The pod comes from the cgroup, not the address,
//! so the stage attributes it by UID; processes of the node itself are not pods' egress.

use std::net::IpAddr;

use time::OffsetDateTime;

use super::{Judge, Judgement, Times};
use crate::event::{Endpoint, Fact, Observation, Protocol, SourceKind};

impl Judge {
    pub(super) fn socket(
        &self,
        own: Option<OffsetDateTime>,
        times: &Times<'_>,
        protocol: Protocol,
        dst: IpAddr,
        dport: u16,
        in_pod: bool,
    ) -> Judgement {
        // A v4 peer of an IPv6 socket arrives mapped (::ffff:a.b.c.d).
        let dst = dst.to_canonical();
        if dst.is_unspecified() || self.classifier.ip_is_internal(dst) {
            return Judgement::Internal;
        }
        if !in_pod {
            return Judgement::NotEgress("host_process");
        }
        Judgement::External(Observation {
            time: times.pick(own),
            kind: SourceKind::Ebpf,
            src: Endpoint::default(),
            fact: Fact::Connection {
                dst_ip: Some(dst),
                dst_port: Some(dport).filter(|&p| p != 0),
                proto: protocol,
                names: Vec::new(),
            },
            verdict: None,
            count: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::finding::Finding;

    fn judged(dst: &str, pod: bool) -> Judgement {
        let judge = crate::config::Settings::load(None)
            .unwrap()
            .classify
            .judge();
        let finding = Finding::Socket {
            time_ns: 1_700_000_000_000_000_000,
            protocol: Protocol::Tcp,
            dst: dst.parse().unwrap(),
            dport: 443,
            pod_uid: pod.then(|| "u".into()),
            container: None,
            pid: 1,
            command: "curl".into(),
        };
        let times = Times {
            wrapper: None,
            read: OffsetDateTime::UNIX_EPOCH,
        };
        judge.finding(&finding, &times)
    }

    #[test]
    fn pods_external_addresses_only() {
        let Judgement::External(obs) = judged("::ffff:198.51.100.7", true) else {
            panic!()
        };
        assert_eq!(obs.kind, SourceKind::Ebpf);
        assert_eq!(obs.time.unix_timestamp(), 1_700_000_000);
        assert_eq!(
            obs.fact,
            Fact::Connection {
                dst_ip: Some("198.51.100.7".parse().unwrap()),
                dst_port: Some(443),
                proto: Protocol::Tcp,
                names: vec![],
            }
        );
        assert_eq!(judged("10.96.0.1", true), Judgement::Internal);
        assert_eq!(judged("127.0.0.1", true), Judgement::Internal);
        assert_eq!(judged("0.0.0.0", true), Judgement::Internal);
        assert_eq!(
            judged("198.51.100.7", false),
            Judgement::NotEgress("host_process")
        );
    }
}
