#!/usr/bin/env python3
"""Writes a mid-size cluster's busy day into --out: the pod table, a CoreDNS log, an Istio
access log, and the truth they hold.

- pods.json: ~150 workloads (Deployments, StatefulSets, DaemonSets) with 1,500 pods in 15
  namespaces, as `kubectl get pods -A -o json` gives them.
- coredns.log: every lookup through the ndots:5 search walk (four NXDOMAIN expansions, then A
  and AAAA), from a random replica of the workload; names by Zipf popularity.
- envoy.log: Istio TEXT access log lines: TLS connections to the names' addresses (SNI set),
  and PassthroughCluster connections to addresses known by IP only.
- truth.json: every external destination (names and IP-only addresses) and every
  (namespace, workload, destination) edge written.

Every edge is written at least once; then more lookups and connections by popularity until
--lines lines. Deterministic (fixed seed).
"""
import argparse
import json
import os
import random

NAMESPACES = [f"team-{i}" for i in range(15)]
KINDS = ["Deployment"] * 8 + ["StatefulSet", "DaemonSet"]
SEARCH = ("{ns}.svc.cluster.local", "svc.cluster.local", "cluster.local",
          "eu-west-1.compute.internal")
TLDS = ("com", "io", "net", "org", "dev", "cloud", "de", "eu", "co.uk", "ai")


def pod_ip(i):
    return f"10.244.{i // 250}.{i % 250 + 2}"


def name_ip(i):
    return f"198.18.{i // 256}.{i % 256}"


def workloads(rng, n_workloads, n_pods):
    """(namespace, kind, name, [(pod, ip)]) with replica counts that sum to n_pods."""
    sizes = [1] * n_workloads
    for _ in range(n_pods - n_workloads):
        sizes[min(int(rng.paretovariate(1.2)) - 1, n_workloads - 1) if rng.random() < 0.3
              else rng.randrange(n_workloads)] += 1
    out, next_pod = [], 0
    for w, size in enumerate(sizes):
        ns, kind = NAMESPACES[w % len(NAMESPACES)], rng.choice(KINDS)
        name = f"svc{w}-{rng.choice(['api', 'worker', 'web', 'sync', 'jobs'])}"
        pods = []
        for r in range(size):
            pod = f"{name}-{r}" if kind == "StatefulSet" else f"{name}-7f9c{w:02x}-{r:05x}"
            pods.append((pod, pod_ip(next_pod)))
            next_pod += 1
        out.append((ns, kind, name, pods))
    return out


def pod_doc(ns, kind, name, pod, ip, w):
    owner_kind, owner = (("ReplicaSet", f"{name}-7f9c{w:02x}") if kind == "Deployment"
                         else (kind, name))
    labels = {"app": name}
    if kind == "Deployment":
        labels["pod-template-hash"] = f"7f9c{w:02x}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod, "namespace": ns, "uid": f"uid-{ns}-{pod}", "labels": labels,
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind,
                                          "name": owner, "uid": f"uid-{owner}",
                                          "controller": True}]},
        "spec": {"nodeName": f"node-{w % 20}", "containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "startTime": "2026-01-01T00:00:00Z"},
    }


def coredns(rng, client, ns, name):
    def line(qtype, qname, rcode, flags):
        return (f'[INFO] {client}:{rng.randrange(1024, 65535)} - {rng.randrange(65536)} '
                f'"{qtype} IN {qname}. udp {len(qname) + 18} false 512" {rcode} {flags} '
                f'{rng.randrange(60, 400)} 0.000{rng.randrange(100000, 999999)}s\n')
    for suffix in SEARCH:
        yield line("A", f"{name}.{suffix.format(ns=ns)}", "NXDOMAIN", "qr,aa,rd")
    for qtype in ("A", "AAAA"):
        yield line(qtype, name, "NOERROR", "qr,rd,ra")


def envoy(rng, client, ip, name, second):
    sport = rng.randrange(30000, 60000)
    cluster = f"outbound|443||{name}" if name else "PassthroughCluster"
    return (f'[2026-11-30T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}.'
            f'{rng.randrange(1000):03d}Z] "- - -" 0 - - - "-" 1204 6120 {rng.randrange(2, 900)} - '
            f'"-" "-" "-" "-" "{ip}:443" {cluster} {client}:{sport} {ip}:443 {client}:{sport - 1} '
            f'{name or "-"} -\n')


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--workloads", type=int, default=150)
    p.add_argument("--pods", type=int, default=1500)
    p.add_argument("--names", type=int, default=19500)
    p.add_argument("--ip-only", type=int, default=500)
    p.add_argument("--edges", type=int, default=95000)
    p.add_argument("--lines", type=int, default=2_000_000)
    p.add_argument("--seed", type=int, default=11)
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)

    ws = workloads(rng, a.workloads, a.pods)
    with open(os.path.join(a.out, "pods.json"), "w") as f:
        items = [pod_doc(ns, kind, name, pod, ip, w)
                 for w, (ns, kind, name, pods) in enumerate(ws) for pod, ip in pods]
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)

    names = [f"{rng.choice(['api', 'cdn', 'auth', 'events', 'hooks', 'eu', 'static'])}"
             f"{i}.vendor{i % 4000}.{TLDS[i % len(TLDS)]}" for i in range(a.names)]
    ips = [f"198.19.{i // 256}.{i % 256}" for i in range(a.ip_only)]
    # Zipf popularity over destinations: names first, then the IP-only addresses.
    dests = [(n, name_ip(i)) for i, n in enumerate(names)] + [(None, ip) for ip in ips]
    weights = [1.0 / (r + 1) for r in range(len(dests))]
    rng.shuffle(weights)
    # Every destination used by one workload, then more edges by popularity.
    edges = set()
    for d in range(len(dests)):
        edges.add((rng.randrange(len(ws)), d))
    while len(edges) < a.edges:
        for d in rng.choices(range(len(dests)), weights, k=a.edges - len(edges)):
            edges.add((rng.randrange(len(ws)), d))
    edges = sorted(edges)
    edge_weights = [weights[d] for _, d in edges]

    lines = 0
    with open(os.path.join(a.out, "coredns.log"), "w") as dns, \
            open(os.path.join(a.out, "envoy.log"), "w") as conns:
        def emit(w, d):
            nonlocal lines
            ns, _, _, pods = ws[w]
            _, client = rng.choice(pods)
            name, ip = dests[d]
            if name is not None:
                out = list(coredns(rng, client, ns, name))
                dns.writelines(out)
                lines += len(out)
            if name is None or rng.random() < 0.4:
                conns.write(envoy(rng, client, ip, name, lines % 86400))
                lines += 1
        for w, d in edges:
            emit(w, d)
        while lines < a.lines:
            for i in rng.choices(range(len(edges)), edge_weights, k=10000):
                emit(*edges[i])

    truth = {
        "destinations": sorted(n if n is not None else ip for n, ip in dests),
        "edges": sorted([ws[w][0], ws[w][2], dests[d][0] or dests[d][1]] for w, d in edges),
    }
    with open(os.path.join(a.out, "truth.json"), "w") as f:
        json.dump(truth, f)


if __name__ == "__main__":
    main()
