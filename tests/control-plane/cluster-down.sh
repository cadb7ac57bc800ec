#!/usr/bin/env bash
# Stops every component started by cluster-up.sh and removes its state (etcd
# data, certificates, kubeconfig, pod work dirs, volumes). Idempotent.
# --keep-logs keeps target/control-plane/logs for a look after a failure.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
RUN=$CP_TARGET/run
cp_lock

# Only signal a pid that still runs one of our binaries (pids get reused).
ours() {
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  [[ $exe == "$CP_BIN"/* || $exe == "$(cp_cache_root)"/* ]]
}

pids=()
# Stop in reverse order of start: clients first, etcd last.
for c in agent kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  f=$RUN/$c.pid
  [[ -f $f ]] || continue
  pid=$(cat "$f")
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  fi
done
# Components whose pid file was lost (e.g. target/control-plane/run removed by
# hand): any process running a binary from this checkout's bin dir.
for exe in /proc/[0-9]*/exe; do
  pid=${exe#/proc/}; pid=${pid%/exe}
  [[ $pid == "$$" ]] && continue
  target=$(readlink "$exe" 2>/dev/null) || continue
  if [[ ${target% (deleted)} == "$CP_BIN"/* ]] && [[ " ${pids[*]} " != *" $pid "* ]]; then
    log "stopping stray $(basename "${target% (deleted)}") (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  fi
done
# The Cartridge double (a tarantool process, not one of our binaries), also
# when its pid file was lost: it is known by its control socket in the cmdline.
cp_double stop || true
for cmd in /proc/[0-9]*/cmdline; do
  pid=${cmd#/proc/}; pid=${pid%/cmdline}
  if tr '\0' ' ' <"$cmd" 2>/dev/null | grep -qF "cartridge_double.lua $CP_RUN_ROOT/double.control"; then
    log "stopping stray Cartridge double (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
  fi
done
deadline=$(( $(date +%s) + 15 ))
for pid in "${pids[@]}"; do
  while ours "$pid" && (( $(date +%s) < deadline )); do sleep 0.1; done
  if ours "$pid"; then
    log "pid $pid did not stop on SIGTERM: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
done
for pid in "${pids[@]}"; do
  while ours "$pid"; do sleep 0.1; done
done
rm -rf "$RUN" "$CP_TARGET/etcd" "$CP_TARGET/certs" "$CP_TARGET/pods" "$CP_TARGET/volumes" "$CP_TARGET/kubeconfig" "$CP_RUN_ROOT"
[[ ${1:-} == --keep-logs ]] || rm -rf "$CP_TARGET/logs"
log "down"
