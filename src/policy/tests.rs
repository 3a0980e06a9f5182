//! The evaluator against every semantic of docs/policy.md, one table row a rule.

use super::Evaluator;
use super::query::{Query, Resolver};
use crate::cluster::Cluster;
use crate::cluster::load::Loader;

/// Namespaces, and pods with labels, addresses and named ports, that every case shares.
const BASE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
apiVersion: v1
kind: Namespace
metadata: {name: payments, labels: {team: pay}}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: v1
kind: Pod
metadata: {namespace: shop, name: cart-0, labels: {app: cart, tier: back},
  ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: cart, uid: u1, controller: true}]}
spec:
  nodeName: node-1
  containers: [{name: app, ports: [{name: https, containerPort: 8443}]}]
status: {phase: Running, podIP: 10.0.1.10, hostIP: 192.168.0.1}
---
apiVersion: v1
kind: Pod
metadata: {namespace: shop, name: web, labels: {app: web}}
spec: {containers: [{name: app}]}
status: {phase: Running, podIP: 10.0.1.11, hostIP: 192.168.0.1}
---
apiVersion: v1
kind: Pod
metadata: {namespace: payments, name: api, labels: {app: api}}
spec: {containers: [{name: app, ports: [{name: http, containerPort: 8080}]}]}
status: {phase: Running, podIP: 10.0.2.10}
---
apiVersion: v1
kind: Pod
metadata: {namespace: kube-system, name: coredns, labels: {k8s-app: kube-dns}}
spec: {containers: [{name: coredns}]}
status: {phase: Running, podIP: 10.0.0.10}
---
apiVersion: v1
kind: Service
metadata: {namespace: payments, name: api}
spec: {clusterIP: 10.96.0.20, selector: {app: api}, ports: [{port: 80, targetPort: http}]}
"#;

fn cluster(extra: &str) -> Cluster {
    let mut loader = Loader::default();
    loader.add_text(&format!("{BASE}\n---\n{extra}"), "test");
    let cluster = loader.finish();
    assert!(cluster.unavailable.is_empty(), "{:?}", cluster.unavailable);
    cluster
}

/// (from, to, port, protocol, name) -> (allowed, text the answer must contain)
struct Case {
    what: &'static str,
    objects: &'static str,
    from: &'static str,
    to: &'static str,
    port: Option<u16>,
    protocol: &'static str,
    name: Option<&'static str>,
    allowed: bool,
    says: &'static str,
}

fn run(cases: &[Case]) {
    for c in cases {
        let cluster = cluster(c.objects);
        let resolver = Resolver::new(Evaluator::new(&cluster));
        let answer = resolver.answer(Query {
            from: c.from.into(),
            to: c.to.into(),
            port: c.port,
            protocol: Some(c.protocol.into()),
            name: c.name.map(Into::into),
        });
        let text = serde_json::to_string(&answer).unwrap();
        let verdict = answer
            .verdict
            .unwrap_or_else(|| panic!("{}: no verdict: {text}", c.what));
        assert_eq!(verdict.allowed, c.allowed, "{}: {text}", c.what);
        assert!(
            text.contains(c.says),
            "{}: {:?} not in {text}",
            c.what,
            c.says
        );
    }
}

const fn case(what: &'static str, objects: &'static str, to: &'static str, port: u16) -> Case {
    Case {
        what,
        objects,
        from: "shop/cart",
        to,
        port: Some(port),
        protocol: "TCP",
        name: None,
        allowed: true,
        says: "",
    }
}

impl Case {
    const fn denied(mut self, says: &'static str) -> Self {
        self.allowed = false;
        self.says = says;
        self
    }
    const fn allowed(mut self, says: &'static str) -> Self {
        self.allowed = true;
        self.says = says;
        self
    }
    const fn named(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }
    const fn udp(mut self) -> Self {
        self.protocol = "UDP";
        self
    }
    const fn from(mut self, from: &'static str) -> Self {
        self.from = from;
        self
    }
}

const EGRESS_ONLY_IPBLOCK: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: shop, name: cart-egress}
spec:
  podSelector: {matchLabels: {app: cart}}
  egress:
  - to: [{ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.128/25]}}]
    ports: [{port: 443}]
"#;

const INGRESS_ONLY: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: shop, name: ingress-only}
spec:
  podSelector: {}
  ingress: [{}]
"#;

const DENY_ALL_EGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: shop, name: deny-egress}
spec: {podSelector: {}, policyTypes: [Egress]}
"#;

#[test]
fn network_policy_isolation_and_types() {
    run(&[
        case("no policy: unrestricted", "", "203.0.113.7", 443).allowed("\"unrestricted\""),
        case(
            "policyTypes omitted with egress rules: isolated",
            EGRESS_ONLY_IPBLOCK,
            "198.51.100.1",
            443,
        )
        .denied(
            "isolated by NetworkPolicy shop/cart-egress; no rule allows TCP/443 to 198.51.100.1",
        ),
        case(
            "the rule that allows is named",
            EGRESS_ONLY_IPBLOCK,
            "203.0.113.7",
            443,
        )
        .allowed("NetworkPolicy shop/cart-egress egress[0]"),
        case(
            "except subtracts",
            EGRESS_ONLY_IPBLOCK,
            "203.0.113.200",
            443,
        )
        .denied("no rule allows"),
        case(
            "port must match too",
            EGRESS_ONLY_IPBLOCK,
            "203.0.113.7",
            80,
        )
        .denied("TCP/80"),
        case(
            "ports: protocol defaults to TCP",
            EGRESS_ONLY_IPBLOCK,
            "203.0.113.7",
            443,
        )
        .udp()
        .denied("UDP/443"),
        case(
            "policyTypes omitted without egress: ingress only",
            INGRESS_ONLY,
            "203.0.113.7",
            443,
        )
        .allowed("\"unrestricted\""),
        case(
            "policyTypes [Egress] without rules denies all",
            DENY_ALL_EGRESS,
            "203.0.113.7",
            443,
        )
        .denied("isolated by NetworkPolicy shop/deny-egress"),
        case(
            "empty podSelector selects every pod of the namespace",
            DENY_ALL_EGRESS,
            "8.8.8.8",
            53,
        )
        .from("shop/web")
        .denied("deny-egress"),
        case(
            "other namespaces are not selected",
            DENY_ALL_EGRESS,
            "8.8.8.8",
            53,
        )
        .from("payments/api")
        .allowed("no egress policy isolates payments/api"),
    ]);
}

const PEERS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: shop, name: peers}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {team: pay}}, podSelector: {matchLabels: {app: api}}}]
    ports: [{port: 8080}]
  - to: [{namespaceSelector: {matchLabels: {team: shop}}}, {podSelector: {matchLabels: {app: nothing}}}]
    ports: [{port: 8000, endPort: 8100}]
  - to: [{podSelector: {matchLabels: {app: api}}}, {podSelector: {matchLabels: {app: cart}}}]
    ports: [{port: https}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: payments, name: api-ingress}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {}}]
    ports: [{port: http}]
"#;

#[test]
fn peers_ports_and_the_ingress_side() {
    run(&[
        case("namespaceSelector AND podSelector in one peer", PEERS, "payments/api", 8080)
            .allowed("NetworkPolicy shop/peers egress[0]"),
        case("ingress side: named port resolves on the destination", PEERS, "payments/api", 8080)
            .allowed("NetworkPolicy payments/api-ingress ingress[0]"),
        case("ingress side denies another port", PEERS, "payments/api", 9090)
            .denied("isolated by NetworkPolicy payments/api-ingress; no rule allows TCP/9090 from pod shop/cart-0"),
        case("two peers are OR: the namespace one matches", PEERS, "shop/web", 8050)
            .allowed("NetworkPolicy shop/peers egress[1]"),
        case("endPort is inclusive", PEERS, "shop/web", 8100).allowed("egress[1]"),
        case("past endPort", PEERS, "shop/web", 8101).denied("TCP/8101"),
        case("a named port never matches an address outside", PEERS, "203.0.113.9", 8443)
            .denied("no rule allows TCP/8443"),
        case("a named port matches the destination pod's port", PEERS, "shop/cart", 8443)
            .allowed("NetworkPolicy shop/peers egress[2]"),
        case("a Service is judged after DNAT on the backend's port", PEERS, "10.96.0.20", 80)
            .allowed("\"service\":\"payments/api\""),
        case("podSelector alone stays in the policy's namespace", PEERS, "payments/api", 8443)
            .denied("no rule allows TCP/8443 to pod payments/api"),
    ]);
}

const IPBLOCK_ON_POD: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: shop, name: to-pods-by-cidr}
spec:
  podSelector: {matchLabels: {app: cart}}
  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}]}]
"#;

#[test]
fn cni_dependent_answers_say_so() {
    run(&[
        case(
            "ipBlock covering a pod IP",
            IPBLOCK_ON_POD,
            "payments/api",
            8080,
        )
        .denied("CNI-dependent: ipBlock 10.0.0.0/8 covers a pod IP"),
        case("the pod's own node", IPBLOCK_ON_POD, "192.168.0.1", 10250)
            .allowed("traffic to the pod's own node is allowed"),
    ]);
}

const ADMIN: &str = r#"
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: pass-shop}
spec:
  priority: 5
  subject: {namespaces: {matchLabels: {team: shop}}}
  egress:
  - {name: dns, action: Allow, to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}}],
     ports: [{portNumber: {protocol: UDP, port: 53}}]}
  - {name: to-partner, action: Pass, to: [{networks: [203.0.113.0/24]}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: deny-partner}
spec:
  priority: 10
  subject: {namespaces: {}}
  egress:
  - {name: partner, action: Deny, to: [{networks: [203.0.113.0/24]}]}
  - {name: docs, action: Allow, to: [{domainNames: ["*.kubernetes.io"]}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  egress:
  - {name: no-metadata, action: Deny, to: [{networks: [169.254.169.254/32]}]}
"#;

#[test]
fn admin_policies_by_priority_with_pass_and_baseline() {
    run(&[
        case("ANP Allow", ADMIN, "kube-system/coredns", 53)
            .udp()
            .allowed("AdminNetworkPolicy pass-shop egress[0] (dns)"),
        case(
            "Pass skips lower-priority ANPs to NetworkPolicy",
            ADMIN,
            "203.0.113.7",
            443,
        )
        .allowed(
            "passed to NetworkPolicies by AdminNetworkPolicy pass-shop egress[1] (to-partner)",
        ),
        case(
            "Deny at a later priority for others",
            ADMIN,
            "203.0.113.7",
            443,
        )
        .from("payments/api")
        .denied("denied by AdminNetworkPolicy deny-partner egress[0] (partner)"),
        case("domainNames: *. spans labels", ADMIN, "198.51.100.3", 443)
            .from("payments/api")
            .named("a.b.kubernetes.io")
            .allowed("deny-partner egress[1] (docs)"),
        case("BANP after NetworkPolicies", ADMIN, "169.254.169.254", 80)
            .from("payments/api")
            .denied("denied by BaselineAdminNetworkPolicy default egress[0] (no-metadata)"),
        case("nothing matched: allowed", ADMIN, "198.51.100.3", 443)
            .from("payments/api")
            .named("kubernetes.io")
            .allowed("no egress policy isolates payments/api; no admin policy rule matched"),
    ]);
}

const ADMIN_AND_NETPOL: &str = r#"
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  egress: [{name: deny-all, action: Deny, to: [{networks: [0.0.0.0/0]}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: shop, name: cart-egress}
spec:
  podSelector: {matchLabels: {app: cart}}
  egress: [{to: [{ipBlock: {cidr: 203.0.113.0/24}}]}]
"#;

#[test]
fn networkpolicy_isolation_overrides_the_baseline() {
    run(&[
        case(
            "NP allows before BANP",
            ADMIN_AND_NETPOL,
            "203.0.113.7",
            443,
        )
        .allowed("cart-egress egress[0]"),
        case(
            "unisolated pod falls to BANP",
            ADMIN_AND_NETPOL,
            "203.0.113.7",
            443,
        )
        .from("shop/web")
        .denied("BaselineAdminNetworkPolicy default egress[0] (deny-all)"),
    ]);
}

const CILIUM_FQDN_NO_DNS: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {namespace: shop, name: cart-fqdn}
spec:
  endpointSelector: {matchLabels: {app: cart}}
  egress:
  - toFQDNs: [{matchPattern: "*.stripe.com"}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
"#;

const CILIUM_FQDN: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {namespace: shop, name: cart-fqdn}
spec:
  endpointSelector: {matchLabels: {app: cart}}
  egress:
  - toEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": kube-system, k8s-app: kube-dns}}]
    toPorts: [{ports: [{port: "53", protocol: ANY}], rules: {dns: [{matchPattern: "*"}]}}]
  - toFQDNs: [{matchPattern: "*.stripe.com"}, {matchName: "Example.COM."}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
  - toCIDRSet: [{cidr: 198.51.100.0/24, except: [198.51.100.0/28]}]
  egressDeny:
  - toCIDR: [198.51.100.200/32]
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: web-world}
spec:
  endpointSelector: {matchLabels: {"k8s:io.kubernetes.pod.namespace": shop, app: web}}
  egress:
  - toEntities: [world]
    toPorts: [{ports: [{port: "443"}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {namespace: payments, name: api-default-allow}
spec:
  endpointSelector: {}
  enableDefaultDeny: {egress: false}
  egress: [{toCIDR: [192.0.2.1/32]}]
"#;

#[test]
fn cilium_default_deny_fqdn_and_cidr() {
    run(&[
        case(
            "toFQDNs without a DNS rule allows nothing",
            CILIUM_FQDN_NO_DNS,
            "52.1.1.1",
            443,
        )
        .named("api.stripe.com")
        .denied("toFQDNs without a DNS rule allows nothing"),
        case("toFQDNs with the DNS rule", CILIUM_FQDN, "52.1.1.1", 443)
            .named("api.stripe.com")
            .allowed("CiliumNetworkPolicy shop/cart-fqdn egress[1]"),
        case(
            "matchPattern * does not cross a dot",
            CILIUM_FQDN,
            "52.1.1.1",
            443,
        )
        .named("a.b.stripe.com")
        .denied("isolated by CiliumNetworkPolicy shop/cart-fqdn"),
        case(
            "matchPattern needs a label before the suffix",
            CILIUM_FQDN,
            "52.1.1.1",
            443,
        )
        .named("stripe.com")
        .denied("no rule allows"),
        case(
            "matchName compares lower-case without the dot",
            CILIUM_FQDN,
            "93.184.216.34",
            443,
        )
        .named("example.com")
        .allowed("egress[1]"),
        case(
            "the DNS rule itself, to kube-dns",
            CILIUM_FQDN,
            "kube-system/coredns",
            53,
        )
        .udp()
        .allowed("CiliumNetworkPolicy shop/cart-fqdn egress[0]"),
        case("toCIDRSet except", CILIUM_FQDN, "198.51.100.5", 443).denied("no rule allows"),
        case("toCIDRSet", CILIUM_FQDN, "198.51.100.50", 443).allowed("egress[2]"),
        case("egressDeny wins", CILIUM_FQDN, "198.51.100.200", 443)
            .denied("denied by CiliumNetworkPolicy shop/cart-fqdn egressDeny[0]"),
        case(
            "toCIDR never matches in-cluster endpoints",
            CILIUM_FQDN,
            "payments/api",
            8080,
        )
        .denied("no rule allows TCP/8080 to pod payments/api"),
        case("clusterwide toEntities world", CILIUM_FQDN, "8.8.4.4", 443)
            .from("shop/web")
            .allowed("CiliumClusterwideNetworkPolicy web-world egress[0]"),
        case(
            "toEntities world is not the cluster",
            CILIUM_FQDN,
            "payments/api",
            443,
        )
        .from("shop/web")
        .denied("isolated by CiliumClusterwideNetworkPolicy web-world"),
        case("enableDefaultDeny egress false", CILIUM_FQDN, "8.8.8.8", 53)
            .from("payments/api")
            .udp()
            .allowed("no egress policy isolates payments/api"),
    ]);
}

const MESH: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {namespace: istio-system, name: istio}
data: {mesh: "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {namespace: shop, name: wiki}
spec:
  hosts: ["*.wikipedia.org"]
  ports: [{number: 443, name: tls, protocol: TLS}]
  location: MESH_EXTERNAL
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {namespace: payments, name: facebook}
spec:
  hosts: [api.facebook.com]
  exportTo: ["."]
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {namespace: istio-system, name: db}
spec:
  hosts: [db.partner.example]
  ports: [{number: 5432, name: pg, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {namespace: payments, name: default}
spec:
  egress: [{hosts: ["*/en.wikipedia.org", "./*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {namespace: istio-system, name: default}
spec:
  egress: [{hosts: ["*/*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {namespace: shop, name: locked}
spec:
  workloadSelector: {labels: {app: locked}}
  egress: [{hosts: ["~/*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {namespace: shop, name: web}
spec:
  workloadSelector: {labels: {app: web}}
  egress: [{hosts: ["~/*"]}]
  outboundTrafficPolicy: {mode: ALLOW_ANY}
"#;

/// The same pods with sidecars: an annotation the injector writes.
const SIDECARS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {namespace: shop, name: meshed, labels: {app: meshed}, annotations: {sidecar.istio.io/status: "{}"}}
spec: {containers: [{name: app}, {name: istio-proxy}]}
status: {phase: Running, podIP: 10.0.1.20}
---
apiVersion: v1
kind: Pod
metadata: {namespace: shop, name: web-meshed, labels: {app: web}}
spec: {containers: [{name: app}, {name: istio-proxy}]}
status: {phase: Running, podIP: 10.0.1.21}
---
apiVersion: v1
kind: Pod
metadata: {namespace: shop, name: locked-meshed, labels: {app: locked}}
spec: {containers: [{name: app}, {name: istio-proxy}]}
status: {phase: Running, podIP: 10.0.1.22}
---
apiVersion: v1
kind: Pod
metadata: {namespace: payments, name: pay-meshed, labels: {app: pay}}
spec: {containers: [{name: app}, {name: istio-proxy}]}
status: {phase: Running, podIP: 10.0.2.21}
"#;

fn mesh_cluster() -> &'static str {
    // One string of both documents: the tables take `&'static str`.
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| format!("{MESH}\n---\n{SIDECARS}"))
}

#[test]
fn istio_registry_exports_and_sidecar_hosts() {
    let m = mesh_cluster();
    let meshed = |what, to, port| case(what, m, to, port).from("shop/meshed");
    run(&[
        meshed("REGISTRY_ONLY: wildcard ServiceEntry host", "91.198.174.192", 443)
            .named("en.wikipedia.org")
            .allowed("ServiceEntry shop/wiki host *.wikipedia.org"),
        meshed("REGISTRY_ONLY: undeclared host is BlackHole", "1.2.3.4", 443)
            .named("example.com")
            .denied("no ServiceEntry visible to shop declares example.com (1.2.3.4) TCP/443 (BlackHoleCluster)"),
        meshed("exportTo . hides another namespace's entry", "157.240.1.1", 443)
            .named("api.facebook.com")
            .denied("BlackHoleCluster"),
        case("exportTo . serves its own namespace; ./* admits it", m, "157.240.1.1", 443)
            .from("payments/pay-meshed")
            .named("api.facebook.com")
            .allowed("ServiceEntry payments/facebook host api.facebook.com"),
        case("Sidecar */en.wikipedia.org does not admit *.wikipedia.org", m, "91.198.174.192", 443)
            .from("payments/pay-meshed")
            .named("en.wikipedia.org")
            .denied("ServiceEntry shop/wiki host *.wikipedia.org declares it but Sidecar payments/default egress hosts do not admit it"),
        meshed("a TCP port without addresses matches by port alone", "203.0.113.50", 5432)
            .allowed("ServiceEntry istio-system/db host db.partner.example"),
        case("a workload's Sidecar beats the namespace's; ALLOW_ANY there", m, "1.2.3.4", 443)
            .from("shop/web-meshed")
            .named("example.com")
            .allowed("ALLOW_ANY (Sidecar shop/web): undeclared destinations pass through PassthroughCluster"),
        case("Sidecar ~/* admits no host", m, "91.198.174.192", 443)
            .from("shop/locked-meshed")
            .named("en.wikipedia.org")
            .denied("Sidecar shop/locked egress hosts do not admit it"),
        meshed("UDP is outside the mesh", "1.2.3.4", 53)
            .udp()
            .allowed("Istio mediates TCP only"),
        case("no sidecar: Istio does not decide", m, "1.2.3.4", 443)
            .named("example.com")
            .allowed("\"unrestricted\""),
    ]);
}

#[test]
fn unknown_names_are_answers() {
    let cluster = cluster("");
    let resolver = Resolver::new(Evaluator::new(&cluster));
    for (from, to, error) in [
        ("shop/nope", "1.1.1.1", "no pod or workload shop/nope"),
        ("shop/cart", "shop/nope", "no pod or workload shop/nope"),
        ("cart", "1.1.1.1", "neither NAMESPACE/NAME nor an address"),
    ] {
        let a = resolver.answer(Query {
            from: from.into(),
            to: to.into(),
            ..Query::default()
        });
        assert!(a.verdict.is_none());
        assert!(a.error.as_deref().unwrap().contains(error), "{:?}", a.error);
    }
    let a = resolver.answer(Query {
        from: "shop/cart".into(),
        to: "1.1.1.1".into(),
        protocol: Some("icmp".into()),
        ..Query::default()
    });
    assert!(a.error.unwrap().contains("use TCP, UDP or SCTP"));
}
