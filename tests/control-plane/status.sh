#!/usr/bin/env bash
# Exit 0 when the local control plane is up and healthy: every component's
# process is alive, the apiserver is ready and the kwok nodes are Ready.
# With -v, prints each component's pid and resident memory.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
RUN=$CP_TARGET/run
verbose=${1:-}
total=0
for c in etcd kube-apiserver kube-controller-manager kube-scheduler kwok agent double; do
  [[ -f $RUN/$c.pid ]] || { log "$c: not started"; exit 1; }
  pid=$(cat "$RUN/$c.pid")
  kill -0 "$pid" 2>/dev/null || { log "$c: pid $pid is gone (log: $CP_TARGET/logs/$c.log)"; exit 1; }
  if [[ $verbose == -v ]]; then
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    total=$(( total + rss ))
    printf '%-24s pid %-8s rss %6d MiB\n' "$c" "$pid" $(( rss / 1024 ))
  fi
done
[[ $verbose == -v ]] && printf '%-24s %-12s rss %6d MiB\n' total "" $(( total / 1024 ))
cp_double status || { log "double: the Cartridge double does not answer (log: $CP_TARGET/logs/double.log)"; exit 1; }
kc=("$CP_BIN/kubectl" --kubeconfig "$CP_TARGET/kubeconfig" --request-timeout 5s)
"${kc[@]}" get --raw /readyz >/dev/null || { log "kube-apiserver: not ready"; exit 1; }
if "${kc[@]}" get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
  grep -qv '^True$'; then
  log "kwok: some nodes are not Ready"; exit 1
fi
exit 0
