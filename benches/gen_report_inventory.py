#!/usr/bin/env python3
"""Writes an inventory document (the `scan --output json` shape) with DESTINATIONS external
destinations and EDGES edges from WORKLOADS workloads in 50 namespaces, for benches/report.sh."""
import json, sys

destinations, edges, workloads = (int(a) for a in sys.argv[1:4])
per = edges // destinations
docs = []
for d in range(destinations):
    name = f"api{d}.vendor{d % 700}.example.com"
    es = []
    for k in range(per):
        w = (d * per + k) % workloads
        es.append({"source": {"namespace": f"ns{w % 50}", "workload": f"app{w}", "workload_kind": "Deployment"},
                   "ports": [{"port": 443, "protocol": "tcp", "count": 1 + (w % 9)}], "count": 1 + (w % 9),
                   "first_seen": f"2026-12-01T{d % 24:02d}:00:00Z", "last_seen": "2026-12-01T23:59:00Z",
                   "evidence": ["envoy"]})
    total = sum(e["count"] for e in es)
    docs.append({"destination": name, "names": [name], "ips": [f"198.51.{d // 250}.{d % 250}"],
                 "ports": [{"port": 443, "protocol": "tcp", "count": total}], "count": total,
                 "first_seen": f"2026-12-01T{d % 24:02d}:00:00Z", "last_seen": "2026-12-01T23:59:00Z",
                 "evidence": ["envoy"], "source_count": len(es), "edges": es})
json.dump({"schema_version": 2, "destinations": docs}, sys.stdout)
