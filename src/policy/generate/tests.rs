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
