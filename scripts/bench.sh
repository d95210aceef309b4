#!/usr/bin/env bash
# Benchmarks, not tests: the M/M/c work queue (λ = 9/s, c = 10, μ = 1/s), natively and in wasm
# under Node, in one run on one machine, and the ratio. The two must reach the same trace hash.
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
