#!/usr/bin/env bash
# Times `egress-scout scan` against the manual procedure's grep pipeline on the same generated
# CoreDNS log (default 120 MB), best of 3 runs each, and prints both and the ratio.
#   benches/compare_grep.sh [SIZE_MB]
set -euo pipefail
size_mb=${1:-120}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/egress-scout
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/coredns.log"
python3 benches/gen_coredns.py --mb "$size_mb" > "$log"
bytes=$(stat -c %s "$log")
lines=$(wc -l < "$log")
cat "$log" > /dev/null # same page cache for both

grep_pipeline() {
  grep -v cluster.local "$1" | grep -E '\.com|\.io|\.net|\.org|\.ai' | sort | uniq -c
}
scout() {
  "$bin" scan --format coredns --cluster-cidr 10.244.0.0/16 --output json "$1"
}

# Best wall-clock seconds of three runs of "$@".
best_of_3() {
  local best="" t TIMEFORMAT=%R
  for _ in 1 2 3; do
    t=$( { time "$@" > /dev/null 2>&1; } 2>&1 )
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
  done
  echo "$best"
}

grep_s=$(best_of_3 grep_pipeline "$log")
scout_s=$(best_of_3 scout "$log")
grep_rows=$(grep_pipeline "$log" | wc -l)
scout_dest=$(scout "$log" | python3 -c 'import json, sys
d = json.load(sys.stdin)["destinations"]
print(len(d), "destinations,", sum(len(x["edges"]) for x in d), "(source, destination) edges")')

mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "input: $mb MB, $lines CoreDNS lines"
printf '%-40s %8ss %9.1f MB/s  %s\n' "grep -v | grep -E | sort | uniq -c" "$grep_s" \
  "$(awk -v b="$bytes" -v t="$grep_s" 'BEGIN { print b / 1e6 / t }')" "$grep_rows rows (one per distinct line, expansions included)"
printf '%-40s %8ss %9.1f MB/s  %s\n' "egress-scout scan" "$scout_s" \
  "$(awk -v b="$bytes" -v t="$scout_s" 'BEGIN { print b / 1e6 / t }')" "$scout_dest"
awk -v g="$grep_s" -v s="$scout_s" 'BEGIN { printf "ratio: egress-scout is %.2fx the speed of the grep pipeline\n", g / s }'
