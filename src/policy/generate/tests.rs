//! Names, selectors and aggregation of generated policies.

use super::*;
use crate::cluster::load::Loader;

#[test]
fn names_are_dns_labels_and_stable() {
    assert_eq!(object_name("cart"), "egress-scout-cart");
    assert_eq!(object_name("api.stripe.com"), "egress-scout-api-stripe-com");
    let long = object_name(&"x".repeat(80));
    assert!(long.len() <= 63, "{long}");
    assert_eq!(long, object_name(&"x".repeat(80)));
    assert_ne!(long, object_name(&"x".repeat(81)));
}

fn edges(ips: &[&str]) -> Vec<Destination> {
    let at = "2026-12-01T08:00:00Z";
    let d: Vec<Value> = ips
        .iter()
        .map(|ip| {
            json!({"destination": format!("n{}.example.com", ip.rsplit('.').next().unwrap()),
                "ips": [ip], "count": 1, "source_count": 1, "first_seen": at, "last_seen": at,
                "evidence": ["envoy"], "edges": [{"source": {"namespace": "shop", "workload": "cart",
                "workload_kind": "Deployment"}, "ports": [{"port": 443, "protocol": "tcp", "count": 1}],
                "count": 1, "first_seen": at, "last_seen": at, "evidence": ["envoy"]}]})
        })
        .collect();
    serde_json::from_value(Value::Array(d)).unwrap()
}

fn cluster() -> Cluster {
    let mut loader = Loader::default();
    loader.add_text(
        r#"{"kind": "Pod", "apiVersion": "v1",
            "metadata": {"namespace": "shop", "name": "cart-5f-x", "labels": {"app": "cart", "pod-template-hash": "5f"},
              "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "cart-5f", "uid": "u", "controller": true}]},
            "status": {"podIP": "10.0.0.9"}}"#,
        "test",
    );
    loader.finish()
}

#[test]
fn selectors_drop_revision_labels_and_addresses_aggregate_when_asked() {
    let cluster = cluster();
    let resolver = Resolver::new(crate::policy::Evaluator::new(&cluster));
    let destinations = edges(&[
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "203.0.113.9",
    ]);
    let plain = generate(&resolver, &destinations, &Options::default());
    let np = &plain.documents[0].value;
    assert_eq!(
        np["spec"]["podSelector"],
        json!({"matchLabels": {"app": "cart"}})
    );
    assert_eq!(np["metadata"]["name"], "egress-scout-cart");
    let blocks = |v: &Value| -> Vec<String> {
        v["spec"]["egress"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["to"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["ipBlock"]["cidr"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        blocks(np),
        [
            "198.51.100.1/32",
            "198.51.100.2/32",
            "198.51.100.3/32",
            "203.0.113.9/32"
        ]
    );
    let opts = Options {
        aggregate_ipv4: Some(24),
        aggregate_min: 3,
        ..Options::default()
    };
    let grouped = generate(&resolver, &destinations, &opts);
    assert_eq!(
        blocks(&grouped.documents[0].value),
        ["198.51.100.0/24", "203.0.113.9/32"]
    );
    assert!(
        grouped.notes.iter().any(|n| n.contains("no kube-dns")),
        "{:?}",
        grouped.notes
    );
}

/// A generated cluster of 100 workloads (10 namespaces, DNS, every pod with a sidecar) and
/// what each reached: names with addresses, names only looked up,
/// bare addresses, on a few ports.
fn hundred_workloads() -> (Cluster, Vec<Destination>) {
    let at = "2026-12-01T08:00:00Z";
    let mut items = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "kube-system", "name": "coredns-1",
            "labels": {"k8s-app": "kube-dns"}}, "status": {"podIP": "10.250.0.2"}}),
    ];
    let mut destinations: BTreeMap<String, (Vec<String>, Vec<Value>)> = BTreeMap::new();
    for w in 0..100 {
        let ns = format!("team-{}", w % 10);
        let name = format!("svc-{w:03}");
        items.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": ns, "name": name, "labels": {"app": name, "controller-revision-hash": "x"},
              "annotations": {"sidecar.istio.io/status": "{}"}},
            "spec": {"containers": [{"name": "app"}, {"name": "istio-proxy"}]},
            "status": {"podIP": format!("10.250.{}.{}", 1 + w / 200, 10 + w % 200)}}));
        for k in 0..5 {
            let d = (w * 7 + k * 13) % 60;
            let (key, ips) = match d % 3 {
                0 => (
                    format!("api{d}.vendor{}.example", d % 7),
                    vec![format!("198.51.{}.{}", d % 4, d)],
                ),
                1 => (format!("cdn{d}.vendor{}.example", d % 7), vec![]),
                _ => (format!("203.0.113.{d}"), vec![format!("203.0.113.{d}")]),
            };
            let port = [443, 8443, 5432][(w + k) % 3];
            let edge = json!({"source": {"namespace": ns, "workload": name, "workload_kind": "Pod", "pods": [name]},
                "ports": [{"port": port, "protocol": "tcp", "count": 2}], "count": 2,
                "first_seen": at, "last_seen": at, "evidence": ["envoy"]});
            let entry = destinations.entry(key).or_insert_with(|| (ips, Vec::new()));
            entry.1.push(edge);
        }
    }
    let destinations: Vec<Value> = destinations
        .into_iter()
        .map(|(key, (ips, edges))| {
            let mut d = json!({"destination": key, "ips": ips, "count": 2, "source_count": edges.len(),
                "first_seen": at, "last_seen": at, "evidence": ["envoy"], "edges": edges});
            if key.parse::<IpAddr>().is_err() {
                d["names"] = json!([key]);
            }
            d
        })
        .collect();
    let mut loader = Loader::default();
    loader.add(Value::Array(items), "generated");
    (
        loader.finish(),
        serde_json::from_value(Value::Array(destinations)).unwrap(),
    )
}

#[test]
fn a_hundred_workloads_round_trip_through_the_evaluator() {
    use crate::policy::query::Query;
    let (cluster, destinations) = hundred_workloads();
    let resolver = Resolver::new(crate::policy::Evaluator::new(&cluster));
    for kind in [
        Kind::NetworkPolicy,
        Kind::Cilium,
        Kind::Istio,
        Kind::AdminNetworkPolicy,
    ] {
        let opts = Options {
            kinds: vec![kind],
            ..Options::default()
        };
        let generated = generate(&resolver, &destinations, &opts);
        // The YAML read back, added to the cluster: what a user would apply.
        let yaml = generated.yaml(&[kind]);
        let mut loader = Loader::default();
        loader.add(cluster_objects(&cluster, kind == Kind::Istio), "cluster");
        loader.add_text(&yaml, "generated");
        let with = loader.finish();
        assert!(
            with.unavailable.is_empty(),
            "{kind:?}: {:?}",
            with.unavailable
        );
        let judge = Resolver::new(crate::policy::Evaluator::new(&with));
        let (mut allowed, mut probes) = (0, 0);
        for d in &destinations {
            let name = d.names.first().map(|n| n.to_string());
            for e in &d.edges {
                let from = format!(
                    "{}/{}",
                    e.source.namespace.as_deref().unwrap(),
                    e.source.workload.as_deref().unwrap()
                );
                let port = e.usage.ports[0].port;
                let to = d
                    .ips
                    .first()
                    .map_or("192.0.2.1".to_string(), ToString::to_string);
                let expressible = kind != Kind::NetworkPolicy || !d.ips.is_empty();
                let ask = |to: String, port: Option<u16>, name: Option<String>| {
                    judge.answer(Query {
                        from: from.clone(),
                        to,
                        port,
                        protocol: None,
                        name,
                    })
                };
                let a = ask(to.clone(), port, name.clone());
                assert_eq!(
                    a.verdict.as_ref().unwrap().allowed,
                    expressible,
                    "{kind:?} {}",
                    serde_json::to_string(&a).unwrap()
                );
                allowed += usize::from(expressible);
                // Another port, another address with another name: never observed.
                for (to, port, name) in [
                    (to.clone(), Some(2222), name.clone()),
                    (
                        "192.0.2.200".to_string(),
                        port,
                        Some("unseen.example.org".to_string()),
                    ),
                ] {
                    let a = ask(to, port, name);
                    assert!(
                        !a.verdict.as_ref().unwrap().allowed,
                        "{kind:?} probe: {}",
                        serde_json::to_string(&a).unwrap()
                    );
                    probes += 1;
                }
            }
        }
        assert!(
            allowed >= 300 && probes == 1000,
            "{kind:?}: {allowed} allowed, {probes} probes"
        );
    }
}

/// The cluster's pods as objects again (the model keeps no raw objects), with the mesh in
/// REGISTRY_ONLY when `mesh`.
fn cluster_objects(cluster: &Cluster, mesh: bool) -> Value {
    let pods: Vec<Value> = cluster
        .pods
        .iter()
        .map(|p| {
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"namespace": p.namespace, "name": p.name, "labels": p.labels, "annotations": p.annotations},
                "spec": p.spec, "status": {"podIP": p.ips.first()}})
        })
        .collect();
    let registry_only = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "istio-system", "name": "istio"},
        "data": {"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"}});
    let mut items = pods;
    if mesh {
        items.push(registry_only);
    }
    Value::Array(items)
}
