#!/usr/bin/env bash
# Stops the SQS/SNS emulator that scripts/sqs/start.sh started (by its pid file under var/sqs/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PID_FILE="$ROOT/var/sqs/moto.pid"

if [ ! -f "$PID_FILE" ]; then
  echo "No SQS/SNS emulator started from $ROOT (no $PID_FILE)"
  exit 0
fi
pid="$(cat "$PID_FILE")"
if kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
  fi
  echo "Stopped the SQS/SNS emulator (pid $pid)"
else
  echo "The SQS/SNS emulator (pid $pid) was not running"
fi
rm -f "$PID_FILE"
