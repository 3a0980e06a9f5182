#!/usr/bin/env bash
# The report page's drawing time with a large inventory (default 5,000 destinations, 20,000
# edges, 1,500 workloads): writes it with `egress-scout report --inventory`, opens it in
# headless Chromium over chromedriver and prints the time from navigation to the first full
# drawing (the page's `egress-scout:drawn` mark) and to its first paint, and the file's size. Needs chromium and
# chromium-driver (Debian); builds the release binary unless EGRESS_SCOUT_BIN names one.
#   benches/report.sh [DESTINATIONS EDGES WORKLOADS]
set -euo pipefail
cd "$(dirname "$0")/.."
destinations=${1:-5000} edges=${2:-20000} workloads=${3:-1500}
dir=$(mktemp -d)
trap 'kill "${driver:-0}" 2>/dev/null || true; rm -rf "$dir"' EXIT
bin=${EGRESS_SCOUT_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin egress-scout
  bin=./target/release/egress-scout
fi
python3 benches/gen_report_inventory.py "$destinations" "$edges" "$workloads" > "$dir/inventory.json"
"$bin" report --inventory "$dir/inventory.json" -o "$dir/egress.html"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
chromedriver --port="$port" >/dev/null 2>&1 &
driver=$!
python3 - "$port" "$dir" <<'PY'
import json, sys, time, urllib.request
port, folder = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))["value"]
for _ in range(100):
    try:
        call("GET", "/status"); break
    except Exception:
        time.sleep(0.1)
args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
        f"--user-data-dir={folder}/profile"]
session = call("POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}})["sessionId"]
times = []
for run in range(3):
    call("POST", f"/session/{session}/url", {"url": f"file://{folder}/egress.html"})
    drawn = call("POST", f"/session/{session}/execute/async", {"script": "const done = arguments[0]; requestAnimationFrame(() => setTimeout(() => { const m = performance.getEntriesByName('egress-scout:drawn')[0]; const p = performance.getEntriesByName('first-contentful-paint')[0]; done([m ? m.startTime : null, p ? p.startTime : null, document.querySelectorAll('#map path.edge').length, document.querySelectorAll('#destinations tbody tr').length]); }, 0));", "args": []})
    times.append(max(drawn[0], drawn[1] or 0))
    print(f"run {run + 1}: drawn after {drawn[0]:.0f} ms, painted after {drawn[1] or 0:.0f} ms: {drawn[2]} map edges, {drawn[3]} destination rows")
call("DELETE", f"/session/{session}")
print(f"best {min(times):.0f} ms (navigation to drawn and painted)")
PY
echo "report: $(du -h "$dir/egress.html" | cut -f1)"
