#!/usr/bin/env bash
# The conformance suite against a real RabbitMQ on loopback: starts the broker, runs every
# timeline in conformance/timelines on the engine (the release CLI) and on the broker, and
# stops the broker whatever happens. `--markdown` rewrites CONFORMANCE.md's table.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin brokerlab
scripts/rabbitmq.sh start
trap 'scripts/rabbitmq.sh stop' EXIT
args=(target/release/brokerlab)
[ "${1:-}" = "--markdown" ] && args+=(--markdown CONFORMANCE.md)
target/venv/bin/python conformance/run.py "${args[@]}"
