#!/usr/bin/env bash
# Benchmarks, not tests: everything in one run on one machine, one table on stdout, and
# BENCHMARKS.md rewritten from the figures (benches/report.py).
#
#  - the M/M/c model (λ = 9/s, c = 10, μ = 1/s, 200,000 messages) natively, in wasm under Node,
#    in SimPy and in Ciw (from PyPI, into target/bench-venv), with mean waits beside Erlang C;
#  - the same natively and in wasm at 10^6 messages (issue 3), and the floor: the same model
#    as a bare event loop with none of the engine's semantics (benches/floor.rs);
#  - the cost per event at 10^3 … 10^6 in flight, and the memory of a 10^6-message run;
#  - the mean wait of 40 seeds × 10^6 messages against Erlang C (is one run's gap noise?);
#  - the page in headless Chromium: frame times, seek latency, load;
#  - both fuzz targets for FUZZ_SECONDS each (default 600), and a long swarm.
#
#   scripts/bench.sh                  FUZZ_SECONDS=60 scripts/bench.sh   (a quicker pass)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds="${FUZZ_SECONDS:-600}"
out=target/bench
mkdir -p "$out"
results="$out/results.jsonl"
: >"$results"
log() { printf 'bench: %s\n' "$*" >&2; }
tag() { python3 -c 'import json,sys; r=json.loads(sys.argv[2]); r.update(json.loads(sys.argv[1])); print(json.dumps(r))' "$1" "$2" >>"$results"; }

scripts/setup.sh
scripts/build.sh >/dev/null
cargo build --quiet --release
if [ ! -x target/bench-venv/bin/python ]; then
  log "installing SimPy and Ciw into target/bench-venv"
  python3 -m venv target/bench-venv
fi
target/bench-venv/bin/pip install --quiet -r benches/python/requirements.txt

log "M/M/c: native, wasm in Node, SimPy, Ciw"
for messages in 200000 1000000; do
  tag "{\"kind\": \"mmc\", \"tool\": \"native\"}" "$(cargo bench --quiet --bench mmc -- "$messages" 2>/dev/null | tail -n 1)"
  tag "{\"kind\": \"mmc\", \"tool\": \"wasm-node\"}" "$(node benches/mmc.mjs "$messages")"
done
tag '{"kind": "floor"}' "$(cargo bench --quiet --bench floor -- 1000000 2>/dev/null | tail -n 1)"
for tool in simpy ciw; do
  tag "{\"kind\": \"mmc\", \"tool\": \"$tool\"}" "$(target/bench-venv/bin/python benches/python/mmc.py "$tool" 200000)"
done

log "cost per event as messages in flight grow"
cargo bench --quiet --bench scaling 2>/dev/null | while read -r line; do tag '{"kind": "scaling"}' "$line"; done

log "memory of a 10^6-message run"
node -e '
  const consumers = Array.from({ length: 10 }, (_, i) => ({ name: `server-${i + 1}`, from: "work", processing: { kind: "exponential", mean_ms: 1000 } }));
  const n = 1000000;
  console.log(JSON.stringify({ name: "M/M/c, 10^6 messages", seed: 1, duration_ms: (Math.floor(n / 9) + 3600) * 1000,
    queues: [{ name: "work" }], producers: [{ name: "arrivals", to: "work", schedule: { kind: "poisson", rate_per_s: 9, count: n } }], consumers }));
' >"$out/mmc-1000000.json"
/usr/bin/time -v target/release/brokerlab run "$out/mmc-1000000.json" >/dev/null 2>"$out/time.txt"
rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$out/time.txt")
tag "{\"kind\": \"memory\"}" "{\"messages\": 1000000, \"max_rss_kib\": $rss}"

log "mean wait over many seeds, against Erlang C"
waits=$(for seed in $(seq 1 40); do
  target/release/brokerlab run "$out/mmc-1000000.json" --seed "$seed" | python3 -c 'import json, sys; print(json.load(sys.stdin)["mean_wait_ms"])'
done | python3 -c 'import json, statistics as s, sys; xs = [float(l) for l in sys.stdin]; print(json.dumps({"seeds": len(xs), "messages": 1000000, "mean_wait_ms": s.mean(xs), "stdev_ms": s.stdev(xs), "stderr_ms": s.stdev(xs) / len(xs) ** 0.5}))')
tag '{"kind": "waits"}' "$waits"

log "the page in headless Chromium"
tag '{"kind": "page"}' "$(node benches/page.mjs)"

log "fuzzing, ${fuzz_seconds} s per target"
scripts/fuzz.sh "$fuzz_seconds" | while read -r line; do tag '{"kind": "fuzz"}' "$line"; done

log "long swarm"
start=$(date +%s.%N)
swarm=$(target/release/brokerlab swarm --seeds 10000)
seconds=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)")
tag "{\"kind\": \"swarm\", \"seconds\": $seconds}" "$swarm"

python3 benches/report.py "$results" BENCHMARKS.md
