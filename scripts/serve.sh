#!/usr/bin/env bash
# `make serve` / `make stop`: a local Prefect server on loopback, the `twomountains` process
# pool, every deployment of prefect.yaml, a worker, and the bureaus' web portal (which sends
# corrections to the server's correction-rerun deployment). What it starts is recorded by pid
# and stopped by pid.
#
#   scripts/serve.sh start     (PREFECT_PORT, default 4200; PREFECT_HOME, default ./.prefect;
#                               PORTAL_HOST, default 127.0.0.1; PORTAL_PORT, default 8000)
#   scripts/serve.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PREFECT_HOME=${PREFECT_HOME:-$PWD/.prefect}
PORT=${PREFECT_PORT:-4200}
PORTAL_HOST=${PORTAL_HOST:-127.0.0.1}
PORTAL_PORT=${PORTAL_PORT:-8000}
# the runs' Prefect artifacts link to the workbench's pages rather than to files on this disk
export TWOMOUNTAINS_PORTAL_URL=${TWOMOUNTAINS_PORTAL_URL:-http://$PORTAL_HOST:$PORTAL_PORT}
STATE="$PREFECT_HOME/serve"
export PREFECT_API_URL="http://127.0.0.1:$PORT/api"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export TWOMOUNTAINS_HOME=${TWOMOUNTAINS_HOME:-$PWD}
PREFECT="$VENV/bin/prefect"

stop() {
  for name in portal worker server; do
    if [ -f "$STATE/$name.pid" ]; then
      pid=$(cat "$STATE/$name.pid")
      kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 -- "-$pid" 2>/dev/null || true
      rm -f "$STATE/$name.pid"
      echo "stopped $name ($pid)"
    fi
  done
}

start() {
  mkdir -p "$STATE"
  if [ -f "$STATE/server.pid" ] && kill -0 "$(cat "$STATE/server.pid")" 2>/dev/null; then
    echo "already running; 'make stop' first" >&2
    exit 1
  fi
  setsid "$PREFECT" server start --host 127.0.0.1 --port "$PORT" > "$STATE/server.log" 2>&1 &
  echo $! > "$STATE/server.pid"
  healthy() { "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
      "http://127.0.0.1:$PORT/api/health" > /dev/null 2>&1; }
  for _ in $(seq 1 120); do healthy && break; sleep 1; done
  healthy || { echo "server did not start; see $STATE/server.log" >&2; stop; exit 1; }
  "$PREFECT" work-pool create twomountains --type process --overwrite > /dev/null
  "$PREFECT" --no-prompt deploy --all
  setsid "$PREFECT" worker start --pool twomountains > "$STATE/worker.log" 2>&1 &
  echo $! > "$STATE/worker.pid"
  setsid "$VENV/bin/twomountains" web --host "$PORTAL_HOST" --port "$PORTAL_PORT" \
    --data "$TWOMOUNTAINS_HOME/data/sample" --out "$TWOMOUNTAINS_HOME/reports" > "$STATE/portal.log" 2>&1 &
  echo $! > "$STATE/portal.pid"
  up() { "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
      "http://$PORTAL_HOST:$PORTAL_PORT/login" > /dev/null 2>&1; }
  for _ in $(seq 1 60); do up && break; sleep 0.5; done
  up || { echo "portal did not start; see $STATE/portal.log" >&2; stop; exit 1; }
  echo "Prefect UI: http://127.0.0.1:$PORT  (server log $STATE/server.log, worker log $STATE/worker.log)"
  echo "报送门户 / portal: http://$PORTAL_HOST:$PORTAL_PORT/  (log $STATE/portal.log)"
  echo "在另一终端使用该服务器 / to use this server from another shell: export PREFECT_API_URL=$PREFECT_API_URL"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
