use super::*;
use crate::event::Protocol;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

fn client(ip: &str) -> Endpoint {
    Endpoint {
        ip: Some(ip.parse().unwrap()),
        ..Default::default()
    }
}

fn pod_of(workload: &str, pod: &str) -> Endpoint {
    Endpoint {
        namespace: Some("shop".into()),
        pod: Some(pod.into()),
        workload: Some(workload.into()),
        workload_kind: Some("Deployment".into()),
        ip: Some("10.244.0.5".parse().unwrap()),
    }
}

fn dns(src: Endpoint, name: &str, secs: i64) -> Observation {
    Observation {
        time: at(secs),
        kind: SourceKind::Coredns,
        src,
        fact: Fact::Dns { qname: name.into() },
        verdict: None,
        count: 1,
    }
}

fn conn(src: Endpoint, ip: &str, port: u16, names: &[&str], secs: i64) -> Observation {
    Observation {
        time: at(secs),
        kind: SourceKind::Envoy,
        src,
        fact: Fact::Connection {
            dst_ip: Some(ip.parse().unwrap()),
            dst_port: Some(port),
            proto: Protocol::Tcp,
            names: names.iter().map(|n| n.to_string()).collect(),
        },
        verdict: None,
        count: 1,
    }
}

#[test]
fn counts_edges_with_their_first_and_last_sightings() {
    let mut inv = Inventory::new(10, 10, 10);
    for (ip, secs, track, expected) in [
        ("10.0.0.1", 5, true, Recorded::New),
        ("10.0.0.1", 3, true, Recorded::Updated),
        ("10.0.0.1", 9, true, Recorded::Updated),
        ("10.0.0.2", 1, false, Recorded::New),
    ] {
        assert_eq!(
            inv.record(dns(client(ip), "a.com", secs), track).0,
            expected
        );
    }
    let all = inv.destinations().collect::<Vec<_>>();
    assert_eq!(
        (all.len(), all[0].source_count, all[0].usage.count),
        (1, 2, 4)
    );
    let e = &all[0].edges[0];
    assert_eq!((e.usage.count, e.usage.lookups), (3, 3));
    assert_eq!((e.usage.first_seen, e.usage.last_seen), (at(3), at(9)));
    assert_eq!(
        (all[0].usage.first_seen, all[0].usage.last_seen),
        (at(1), at(9))
    );
    let changed = inv.take_changed();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].edge.usage.count, 3);
    assert!(inv.take_changed().is_empty());
}

#[test]
fn full_edges_fold_onto_the_destination_which_is_never_lost() {
    let mut inv = Inventory::new(100, 2, 10);
    inv.record(dns(client("10.0.0.1"), "a.com", 1), true);
    inv.record(dns(client("10.0.0.2"), "a.com", 1), true);
    // Edges are full: a new source of a known destination, and a new destination.
    let (r, _) = inv.record(dns(client("10.0.0.3"), "a.com", 2), true);
    assert_eq!(r, Recorded::Folded);
    let (r, update) = inv.record(conn(client("10.0.0.3"), "198.51.100.7", 443, &[], 3), true);
    assert_eq!(r, Recorded::Folded);
    let update = update.expect("a new folded edge is news to the sinks");
    assert_eq!(update.destination.to_string(), "198.51.100.7");
    assert!(update.edge.source.other_sources);
    assert_eq!(
        inv.record(conn(client("10.0.0.4"), "198.51.100.7", 443, &[], 4), true)
            .0,
        Recorded::Folded
    );
    let all = inv.destinations().collect::<Vec<_>>();
    assert_eq!(all.len(), 2);
    let ip = &all[1];
    assert_eq!(ip.destination, DestKey::Ip("198.51.100.7".parse().unwrap()));
    assert_eq!((ip.usage.count, ip.source_count, ip.edges.len()), (2, 0, 1));
    assert_eq!(ip.usage.ports[0].port, Some(443));
    let a = &all[0];
    assert_eq!((a.usage.count, a.source_count, a.edges.len()), (3, 2, 3));
    assert_eq!(a.edges[2].source.key(), SourceKey::Other);
    // Destinations full: only then is a new one dropped.
    let mut small = Inventory::new(1, 10, 10);
    small.record(dns(client("10.0.0.1"), "a.com", 1), false);
    assert_eq!(
        small.record(dns(client("10.0.0.1"), "b.com", 1), false).0,
        Recorded::Dropped
    );
    assert_eq!(
        small.record(dns(client("10.0.0.9"), "a.com", 1), false).0,
        Recorded::New
    );
}

#[test]
fn lookups_and_connections_of_a_workload_are_one_edge_with_its_pods_and_ports() {
    let mut inv = Inventory::new(10, 10, 10);
    inv.record(dns(pod_of("cart", "cart-1"), "api.stripe.com", 1), false);
    for (pod, port) in [("cart-1", 443), ("cart-2", 443), ("cart-2", 8443)] {
        let obs = conn(
            pod_of("cart", pod),
            "203.0.113.40",
            port,
            &["api.stripe.com", "stripe.map.fastly.net"],
            2,
        );
        inv.record(obs, false);
    }
    for i in 0..MAX_PODS + 5 {
        inv.record(
            dns(pod_of("cart", &format!("cart-x{i}")), "api.stripe.com", 3),
            false,
        );
    }
    let all = inv.destinations().collect::<Vec<_>>();
    assert_eq!(all.len(), 1);
    let d = &all[0];
    assert_eq!(d.names.len(), 2);
    assert_eq!(d.ips, vec!["203.0.113.40".parse::<IpAddr>().unwrap()]);
    assert_eq!(d.edges.len(), 1);
    let e = &d.edges[0];
    assert_eq!(
        e.usage.evidence,
        vec![SourceKind::Coredns, SourceKind::Envoy]
    );
    assert_eq!(
        (e.usage.lookups, e.usage.count),
        (1 + MAX_PODS as u64 + 5, 19)
    );
    let ports: Vec<_> = e.usage.ports.iter().map(|p| (p.port, p.count)).collect();
    assert_eq!(ports, vec![(Some(443), 2), (Some(8443), 1)]);
    assert_eq!(e.source.workload.as_deref(), Some("cart"));
    assert_eq!(e.source.pods.len(), MAX_PODS);
    assert_eq!(e.source.other_pods, 7, "12 more pods, 5 of them listed");
    assert_eq!(e.source.ip, None, "a workload's pods have many IPs");
}

#[test]
fn ports_past_the_bound_are_counted() {
    let mut inv = Inventory::new(10, 10, 10);
    for port in 0..MAX_PORTS as u16 + 3 {
        inv.record(
            conn(client("10.0.0.1"), "198.51.100.1", 1000 + port, &[], 1),
            false,
        );
    }
    let e = &inv.destinations().collect::<Vec<_>>()[0].edges[0];
    assert_eq!(
        (e.usage.ports.len(), e.usage.other_ports, e.usage.count),
        (MAX_PORTS, 3, 35)
    );
}

#[test]
fn restores_what_it_wrote_and_merges_into_what_it_has() {
    let mut inv = Inventory::new(10, 3, 10);
    inv.record(dns(pod_of("cart", "cart-1"), "a.com", 1), false);
    inv.record(
        conn(pod_of("cart", "cart-2"), "198.51.100.1", 443, &["a.com"], 2),
        false,
    );
    let mut verdict = conn(client("10.0.0.9"), "198.51.100.2", 80, &[], 3);
    verdict.verdict = Some(Verdict::Dropped);
    inv.record(verdict, false);
    let pod = Endpoint {
        workload: None,
        workload_kind: None,
        ..pod_of("", "web-1")
    };
    inv.record(conn(pod, "198.51.100.2", 80, &[], 3), false);
    inv.record(conn(client("10.0.0.8"), "198.51.100.2", 80, &[], 4), false);
    let all = inv.destinations().collect::<Vec<_>>();
    let mut again = Inventory::new(10, 3, 10);
    let r = again.restore(all.clone());
    assert_eq!((r.edges, r.folded, r.dropped), (3, 1, 0));
    assert_eq!(again.destinations().collect::<Vec<_>>(), all);
    // Restored twice: the same edges, every count doubled.
    again.restore(all.clone());
    let twice = again.destinations().collect::<Vec<_>>();
    assert_eq!(twice.len(), all.len());
    for (a, b) in all.iter().zip(&twice) {
        assert_eq!(
            (a.edges.len(), a.usage.count * 2),
            (b.edges.len(), b.usage.count)
        );
    }
    // Into a smaller inventory: edges fold, destinations drop only past their bound.
    let mut small = Inventory::new(1, 1, 10);
    let r = small.restore(all);
    assert_eq!((r.edges, r.folded, r.dropped), (1, 0, 3));
}

#[test]
fn destinations_and_edges_come_sorted() {
    let mut inv = Inventory::new(100, 100, 10);
    let names = ["b.example.com", "a.example.com", "10-0-0-1.example.org", ""];
    for (i, name) in names.iter().enumerate() {
        for src in [
            pod_of("web", "web-1"),
            Endpoint {
                namespace: Some("ads".into()),
                ..pod_of("web", "web-2")
            },
            client("10.244.0.9"),
            client("10.244.0.10"),
            Endpoint::default(),
        ] {
            let names: Vec<&str> = [*name].into_iter().filter(|n| !n.is_empty()).collect();
            let ip = format!("198.51.100.{}", 9 - i);
            inv.record(conn(src, &ip, 443, &names, 1), false);
        }
    }
    let all = inv.destinations().collect::<Vec<_>>();
    assert_eq!(all.len(), 4);
    let keys: Vec<&DestKey> = all.iter().map(|d| &d.destination).collect();
    assert!(keys.is_sorted(), "{keys:?}");
    for d in &all {
        let sources: Vec<SourceKey> = d.edges.iter().map(|e| e.source.key()).collect();
        assert_eq!(sources.len(), 5);
        assert!(sources.is_sorted(), "{sources:?}");
    }
}

#[test]
fn remembers_a_window_of_ids() {
    let mut inv = Inventory::new(1, 1, 4);
    assert!(inv.first_sighting(1));
    assert!(!inv.first_sighting(1));
    for id in 2..=3 {
        assert!(inv.first_sighting(id));
    }
    // 1 and 2 rotated into the previous generation, still remembered; then forgotten.
    assert!(!inv.first_sighting(2));
    for id in 4..=7 {
        assert!(inv.first_sighting(id));
    }
    assert!(inv.first_sighting(1));
}
