#!/usr/bin/env bash
# Stops the redis-server that infra/redis/start.sh started on REDIS_PORT
# (required) and removes its temp data dir — unless REDIS_KEEP_DATA=1, which
# keeps it (its path is printed) so start.sh can restart on the same AOF.
# Idempotent: nothing running is not an error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${REDIS_PORT:?set REDIS_PORT to the port start.sh used}"
run_dir="$here/.run/$port"

log() { echo "redis: $*" >&2; }

if [ ! -d "$run_dir" ]; then
  log "no redis started by start.sh on port $port"
  exit 0
fi

if [ -f "$run_dir/redis.pid" ]; then
  pid="$(cat "$run_dir/redis.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    # SIGTERM: redis fsyncs the AOF and exits.
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        log "pid $pid still running after 20s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.1
    done
    log "stopped pid $pid"
  fi
fi

data_dir="$(cat "$run_dir/data-dir" 2>/dev/null || true)"
if [ "${REDIS_KEEP_DATA:-0}" = 1 ]; then
  [ -n "$data_dir" ] && echo "$data_dir"
elif [ -n "$data_dir" ] && [ "$(cat "$run_dir/data-dir-is-temp" 2>/dev/null || echo 0)" = 1 ]; then
  rm -rf "$data_dir"
fi
rm -rf "$run_dir"
