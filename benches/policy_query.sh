#!/usr/bin/env bash
# `policy query` throughput on one core: a generated mid-size cluster (benches/gen_policy.py:
# 1,500 pods in 150 workloads, ~320 NetworkPolicies, 50 Cilium policies, 60 ServiceEntries,
# ANP and BANP) and QUERIES questions (default 10,000), answered by a release build pinned
# to CPU 0. Prints wall time, max RSS and the allowed/denied/error counts.
#   benches/policy_query.sh [QUERIES]
set -euo pipefail
queries=${1:-10000}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/egress-scout
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 benches/gen_policy.py --out "$work" --queries "$queries"
du -h "$work/cluster.json" | sed 's/^/cluster: /'
for run in 1 2 3; do
  /usr/bin/time -f "%e %M" -o "$work/time" taskset -c 0 \
    "$bin" policy query "$work/cluster.json" --queries "$work/queries.jsonl" > "$work/answers.jsonl"
  read -r secs rss < "$work/time"
  python3 - "$work/answers.jsonl" "$queries" "$secs" "$rss" "$run" <<'PY'
import json, sys
answers = [json.loads(l) for l in open(sys.argv[1])]
n, secs, rss, run = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
assert len(answers) == n, f"{len(answers)} answers for {n} questions"
allowed = sum(1 for a in answers if a.get("allowed") is True)
denied = sum(1 for a in answers if a.get("allowed") is False)
errors = sum(1 for a in answers if "error" in a)
print(f"run {run}: {n} queries in {secs:.2f} s on one core ({n / max(secs, 0.001):,.0f}/s), "
      f"max RSS {rss / 1024:.1f} MiB; allowed {allowed}, denied {denied}, errors {errors}")
PY
done
