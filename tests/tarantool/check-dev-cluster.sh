#!/usr/bin/env bash
# Against a running dev cluster (make cluster-up): a pod labelled as the
# operator labels its pods reaches the Cartridge double through `kubectl exec`
# with the operator's console command, and stops reaching it once deleted.
# Run by make test-control-plane. Waits poll with a bound (CHECK_TIMEOUT_SECS,
# default 60) that only guards against hangs.
set -euo pipefail
# shellcheck source=../control-plane/lib.sh
. "$(dirname "$0")/../control-plane/lib.sh"
export KUBECONFIG=$CP_TARGET/kubeconfig PATH=$CP_BIN:$PATH
NS=t-double-$$ POD=storage-0-7dfd9f68f-0 TIMEOUT=${CHECK_TIMEOUT_SECS:-60}
trap 'kubectl delete ns "$NS" --wait=false >/dev/null 2>&1 || true' EXIT
fail() { echo "FAIL  dev cluster: $*" >&2; exit 1; }
poll() { # WHAT CMD...: until CMD succeeds
  local what=$1 deadline=$(( $(date +%s) + TIMEOUT )); shift
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || fail "gave up after ${TIMEOUT}s waiting for: $what"
    sleep 0.2
  done
}
kubectl create ns "$NS" >/dev/null
kubectl apply -n "$NS" -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $POD
  labels: {app.kubernetes.io/managed-by: tarantool-operator, tarantool.io/cluster: c, tarantool.io/role: storage}
spec:
  containers:
  - name: tarantool
    image: tarantool/cartridge
    env: [{name: TARANTOOL_RUN_DIR, value: /var/run/tarantool}]  # the image's, overridden by the agent
YAML
# The operator's command, run through sh -c in the pod.
console() {
  kubectl exec -i -n "$NS" "$POD" -c tarantool -- sh -c \
    'tarantoolctl connect ${TARANTOOL_RUN_DIR:-/var/run/tarantool}/$POD_NAME.control'
}
reaches() { echo "return require('cartridge').admin_get_servers ~= nil" | console 2>/dev/null | grep -qx -- '- true'; }
poll "pod $NS/$POD Running" kubectl wait -n "$NS" --for condition=Ready "pod/$POD" --timeout 5s
# The agent writes the marker when the pod is Running; the double polls for it.
poll "the double to answer through exec" reaches
echo "ok    dev cluster: exec into an operator pod reaches the Cartridge double"
run_dir=$(kubectl exec -n "$NS" "$POD" -c tarantool -- sh -c 'echo $TARANTOOL_RUN_DIR')
[[ $run_dir == "$CP_RUN_ROOT"/* ]] || fail "TARANTOOL_RUN_DIR is $run_dir, want a dir under $CP_RUN_ROOT"
kubectl delete -n "$NS" pod "$POD" --wait >/dev/null
poll "the socket of the deleted pod to go" test ! -e "$run_dir/$POD.control"
echo "ok    dev cluster: a deleted pod's instance is gone"
