#!/usr/bin/env bash
# Installs whatever is missing, and nothing that is already there. Safe to run every time.
# Facts behind each step: ../shared/toolchain.md.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

# 1. The wasm32 target. RUSTUP_AUTO_INSTALL=0 here, so rust-toolchain.toml would not add it.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The linters the test command runs.
for component in clippy rustfmt; do
  if ! rustup component list --installed | grep -q "^$component"; then
    log "adding the $component component"
    rustup component add "$component"
  fi
done

# 2. wasm-bindgen-cli at exactly the version Cargo.lock pins (it also ships the test runner).
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have_cli=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
have_runner=$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have_cli" != "$want" ] || [ "$have_runner" != "$want" ]; then
  log "installing wasm-bindgen-cli $want (about 2 minutes on 2 cores)"
  # --locked fails on this registry (a pinned transitive version is missing); fall back without it.
  cargo install wasm-bindgen-cli --version "$want" --locked --force \
    || cargo install wasm-bindgen-cli --version "$want" --force
fi

# 3. Debian's Chromium and its driver, for the browser tests. Never a downloaded browser.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  log "installing Debian's chromium and chromium-driver"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# 4. The npm dev tools (wasm-opt, playwright-core), pinned by package-lock.json.
stamp=node_modules/.brokerlab-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  log "installing the npm dev tools"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

# 5. A real RabbitMQ for the conformance suite: Debian's package (3.10.8 on Debian 12), and the
#    AMQP client the suite drives it with (pika, pinned), in a venv under target/.
if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
  log "installing Debian's rabbitmq-server"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
  # The package starts a system broker on 5672; the suite runs its own on 5673.
  $sudo_cmd systemctl stop rabbitmq-server >/dev/null 2>&1 || $sudo_cmd service rabbitmq-server stop >/dev/null 2>&1 || true
fi
if ! target/venv/bin/python -c 'import pika' >/dev/null 2>&1; then
  log "making target/venv with pika"
  python3 -m venv target/venv
  target/venv/bin/pip install -q pika==1.3.2
fi
