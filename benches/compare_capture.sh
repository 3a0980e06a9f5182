#!/usr/bin/env bash
# Packets per second reading one multi-million-packet pcap on one core (taskset -c 0):
# `egress-scout scan` (the whole pipeline: decode, flows, SNI, DNS, inventory) side by side
# with `tcpdump -nn -r FILE > /dev/null` and `tshark -r FILE -T fields -e ip.dst > /dev/null`;
# prints each and the ratios. The capture comes from benches/gen_pcap.py.
#   benches/compare_capture.sh [PACKETS]   (default 5000000; needs tcpdump and tshark)
set -euo pipefail
packets=${1:-5000000}
cd "$(dirname "$0")/.."
for tool in tcpdump tshark taskset; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install tcpdump tshark util-linux)" >&2; exit 1; }
done
cargo build --release --quiet
bin=$PWD/target/release/egress-scout
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pcap="$work/capture.pcap"
python3 benches/gen_pcap.py --packets "$packets" > "$pcap"
count=$(tcpdump -nn -r "$pcap" 2>/dev/null | wc -l)
cat "$pcap" > /dev/null # the same page cache for all

# Best wall-clock seconds of $1 runs of the rest.
best_of() {
  local runs=$1 best="" t TIMEFORMAT=%R
  shift
  for _ in $(seq "$runs"); do
    t=$( { time taskset -c 0 "$@" > /dev/null 2>&1; } 2>&1 )
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
  done
  echo "$best"
}

scout_s=$(best_of 3 "$bin" scan --output json "$pcap")
tcpdump_s=$(best_of 3 tcpdump -nn -r "$pcap")
tshark_s=$(best_of 1 tshark -r "$pcap" -T fields -e ip.dst)
python3 - "$count" "$(stat -c %s "$pcap")" "$scout_s" "$tcpdump_s" "$tshark_s" <<'PY'
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
scout, tcpdump, tshark = map(float, sys.argv[3:])
print(f"{n:,} packets, {size / 1e6:.0f} MB, one core")
for name, s in [("egress-scout scan", scout), ("tcpdump -nn -r", tcpdump), ("tshark -T fields -e ip.dst", tshark)]:
    print(f"  {name:28} {s:7.2f} s  {n / s:>12,.0f} packets/s")
print(f"egress-scout is {tcpdump / scout:.1f}x tcpdump and {tshark / scout:.1f}x tshark")
PY
