#!/usr/bin/env bash
# Builds the wasm package into www/pkg: release build, wasm-bindgen (web target), wasm-opt.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --lib --release --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir www/pkg target/wasm32-unknown-unknown/release/brokerlab.wasm
# npm's binaryen, never Debian's (its wasm-opt 108 breaks this output; see toolchain.md).
node_modules/.bin/wasm-opt -Oz www/pkg/brokerlab_bg.wasm -o www/pkg/brokerlab_bg.wasm
