#!/usr/bin/env bash
# Stops and starts kube-apiserver or etcd of the running local control plane
# (a control-plane fault for the tests), on the same ports, data dir and
# certificates, so that every client and component reconnects to the same
# addresses.
#
#   restart.sh apiserver|etcd [--down-seconds N]   stop, stay down N s (default 0), start
#   restart.sh apiserver|etcd --stop               stop only (its command line is kept)
#   restart.sh apiserver|etcd --start              start from the kept command line;
#                                                  nothing to do when it runs already
#   restart.sh scheduler|controller-manager --start
#                                                  the same for a component that exited
#                                                  on its own (a kubelet's restart)
#
# The component is started again with the very command line cluster-up.sh
# gave it (read from /proc before it is stopped, kept in run/NAME.cmdline),
# so flags added there later come along. Starting waits until it is healthy
# (etcd's /health and the apiserver's /readyz, whichever was restarted).
#
# Everything else on this control plane sees the outage: run one fault at a
# time, and always --start what was --stop'ped (the harness does, on drop).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
RUN=$CP_TARGET/run
LOGS=$CP_TARGET/logs

usage() { die "usage: restart.sh apiserver|etcd|scheduler|controller-manager [--down-seconds N | --stop | --start]"; }
case ${1:-} in
  apiserver) name=kube-apiserver ;;
  etcd) name=etcd ;;
  scheduler) name=kube-scheduler ;;
  controller-manager) name=kube-controller-manager ;;
  *) usage ;;
esac
shift
mode=restart down=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --stop) mode=stop ;;
    --start) mode=start ;;
    --down-seconds) [[ ${2:-} =~ ^[0-9]+$ ]] || usage; down=$2; shift ;;
    *) usage ;;
  esac
  shift
done
[[ -f $RUN/ports.env ]] || die "no control plane is running (no $RUN/ports.env)"
# shellcheck disable=SC1091
. "$RUN/ports.env"

# A pid that still runs one of our binaries (pids get reused).
ours() {
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  [[ $exe == "$CP_BIN"/* || $exe == "$(cp_cache_root)"/* ]]
}

running_pid() {
  local pid
  [[ -f $RUN/$name.pid ]] || return 1
  pid=$(cat "$RUN/$name.pid")
  ours "$pid" && printf '%s\n' "$pid"
}

# Healthy: etcd answers, and the apiserver is ready (after an etcd restart
# it needs a few seconds to see etcd again).
healthy() {
  curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"' &&
    "$CP_BIN/kubectl" --kubeconfig "$CP_TARGET/kubeconfig" --request-timeout 2s get --raw /readyz >/dev/null 2>&1
}

stop() {
  local pid
  pid=$(running_pid) || { log "$name is not running"; return 0; }
  # NUL-separated argv, exactly as cluster-up.sh started it.
  cp "/proc/$pid/cmdline" "$RUN/$name.cmdline"
  # The apiserver drains its watches for longer than a fault test wants to
  # wait: after 5 s it is killed (a crash is a fault too).
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(( $(date +%s) + 5 ))
  while ours "$pid" && (( $(date +%s) < deadline )); do sleep 0.1; done
  if ours "$pid"; then
    log "$name (pid $pid) still running 5s after SIGTERM: killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while ours "$pid"; do sleep 0.1; done
  fi
  log "$name stopped"
}

start() {
  if running_pid >/dev/null; then
    log "$name is running"
  else
    [[ -f $RUN/$name.cmdline ]] || die "$name: no kept command line ($RUN/$name.cmdline): was it stopped by this script?"
    local argv=()
    mapfile -d '' -t argv <"$RUN/$name.cmdline"
    # As cluster-up.sh's start(): its own session, the lock fd not inherited.
    setsid "${argv[@]}" </dev/null >>"$LOGS/$name.log" 2>&1 9>&- &
    echo $! >"$RUN/$name.pid"
  fi
  local deadline=$(( $(date +%s) + 120 ))
  until healthy; do
    running_pid >/dev/null || die "$name exited while starting (log: $LOGS/$name.log)"
    (( $(date +%s) < deadline )) || die "$name not healthy after 120s (log: $LOGS/$name.log)"
    sleep 0.2
  done
  log "$name up"
}

case $mode in
  stop) stop ;;
  start) start ;;
  restart) stop; sleep "$down"; start ;;
esac
