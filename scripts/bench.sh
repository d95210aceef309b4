#!/usr/bin/env bash
# Benchmarks, not tests: the M/M/c work queue (λ = 9/s, c = 10, μ = 1/s), natively and in wasm
# under Node, in one run on one machine, and the ratio (the two must reach the same trace hash);
# then the page in headless Chromium: frame time with messages in motion, seek latency, load.
#
#   scripts/bench.sh [MESSAGES]      (default 1,000,000)
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-1000000}"
scripts/setup.sh
scripts/build.sh >/dev/null
native=$(cargo bench --quiet --bench mmc -- "$messages" 2>/dev/null | tail -n 1)
wasm=$(node benches/mmc.mjs "$messages")
python3 - "$native" "$wasm" <<'PY'
import json, sys
n, w = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{'target':<10} {'messages':>10} {'events':>10} {'seconds':>8} {'messages/s':>14} {'mean wait':>10}  trace hash")
for r in (n, w):
    print(f"{r['target']:<10} {r['messages']:>10,} {r['events']:>10,} {r['seconds']:>8.3f} {r['messages_per_s']:>14,.0f} {r['mean_wait_ms']:>8.1f}ms  {r['trace_hash']}")
print(f"wasm / native: {w['messages_per_s'] / n['messages_per_s']:.2f}x")
if n['trace_hash'] != w['trace_hash']:
    sys.exit("the native and wasm runs reached different trace hashes")
PY
page=$(node benches/page.mjs)
python3 - "$page" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print()
print(f"{'in motion':>10} {'p50 frame':>10} {'p95 frame':>10}   (goal: p95 <= 16.7 ms at 5,000)")
for n, f in r['frames'].items():
    print(f"{f['in_motion']:>10,} {f['p50_ms']:>8.1f}ms {f['p95_ms']:>8.1f}ms")
s = r['seek']
print(f"seek in a run of {s['events']:,} events: p50 {s['p50_ms']:.0f} ms, max {s['max_ms']:.0f} ms over {s['seeks']} seeks (goal <= 50 ms)")
l = r['load']
print(f"load: {l['gzip_total'] / 1024:.0f} KiB gzipped (goal <= 250), first frame {l['first_frame_ms']:.0f} ms after navigation (goal <= 500)")
PY
