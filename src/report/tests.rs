use super::graph::Graph;
use super::*;
use crate::inventory::DestKey;

/// A scan document's destinations: a named one with two sources, a bare IP, an unnamed one.
fn destinations() -> Vec<Destination> {
    let edge = |source: serde_json::Value, ports: serde_json::Value, count: u64| {
        serde_json::json!({"source": source, "ports": ports, "count": count,
            "first_seen": "2026-12-01T10:15:00Z", "last_seen": "2026-12-01T11:00:00Z",
            "evidence": ["envoy"]})
    };
    let web =
        serde_json::json!({"namespace": "shop", "workload": "web", "workload_kind": "Deployment"});
    let doc = serde_json::json!([
        {"destination": "api.stripe.com", "names": ["api.stripe.com"], "ports": [{"port": 443, "protocol": "tcp", "count": 5}],
         "count": 5, "first_seen": "2026-12-01T10:15:00Z", "last_seen": "2026-12-01T11:00:00Z",
         "evidence": ["envoy"], "source_count": 2, "edges": [
            edge(web.clone(), serde_json::json!([{"port": 443, "protocol": "tcp", "count": 3}]), 3),
            edge(serde_json::json!({"ip": "10.244.1.9"}), serde_json::json!([{"port": 443, "protocol": "tcp", "count": 2}]), 2)]},
        {"destination": "203.0.113.7", "ips": ["203.0.113.7"], "ports": [{"port": 22, "protocol": "tcp", "count": 1}],
         "count": 1, "first_seen": "2026-12-01T12:00:00Z", "last_seen": "2026-12-01T12:00:00Z",
         "evidence": ["capture"], "source_count": 1, "edges": [
            edge(web, serde_json::json!([{"port": 22, "protocol": "tcp", "count": 1}]), 1)]}
    ]);
    serde_json::from_value(doc).unwrap()
}

#[test]
fn nodes_edges_and_domains() {
    let page = Page::new(&destinations(), None);
    let keys: Vec<&str> = page.workloads.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["10.244.1.9", "shop/web"]);
    assert_eq!(page.destinations[0].domain, "stripe.com");
    assert_eq!(page.destinations[1].domain, "addresses");
    assert_eq!(page.destinations[0].ports, ["443/tcp"]);
    let links: Vec<(usize, usize, u64)> = page.edges.iter().map(|e| (e.w, e.d, e.count)).collect();
    assert_eq!(links, [(1, 0, 3), (0, 0, 2), (1, 1, 1)]);
    assert!(page.edges.iter().all(|e| e.status.is_none()));
}

#[test]
fn the_page_is_self_contained_and_no_name_closes_its_script() {
    let mut d = destinations();
    d[0].destination = DestKey::Name("evil</script><script>alert(1)</script>.example".into());
    let html = Page::new(&d, None).html();
    assert_eq!(
        html.matches("</script>").count(),
        2,
        "the data block and the page script"
    );
    assert!(html.contains("evil\\u003c/script>"));
    assert!(
        !html.contains("/*DATA*/") && !html.contains("/*SCRIPT*/") && !html.contains("/*STYLE*/")
    );
    for remote in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(remote), "{remote}");
    }
    assert!(html.contains("default-src 'none'"));
    // Deterministic: the same inventory, the same bytes.
    assert_eq!(html, Page::new(&d, None).html());
}

#[test]
fn mermaid_and_dot() {
    let page = Page::new(&destinations(), None);
    let graph = Graph::of(&page);
    let mermaid = graph.mermaid();
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(
        mermaid.contains("  subgraph g1[\"shop\"]\n    w1[\"Deployment/web\"]\n  end"),
        "{mermaid}"
    );
    assert!(mermaid.contains("d0[\"api.stripe.com\"]"), "{mermaid}");
    assert!(mermaid.contains("  w1 -->|\"443/tcp x3\"| d0"), "{mermaid}");
    assert_eq!(mermaid.matches("-->").count(), page.edges.len());
    let dot = graph.dot();
    assert!(dot.starts_with("digraph egress {"), "{dot}");
    assert!(dot.contains("  w1 -> d1 [label=\"22/tcp x1\""), "{dot}");
    assert_eq!(dot.matches(" -> ").count(), page.edges.len());
    let mut d = destinations();
    d[0].destination = DestKey::Name("a\"b.example".into());
    let graph = Graph::of(&Page::new(&d, None));
    assert!(graph.mermaid().contains("a#quot;b.example"));
    assert!(graph.dot().contains("a\\\"b.example"));
}
