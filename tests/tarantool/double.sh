#!/usr/bin/env bash
# Starts, stops or checks the Cartridge double (cartridge_double.lua), one
# Tarantool process in its own session. Idempotent: start on a running double
# and stop on a stopped one succeed.
#
#   double.sh start|stop|status
#
# Environment:
#   DOUBLE_STATE_DIR    default for the three files below (default target/tarantool-double)
#   DOUBLE_PID_FILE     default $DOUBLE_STATE_DIR/double.pid
#   DOUBLE_LOG_FILE     default $DOUBLE_STATE_DIR/double.log
#   DOUBLE_CONTROL      control socket, default $DOUBLE_STATE_DIR/double.control
#                       (a unix socket path has at most 107 bytes)
#   DOUBLE_MARKERS_DIR  optional: a directory of <name>.json instance markers to serve
#   TARANTOOL_BUCKET_COUNT, DOUBLE_DRAIN_RATE  passed to the double
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
STATE=${DOUBLE_STATE_DIR:-$REPO_ROOT/target/tarantool-double}
PID_FILE=${DOUBLE_PID_FILE:-$STATE/double.pid}
LOG_FILE=${DOUBLE_LOG_FILE:-$STATE/double.log}
CONTROL=${DOUBLE_CONTROL:-$STATE/double.control}
MARKERS=${DOUBLE_MARKERS_DIR:-}

say() { printf '[double] %s\n' "$*" >&2; }
die() { printf '[double] ERROR: %s\n' "$*" >&2; exit 1; }

# Only a pid that still runs our script counts (pids get reused).
ours() {
  [[ -n ${1:-} ]] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q 'cartridge_double\.lua'
}
pid() { cat "$PID_FILE" 2>/dev/null || true; }
answers() { echo 'return true' | tarantoolctl connect "$CONTROL" 2>/dev/null | grep -qx -- '- true'; }

case ${1:-} in
  start)
    command -v tarantool >/dev/null && command -v tarantoolctl >/dev/null ||
      die "tarantool and tarantoolctl are needed: make setup-tarantool"
    if ours "$(pid)" && answers; then say "already running (pid $(pid)), control $CONTROL"; exit 0; fi
    if ours "$(pid)"; then "$0" stop; fi
    (( ${#CONTROL} <= 107 )) || die "control socket path too long (${#CONTROL} bytes, at most 107): $CONTROL"
    mkdir -p "$(dirname "$PID_FILE")" "$(dirname "$LOG_FILE")" "$(dirname "$CONTROL")"
    # 9>&-: do not hold the control plane's lock (fd 9) for the double's lifetime.
    setsid tarantool "$HERE/cartridge_double.lua" "$CONTROL" ${MARKERS:+"$MARKERS"} \
      </dev/null >>"$LOG_FILE" 2>&1 9>&- &
    echo $! >"$PID_FILE"
    for _ in $(seq 100); do
      answers && { say "running (pid $(pid)), control $CONTROL, log $LOG_FILE"; exit 0; }
      ours "$(pid)" || break
      sleep 0.1
    done
    tail -n 20 "$LOG_FILE" | sed 's/^/    /' >&2
    "$0" stop || true
    die "the double did not answer on $CONTROL (log: $LOG_FILE)"
    ;;
  stop)
    p=$(pid)
    if ours "$p"; then
      kill -TERM "$p" 2>/dev/null || true
      for _ in $(seq 50); do ours "$p" || break; sleep 0.1; done
      if ours "$p"; then say "pid $p did not stop on SIGTERM: killing it"; kill -KILL "$p" 2>/dev/null || true; fi
    fi
    rm -f "$PID_FILE" "$CONTROL"
    ;;
  status)
    p=$(pid)
    ours "$p" || { say "not running (pid file $PID_FILE)"; exit 1; }
    answers || { say "pid $p does not answer on $CONTROL (log: $LOG_FILE)"; exit 1; }
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
