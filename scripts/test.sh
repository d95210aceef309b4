#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs every test there is.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }

scripts/setup.sh

step "style: rustfmt and clippy (native and wasm32)"
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --target wasm32-unknown-unknown -- -D warnings

step "native: unit, simulation, CLI and tidy tests"
cargo test -- --show-output

step "wasm32: the simulation tests in Node, the wasm door in headless Chromium"
WASM_BINDGEN_TEST_TIMEOUT=120 cargo test --target wasm32-unknown-unknown

step "the page's fold, in Node, over the real wasm build"
scripts/build.sh
node --test tests/fold/

step "the page, end to end, in Chromium"
node tests/e2e/e2e.mjs

step "conformance: the same timelines on the engine and on a real RabbitMQ"
scripts/conformance.sh
