#!/usr/bin/env bash
# The inventory at cluster scale, with default settings: a generated busy day of a mid-size
# cluster (benches/gen_scale.py: ~150 workloads, 1,500 pods, 20,000 external destinations,
# 95,000 workload edges, Zipf popularity, ndots:5 search walks), scanned with the pods file and
# without it, then with the same logs three times over in each file (streaming: RSS must stay
# flat).
# Prints max RSS, time, and the destinations and edges found against the generator's truth.
#   benches/inventory_scale.sh [LINES]
set -euo pipefail
lines=${1:-2000000}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/egress-scout
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 benches/gen_scale.py --out "$work" --lines "$lines"
du -sh "$work"/coredns.log "$work"/envoy.log | sed 's/^/input: /'

# scan LABEL ARGS...: the document in $work/LABEL.json, max RSS and time printed.
scan() {
  local label=$1
  shift
  /usr/bin/time -f "%M %e" -o "$work/$label.time" \
    "$bin" scan --cluster-cidr 10.244.0.0/16 --output json "$@" > "$work/$label.json"
  read -r rss secs < "$work/$label.time"
  python3 - "$work/truth.json" "$work/$label.json" "$label" "$rss" "$secs" <<'EOF'
import json, sys
truth, doc = (json.load(open(p)) for p in sys.argv[1:3])
label, rss, secs = sys.argv[3], int(sys.argv[4]), sys.argv[5]
found = {d["destination"] for d in doc["destinations"]}
want = set(truth["destinations"])
edges = [(d["destination"], e["source"]) for d in doc["destinations"] for e in d["edges"]]
workload_edges = {(s.get("namespace"), s.get("workload"), dest) for dest, s in edges
                  if s.get("workload")}
true_edges = {tuple(e) for e in truth["edges"]}
st = doc["stats"]
print(f"{label:>16}: max RSS {rss / 1024:6.1f} MiB, {secs:>6} s; "
      f"destinations {len(found & want)}/{len(want)} (missing {len(want - found)}, "
      f"extra {len(found - want)}); edges {len(edges)} "
      f"({len(workload_edges & true_edges)}/{len(true_edges)} workload edges of the truth); "
      f"records {st['records']}, folded {st['folded']}, dropped {st['dropped']}")
if want - found:
    sys.exit(f"{label}: destinations lost: {sorted(want - found)[:5]}")
EOF
}

logs=("$work/coredns.log" "$work/envoy.log")
scan "with pods" --pods "$work/pods.json" "${logs[@]}"
scan "without pods" "${logs[@]}"
# The same day three times over, in files of its own (the same two sources).
for f in coredns envoy; do cat "$work/$f.log" "$work/$f.log" "$work/$f.log" > "$work/$f-x3.log"; done
scan "with pods, x3" --pods "$work/pods.json" "$work/coredns-x3.log" "$work/envoy-x3.log"
