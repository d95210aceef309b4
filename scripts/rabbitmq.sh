#!/usr/bin/env bash
# A throwaway RabbitMQ on loopback for the conformance suite: `scripts/rabbitmq.sh start` or
# `stop`. Debian's package (3.10 on Debian 12), run as this user from target/rabbitmq, on port
# 5673 so that it never meets a broker of the machine's own. Facts: CONFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
base="$PWD/target/rabbitmq"
bin=/usr/lib/rabbitmq/bin
export HOME="$base/home" RABBITMQ_NODENAME=brokerlab@localhost RABBITMQ_NODE_PORT=5673 \
  RABBITMQ_DIST_PORT=25673 RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_MNESIA_BASE="$base/mnesia" \
  RABBITMQ_LOG_BASE="$base/log" RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins" \
  RABBITMQ_CONF_ENV_FILE="$base/rabbitmq-env.conf" RABBITMQ_CONFIG_FILE="$base/rabbitmq" \
  ERL_CRASH_DUMP="$base/erl_crash.dump"
ctl() { "$bin/rabbitmqctl" -n brokerlab@localhost "$@"; }

case "${1:-}" in
  start)
    if ctl status >/dev/null 2>&1; then exit 0; fi
    rm -rf "$base" && mkdir -p "$HOME" "$base/mnesia" "$base/log"
    echo '[].' >"$base/enabled_plugins"
    : >"$base/rabbitmq-env.conf"
    # The suite's guest user connects over loopback only.
    echo 'loopback_users = none' >"$base/rabbitmq.conf"
    setsid "$bin/rabbitmq-server" >"$base/server.out" 2>&1 </dev/null &
    # await_startup gives up at once while the node is not yet known to epmd: ask again.
    for i in $(seq 120); do
      ctl await_startup --timeout 30 >/dev/null 2>&1 && break
      if [ "$i" -eq 120 ]; then
        echo "rabbitmq.sh: the broker did not start; its output:" >&2
        tail -30 "$base/server.out" >&2
        exit 1
      fi
      sleep 1
    done
    ;;
  stop)
    ctl stop >/dev/null 2>&1 || true
    # Until the node is gone, so that a start right after never meets it.
    for _ in $(seq 60); do
      pgrep -f "sname brokerlab@localhost|RABBITMQ_NODENAME=brokerlab|home $base/home" >/dev/null || break
      sleep 0.5
    done
    ;;
  ctl)
    shift
    ctl "$@"
    ;;
  *)
    echo "usage: scripts/rabbitmq.sh start|stop|ctl ARGS" >&2
    exit 2
    ;;
esac
