#!/usr/bin/env bash
# `policy generate` on one core: EDGES observed workload edges (default 10,000) of a generated
# mid-size cluster (benches/gen_policy.py: 150 workloads, 1,500 pods), every kind at once,
# by a release build pinned to CPU 0; then the Cilium policies proven with `policy check`
# (every observed edge allowed). Prints wall time, max RSS and documents written.
#   benches/policy_generate.sh [EDGES]
set -euo pipefail
edges=${1:-10000}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/egress-scout
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 benches/gen_policy.py --out "$work" --edges "$edges" --queries 1
# The generated cluster without its policies: what generation starts from.
python3 - "$work" <<'PY'
import json, sys
d = json.load(open(f"{sys.argv[1]}/cluster.json"))
d["items"] = [i for i in d["items"] if i["kind"] in ("Namespace", "Pod", "ReplicaSet", "Service")]
json.dump(d, open(f"{sys.argv[1]}/base.json", "w"))
PY
for run in 1 2 3; do
  /usr/bin/time -f "%e %M" -o "$work/time" taskset -c 0 "$bin" policy generate \
    --inventory "$work/inventory.json" --cluster "$work/base.json" \
    --kind networkpolicy --kind cilium --kind istio --kind adminnetworkpolicy \
    --out "$work/out" 2> "$work/notes"
  read -r secs rss < "$work/time"
  docs=$(cat "$work"/out/*.yaml | grep -c '^---$')
  echo "run $run: $edges edges -> $docs documents in ${secs} s on one core, max RSS $((rss / 1024)) MiB"
done
"$bin" policy generate --inventory "$work/inventory.json" --cluster "$work/base.json" \
  --kind cilium > "$work/cilium.yaml" 2>/dev/null
"$bin" policy check --inventory "$work/inventory.json" --cluster "$work/base.json" \
  --cluster "$work/cilium.yaml" --output json --fail-on denied > "$work/check.json"
python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['totals']; print('check of the Cilium policies:', t)" "$work/check.json"
