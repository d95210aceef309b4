#!/usr/bin/env bash
# The README's serve command: installs what is missing, builds the wasm, serves the playground.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec node scripts/serve.mjs "$@"
