#!/usr/bin/env bash
# Stop the broker scripts/activemq/start.sh started (same DATA_DIR argument, if one was given).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BASE="${1:-${ACTIVEMQ_BASE:-$ROOT/var/activemq}}"
PIDFILE="$BASE/activemq.pid"
STOP_TIMEOUT_SECONDS=30

if [ ! -f "$PIDFILE" ] || ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "ActiveMQ is not running (no live pid in $PIDFILE)"
  rm -f "$PIDFILE"
  exit 0
fi
pid="$(cat "$PIDFILE")"
# SIGTERM runs the broker's shutdown hook: the store and the selector cache are saved.
kill -TERM "$pid"
deadline=$((SECONDS + STOP_TIMEOUT_SECONDS))
while kill -0 "$pid" 2>/dev/null; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "ActiveMQ (pid $pid) did not stop within ${STOP_TIMEOUT_SECONDS}s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    break
  fi
  sleep 0.5
done
rm -f "$PIDFILE"
echo "ActiveMQ stopped"
