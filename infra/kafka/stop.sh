#!/usr/bin/env bash
# Stops the broker that infra/kafka/start.sh started on KAFKA_PORT (default
# 19092): SIGTERM for a clean shutdown, SIGKILL after KAFKA_STOP_TIMEOUT seconds
# (default 30), then removes its data dir if start.sh created it as a temp dir.
# Idempotent: nothing running is not an error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${KAFKA_PORT:-19092}"
timeout_s="${KAFKA_STOP_TIMEOUT:-30}"
run_dir="$here/.run/$port"

log() { echo "kafka: $*" >&2; }

if [ ! -d "$run_dir" ]; then
  log "no broker started by start.sh on port $port"
  exit 0
fi

if [ -f "$run_dir/kafka.pid" ]; then
  pid="$(cat "$run_dir/kafka.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + timeout_s))
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        log "pid $pid still running after ${timeout_s}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.2
    done
    log "stopped pid $pid"
  fi
fi

data_dir="$(cat "$run_dir/data-dir" 2>/dev/null || true)"
if [ -n "$data_dir" ] && [ "$(cat "$run_dir/data-dir-is-temp" 2>/dev/null || echo 0)" = 1 ]; then
  rm -rf "$data_dir"
fi
rm -rf "$run_dir"
