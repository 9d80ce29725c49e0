#!/usr/bin/env bash
# Start Eventshop's ActiveMQ Classic broker (Debian's package, our activemq.xml) in the background.
# Idempotent: installs the package if missing, does nothing if STOMP already listens on 61613.
#   scripts/activemq/start.sh [DATA_DIR]     (default: var/activemq; logs in DATA_DIR/activemq.log)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BASE="$(mkdir -p "${1:-${ACTIVEMQ_BASE:-$ROOT/var/activemq}}" && cd "${1:-${ACTIVEMQ_BASE:-$ROOT/var/activemq}}" && pwd)"
DATA="$BASE/data"
LOG="$BASE/activemq.log"
PIDFILE="$BASE/activemq.pid"
HOME_DIR=/usr/share/activemq
STOMP_HOST=127.0.0.1
STOMP_PORT=61613
START_TIMEOUT_SECONDS="${ACTIVEMQ_START_TIMEOUT:-90}"

listening() { (exec 3<>"/dev/tcp/$STOMP_HOST/$STOMP_PORT") 2>/dev/null; }

if listening; then
  echo "ActiveMQ already listens on $STOMP_HOST:$STOMP_PORT"
  exit 0
fi

if [ ! -f "$HOME_DIR/bin/activemq.jar" ]; then
  if [ "$(id -u)" != "0" ]; then
    echo "ActiveMQ is not installed; as root: apt-get install -y activemq" >&2
    exit 1
  fi
  # Debian's package installs the broker without starting it (no instance is enabled).
  if ! apt-cache show activemq >/dev/null 2>&1; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq activemq >/dev/null
fi

JAVA="$(command -v java || true)"
if [ -z "$JAVA" ]; then
  echo "java not found (Debian's activemq package should have pulled in a JRE)" >&2
  exit 1
fi

mkdir -p "$DATA" "$BASE/lib"
# The broker answers statistics requests with a map message; turning it into a STOMP frame
# (transformation jms-map-xml) takes XStream, which Debian installs but does not put on the
# broker's classpath. The console's Main loads every jar in ACTIVEMQ_BASE/lib.
ln -sf /usr/share/java/xstream.jar "$BASE/lib/xstream.jar"
echo "Starting ActiveMQ (data: $DATA, log: $LOG)"
# What Debian's /usr/bin/activemq runs, minus its instance layout: the console's Main builds the
# classpath from activemq.home/lib and boots the broker from our config file.
setsid nohup "$JAVA" -Xms64m -Xmx512m \
  -Djava.awt.headless=true \
  --add-reads=java.xml=java.logging \
  --add-opens java.base/java.security=ALL-UNNAMED \
  --add-opens java.base/java.net=ALL-UNNAMED \
  --add-opens java.base/java.lang=ALL-UNNAMED \
  --add-opens java.base/java.util=ALL-UNNAMED \
  --add-opens java.naming/javax.naming.spi=ALL-UNNAMED \
  --add-opens java.base/java.util.concurrent=ALL-UNNAMED \
  --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED \
  -Dactivemq.home="$HOME_DIR" \
  -Dactivemq.base="$BASE" \
  -Dactivemq.conf="$HERE" \
  -Dactivemq.data="$DATA" \
  -Dactivemq.classpath="$HERE" \
  -Dlog4j.configuration="file:$HERE/log4j.properties" \
  -jar "$HOME_DIR/bin/activemq.jar" start "xbean:file:$HERE/activemq.xml" \
  >>"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"

deadline=$((SECONDS + START_TIMEOUT_SECONDS))
until listening; do
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "ActiveMQ exited while starting; the end of $LOG:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "ActiveMQ did not listen on $STOMP_HOST:$STOMP_PORT within ${START_TIMEOUT_SECONDS}s; see $LOG" >&2
    exit 1
  fi
  sleep 0.5
done
echo "ActiveMQ listens on $STOMP_HOST:$STOMP_PORT (STOMP) and $STOMP_HOST:61616 (OpenWire), pid $(cat "$PIDFILE")"
