#!/usr/bin/env bash
# Fuzzing (issue 8): both cargo-fuzz targets, each for a bounded time, from the corpus kept in
# fuzz/corpus. Prints one JSON line per target: executions, crashes, new corpus entries.
# New entries go to target/fuzz-new/<target>, so that a run leaves the committed corpus as it
# was. To keep them: cargo +nightly fuzz run <target> fuzz/corpus/<target> target/fuzz-new/<target> -- -merge=1
# Needs nightly (installed) and cargo-fuzz (installed here if missing, from crates.io).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 60; the recorded runs used 600)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2 >&2
mkdir -p target/fuzz-logs
# Files under the given folders; a folder that does not exist yet (fuzz/artifacts on a fresh
# clone) has none, rather than failing the script under pipefail.
files() { find "$@" -type f 2>/dev/null || true; }
for target in scenario operations; do
  case "$target" in
    scenario) extra=(-dict=fuzz/scenario.dict -max_len=8192) ;;
    operations) extra=(-max_len=520) ;;
  esac
  mkdir -p "target/fuzz-new/$target"
  before=$(files "fuzz/corpus/$target" "target/fuzz-new/$target" | wc -l)
  crashes_before=$(files "fuzz/artifacts/$target" | wc -l)
  status=0
  cargo +nightly fuzz run -O "$target" "target/fuzz-new/$target" "fuzz/corpus/$target" -- "${extra[@]}" \
    -max_total_time="$seconds" -print_final_stats=1 >"target/fuzz-logs/$target.log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "target/fuzz-logs/$target.log" | grep -o '[0-9]*$' || echo 0)
  crashes=$(( $(files "fuzz/artifacts/$target" | wc -l) - crashes_before ))
  after=$(files "fuzz/corpus/$target" "target/fuzz-new/$target" | wc -l)
  printf '{"target": "%s", "seconds": %s, "executions": %s, "crashes": %s, "exit": %s, "corpus_before": %s, "corpus_after": %s}\n' \
    "$target" "$seconds" "${execs:-0}" "$crashes" "$status" "$before" "$after"
done
