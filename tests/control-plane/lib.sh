# Shared helpers for the control-plane scripts (sourced, not executed).
# shellcheck shell=bash

CP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$CP_DIR/../.." && pwd)
# shellcheck source=versions.env
. "$CP_DIR/versions.env"

# Everything generated lives here (ignored by git through /target).
CP_TARGET=${CP_TARGET:-$REPO_ROOT/target/control-plane}
CP_BIN=$CP_TARGET/bin

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { printf '[control-plane] ERROR: %s\n' "$*" >&2; exit 1; }

# Cache key: everything that decides what the binaries are.
cp_cache_key() {
  {
    go version
    cat "$CP_DIR/versions.env" "$CP_DIR/go.mod" "$CP_DIR/go.sum" "$CP_DIR/build.sh"
    find "$CP_DIR" -name '*.go' -not -path '*/testdata/*' | LC_ALL=C sort | xargs cat
  } | sha256sum | cut -c1-16
}

cp_cache_root() {
  printf '%s\n' "${TARANTOOL_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tarantool-operator}/control-plane"
}

# Short dir for the pods' TARANTOOL_RUN_DIRs and the Cartridge double's control
# socket: a unix socket path has at most 107 bytes, which a path under
# target/control-plane/pods/<namespace>/<pod>/ easily passes. One per checkout.
CP_RUN_ROOT=${TMPDIR:-/tmp}/tod-$(printf '%s' "$CP_TARGET" | sha256sum | cut -c1-8)
# The Cartridge double (tests/tarantool/double.sh) as the control plane runs it.
cp_double() {
  DOUBLE_PID_FILE=$CP_TARGET/run/double.pid DOUBLE_LOG_FILE=$CP_TARGET/logs/double.log \
    DOUBLE_CONTROL=$CP_RUN_ROOT/double.control DOUBLE_MARKERS_DIR=$CP_TARGET/run/double \
    bash "$REPO_ROOT/tests/tarantool/double.sh" "$@"
}

# The binaries every script expects in $CP_BIN.
CP_BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm cphelper)

# Serialises cluster-up/cluster-down across processes (parallel test binaries).
cp_lock() {
  [[ -n ${CP_LOCKED:-} ]] && return 0
  mkdir -p "$CP_TARGET"
  exec 9>"$CP_TARGET/.lock"
  flock 9
  export CP_LOCKED=1
}

# cp_wait_crds_established TIMEOUT_S KUBECTL... -- CRD...: waits until every
# CRD has its Established condition True, for at most TIMEOUT_S; returns 1 on
# timeout. Not `kubectl wait --for=condition=Established`: that fails at once
# (".status.conditions accessor error: <nil>") on a CRD the apiserver has not
# yet given any condition, which happens right after it is created.
cp_wait_crds_established() {
  local timeout=$1; shift
  local kubectl=()
  while [[ $# -gt 0 && $1 != -- ]]; do kubectl+=("$1"); shift; done
  shift
  local deadline=$(( $(date +%s) + timeout )) crd status
  for crd in "$@"; do
    while :; do
      status=$("${kubectl[@]}" get crd "$crd" \
        -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null) || status=''
      [[ $status == True ]] && break
      if (( $(date +%s) >= deadline )); then
        printf 'CRD %s not established after %ss\n' "$crd" "$timeout" >&2
        return 1
      fi
      sleep 0.5
    done
  done
}
