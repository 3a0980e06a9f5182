#!/usr/bin/env python3
"""Writes a mid-size cluster's policies and a batch of questions into --out:
- cluster.json: 15 namespaces, 150 workloads with 1,500 pods (with the ReplicaSets that own
  them), a default-deny NetworkPolicy per namespace plus per-workload egress rules (DNS,
  ipBlocks, namespace peers, ports), CiliumNetworkPolicies with toFQDNs and the DNS rule,
  ServiceEntries, an AdminNetworkPolicy and the BaselineAdminNetworkPolicy.
- inventory.json: --edges workload edges (a snapshot, as `policy generate --inventory` reads
  it): names with addresses, names only looked up, bare addresses, on a few ports.
- queries.jsonl: --queries questions (pods, workloads, external addresses with names,
  pod-to-pod), as `policy query --queries` reads them.
Deterministic for a given --seed."""
import argparse, json, os, random

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--queries", type=int, default=10000)
p.add_argument("--edges", type=int, default=10000)
p.add_argument("--seed", type=int, default=7)
a = p.parse_args()
rng = random.Random(a.seed)
items = []
namespaces = [f"team-{i:02d}" for i in range(15)]
for ns in namespaces + ["kube-system"]:
    items.append({"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": ns, "labels": {"team": ns}}})
items.append({"apiVersion": "v1", "kind": "Pod",
              "metadata": {"namespace": "kube-system", "name": "coredns-1", "labels": {"k8s-app": "kube-dns"}},
              "spec": {"containers": [{"name": "coredns"}]},
              "status": {"phase": "Running", "podIP": "10.244.255.2"}})
workloads, pods = [], []
for w in range(150):
    ns = namespaces[w % len(namespaces)]
    name = f"svc-{w:03d}"
    workloads.append((ns, name))
    items.append({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                  "metadata": {"namespace": ns, "name": f"{name}-5f7d",
                               "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                    "name": name, "uid": f"d-{w}", "controller": True}]}})
    for r in range(10):
        ip = f"10.244.{w}.{r + 10}"
        pod = f"{name}-5f7d-{r:05x}"
        pods.append((ns, pod, ip))
        items.append({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"namespace": ns, "name": pod,
                                   "labels": {"app": name, "tier": rng.choice(["web", "api", "worker"]),
                                              "pod-template-hash": "5f7d"},
                                   "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                        "name": f"{name}-5f7d", "uid": f"rs-{w}", "controller": True}]},
                      "spec": {"containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}]},
                      "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
dns_peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
for ns in namespaces:
    items.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                  "metadata": {"namespace": ns, "name": "default-deny"},
                  "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                           "egress": [{"to": [dns_peer], "ports": [{"port": 53, "protocol": "UDP"}]}]}})
for ns, name in workloads:
    rules = []
    for _ in range(rng.randint(2, 6)):
        net = f"{rng.randint(20, 200)}.{rng.randint(0, 255)}.0.0/16"
        rules.append({"to": [{"ipBlock": {"cidr": net, "except": [net.replace(".0.0/16", ".128.0/17")]}}],
                      "ports": [{"port": rng.choice([443, 80, 5432, 9092])}]})
    other = rng.choice(namespaces)
    rules.append({"to": [{"namespaceSelector": {"matchLabels": {"team": other}},
                          "podSelector": {"matchLabels": {"tier": "api"}}}],
                  "ports": [{"port": "http"}]})
    items.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                  "metadata": {"namespace": ns, "name": f"{name}-egress"},
                  "spec": {"podSelector": {"matchLabels": {"app": name}}, "policyTypes": ["Egress"],
                           "egress": rules}})
    items.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                  "metadata": {"namespace": ns, "name": f"{name}-ingress"},
                  "spec": {"podSelector": {"matchLabels": {"app": name}},
                           "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": "http"}]}]}})
names = [f"api{i}.vendor{i % 40}.example" for i in range(400)]
for i, (ns, name) in enumerate(workloads[:50]):
    items.append({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                  "metadata": {"namespace": ns, "name": f"{name}-fqdn"},
                  "spec": {"endpointSelector": {"matchLabels": {"app": name}},
                           "egress": [
                               {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system",
                                                                 "k8s-app": "kube-dns"}}],
                                "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}],
                                             "rules": {"dns": [{"matchPattern": "*"}]}}]},
                               {"toFQDNs": [{"matchPattern": f"*.vendor{i % 40}.example"},
                                            {"matchName": names[i]}],
                                "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}]}})
for i in range(60):
    items.append({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                  "metadata": {"namespace": namespaces[i % 15], "name": f"vendor-{i}"},
                  "spec": {"hosts": [f"*.vendor{i % 40}.example"], "location": "MESH_EXTERNAL",
                           "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]}})
items.append({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
              "metadata": {"name": "deny-metadata"},
              "spec": {"priority": 10, "subject": {"namespaces": {}},
                       "egress": [{"name": "metadata", "action": "Deny",
                                   "to": [{"networks": ["169.254.169.254/32"]}]}]}})
items.append({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
              "metadata": {"name": "default"},
              "spec": {"subject": {"namespaces": {}},
                       "egress": [{"name": "no-smtp", "action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}],
                                   "ports": [{"portNumber": {"protocol": "TCP", "port": 25}}]}]}})
os.makedirs(a.out, exist_ok=True)
with open(os.path.join(a.out, "cluster.json"), "w") as f:
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
with open(os.path.join(a.out, "queries.jsonl"), "w") as f:
    for q in range(a.queries):
        ns, pod, _ = rng.choice(pods)
        source = rng.choice([f"{ns}/{pod}", f"{ns}/{pod.split('-5f7d')[0]}"])
        kind = rng.random()
        if kind < 0.6:
            query = {"from": source, "to": f"{rng.randint(20, 200)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.7",
                     "port": rng.choice([443, 80, 5432]), "name": rng.choice(names)}
        elif kind < 0.9:
            _, _, ip = rng.choice(pods)
            query = {"from": source, "to": ip, "port": 8080}
        else:
            query = {"from": source, "to": "10.244.255.2", "port": 53, "protocol": "UDP"}
        f.write(json.dumps(query) + "\n")

at = "2026-12-01T08:00:00Z"
dests = {}
for e in range(a.edges):
    ns, name = workloads[e % len(workloads)]
    d = (e * 7919) % 4000
    if d % 4 == 3:
        key, ips = f"203.0.{d // 256 % 256}.{d % 256}", None
    else:
        key, ips = f"h{d}.vendor{d % 97}.example", ([f"198.{d % 200}.{d // 200 % 256}.{d % 250 + 1}"] if d % 4 else [])
    ips = ips if ips is not None else [key]
    port = [443, 8443, 5432, 9092][e % 4]
    edge = {"source": {"namespace": ns, "workload": name, "workload_kind": "Deployment", "pods": [f"{name}-5f7d-00000"]},
            "ports": [{"port": port, "protocol": "tcp", "count": 1 + e % 5}], "count": 1 + e % 5,
            "first_seen": at, "last_seen": at, "evidence": ["envoy"]}
    entry = dests.setdefault(key, {"destination": key, "ips": ips, "count": 0, "source_count": 0,
                                   "first_seen": at, "last_seen": at, "evidence": ["envoy"], "edges": []})
    if not key[0].isdigit():
        entry["names"] = [key]
    entry["edges"].append(edge)
    entry["count"] += edge["count"]
    entry["source_count"] += 1
with open(os.path.join(a.out, "inventory.json"), "w") as f:
    json.dump({"schema_version": 2, "destinations": [dests[k] for k in sorted(dests)]}, f)
