#!/usr/bin/env bash
# The local Amazon SQS + SNS: moto's server on 127.0.0.1:4566 (BROKER_URL=sqs://us-east-1?endpoint=http://127.0.0.1:4566).
# Idempotent: installs the pinned moto[server] and boto3 into the project venv if they are missing,
# starts the server in the background (log and pid under var/sqs/), waits until it answers.
# Does nothing if something already answers on the port. scripts/sqs/stop.sh stops it.
#
#   EVENTSHOP_VENV      the venv to use (default: .venv at the repository root)
#   SQS_EMULATOR_PORT   default 4566
#   SQS_START_TIMEOUT   seconds to wait for it to answer (default 30)
set -euo pipefail

# Keep in step with pyproject.toml.
MOTO_VERSION="5.2.5"
BOTO3_VERSION="1.44.8"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${EVENTSHOP_VENV:-$ROOT/.venv}"
HOST="127.0.0.1"
PORT="${SQS_EMULATOR_PORT:-4566}"
TIMEOUT="${SQS_START_TIMEOUT:-30}"
RUN_DIR="$ROOT/var/sqs"
PYTHON="$VENV/bin/python"

if [ ! -x "$PYTHON" ]; then
  echo "No Python at $PYTHON: create the project venv first (python3 -m venv .venv), or set EVENTSHOP_VENV." >&2
  exit 1
fi

answers() {
  "$PYTHON" - "$HOST" "$PORT" <<'PY'
import sys, urllib.request, urllib.error
try:
    # The dashboard page: cheap whatever the emulator holds (data.json dumps every queue and topic).
    urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/moto-api/", timeout=5)
except urllib.error.HTTPError:
    pass  # answering, even with an error status
except OSError:
    sys.exit(1)
PY
}

if answers; then
  echo "SQS/SNS emulator already answers on $HOST:$PORT"
  exit 0
fi

if ! "$PYTHON" - "$MOTO_VERSION" "$BOTO3_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import flask, flask_cors  # moto's [server] extra
assert version("moto") == sys.argv[1] and version("boto3") == sys.argv[2]
PY
then
  echo "Installing moto[server]==$MOTO_VERSION and boto3==$BOTO3_VERSION into $VENV ..."
  "$VENV/bin/pip" install --quiet "moto[server]==$MOTO_VERSION" "boto3==$BOTO3_VERSION"
fi

mkdir -p "$RUN_DIR"
# setsid: the server outlives this shell and is not hit by its terminal's signals.
setsid "$PYTHON" -m moto.server -H "$HOST" -p "$PORT" >"$RUN_DIR/moto.log" 2>&1 < /dev/null &
echo $! >"$RUN_DIR/moto.pid"

deadline=$((SECONDS + TIMEOUT))
until answers; do
  if ! kill -0 "$(cat "$RUN_DIR/moto.pid")" 2>/dev/null; then
    echo "The SQS/SNS emulator exited at start; see $RUN_DIR/moto.log:" >&2
    tail -n 20 "$RUN_DIR/moto.log" >&2
    rm -f "$RUN_DIR/moto.pid"
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "The SQS/SNS emulator did not answer on $HOST:$PORT within ${TIMEOUT}s; see $RUN_DIR/moto.log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "SQS/SNS emulator (moto $MOTO_VERSION) answers on http://$HOST:$PORT (pid $(cat "$RUN_DIR/moto.pid"), log $RUN_DIR/moto.log)"
