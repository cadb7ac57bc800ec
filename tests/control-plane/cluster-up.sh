#!/usr/bin/env bash
# Starts the local control plane on loopback: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok (fake nodes that run pods and
# answer pods/exec with local commands) and cphelper's agent (per-pod exec
# config and work dirs, hostPath volume provisioner) and the Cartridge double
# (tests/tarantool: one Tarantool serving the console of every pod the operator
# creates). Idempotent: a healthy
# running control plane is reused; a broken one is stopped and started anew.
#
# Environment:
#   KWOK_NODES              number of fake nodes (default 3)
#   KWOK_POD_READY_DELAY    time from scheduling to Running+Ready, models the
#                           start/restart time of a pod: 1500ms, 2s, or a number of ms (default 500ms)
#   KWOK_POD_DELETE_DELAY   time from deletion to removal, models graceful shutdown (default 0)
#   KWOK_EXEC_PATH          directories put in front of PATH for exec'd commands
#   KCM_API_QPS, KCM_API_BURST  kube-controller-manager's client rate limit
#                           (default kube's own, 20 and 30). Its StatefulSet
#                           controller waits on it when many pods restart at
#                           once; `make bench-update` reports how long.
# Like the others, they apply when the control plane starts: run
# cluster-down.sh first to change them.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

RUN=$CP_TARGET/run
LOGS=$CP_TARGET/logs
KUBECONFIG_FILE=$CP_TARGET/kubeconfig
KUBECTL=("$CP_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE")

to_ms() { # 1500ms | 2s | 1500 -> milliseconds
  local v=$1
  case $v in
    *ms) echo "${v%ms}" ;;
    *s) echo "$(( ${v%s} * 1000 ))" ;;
    *) echo "$v" ;;
  esac
}
NODES=${KWOK_NODES:-3}
READY_MS=$(to_ms "${KWOK_POD_READY_DELAY:-500ms}")
DELETE_MS=$(to_ms "${KWOK_POD_DELETE_DELAY:-0}")
[[ $READY_MS =~ ^[0-9]+$ && $DELETE_MS =~ ^[0-9]+$ && $NODES =~ ^[0-9]+$ ]] ||
  die "KWOK_POD_READY_DELAY/KWOK_POD_DELETE_DELAY must be like 500ms, 2s or 1500; KWOK_NODES a number"
KCM_QPS=${KCM_API_QPS:-20}
KCM_BURST=${KCM_API_BURST:-30}
[[ $KCM_QPS =~ ^[0-9]+$ && $KCM_BURST =~ ^[0-9]+$ ]] ||
  die "KCM_API_QPS and KCM_API_BURST must be whole numbers"

cp_lock
if bash "$CP_DIR/status.sh" >/dev/null 2>&1; then
  log "already up and healthy; KUBECONFIG=$KUBECONFIG_FILE"
  exit 0
fi
if compgen -G "$RUN/*.pid" >/dev/null; then
  log "a previous control plane is not healthy: stopping it first"
  bash "$CP_DIR/cluster-down.sh"
fi

bash "$CP_DIR/build.sh"

start_ts=$(date +%s%N)
rm -rf "$RUN" "$LOGS" "$CP_TARGET/etcd" "$CP_TARGET/certs" "$CP_TARGET/pods" "$CP_TARGET/volumes" "$KUBECONFIG_FILE" "$CP_RUN_ROOT"
mkdir -p "$RUN" "$LOGS" "$CP_TARGET/pods" "$CP_TARGET/volumes" "$CP_RUN_ROOT"
mkdir -m 700 "$CP_TARGET/etcd"
CERTS=$CP_TARGET/certs

# On any failure: name the component, show its log, stop what was started.
failed() {
  local c=$1 msg=$2
  printf '[control-plane] ERROR: %s: %s\n' "$c" "$msg" >&2
  if [[ -f $LOGS/$c.log ]]; then
    printf '[control-plane] last lines of %s:\n' "$LOGS/$c.log" >&2
    tail -n 30 "$LOGS/$c.log" | sed 's/^/    /' >&2
  fi
  bash "$CP_DIR/cluster-down.sh" --keep-logs >&2 || true
  # Free ports are picked before the components bind them: if another process
  # took one in between, start once more with new ports.
  if [[ -z ${CP_RETRIED:-} ]] && grep -qs 'address already in use' "$LOGS/$c.log"; then
    log "a port was taken meanwhile: starting again with new ports"
    CP_RETRIED=1 exec bash "$0"
  fi
  exit 1
}

# start NAME ARGS...: runs in its own session (survives the caller), logs to logs/NAME.log.
start() {
  local name=$1; shift
  # 9>&-: the daemons must not inherit the lock held on fd 9.
  setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 9>&- &
  echo $! >"$RUN/$name.pid"
  # Its command line, NUL-separated, for restart.sh (a component that exits
  # on its own, as kube-scheduler does when an etcd restart corrupts its
  # cache, is started again from it, as a kubelet would).
  printf '%s\0' "$@" >"$RUN/$name.cmdline"
}

alive() { kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

# wait_for NAME TIMEOUT_S CMD...: until CMD succeeds; fails if NAME died.
wait_for() {
  local name=$1 timeout=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || failed "$name" "exited while starting"
    (( $(date +%s) < deadline )) || failed "$name" "not ready after ${timeout}s (waited for: $*)"
    sleep 0.2
  done
}

mapfile -t P < <("$CP_BIN/cphelper" ports 6)
ETCD_PORT=${P[0]} ETCD_PEER_PORT=${P[1]} API_PORT=${P[2]} KCM_PORT=${P[3]} SCHED_PORT=${P[4]} KWOK_PORT=${P[5]}
cat >"$RUN/ports.env" <<ENV
ETCD_PORT=$ETCD_PORT
API_PORT=$API_PORT
KCM_PORT=$KCM_PORT
SCHED_PORT=$SCHED_PORT
KWOK_PORT=$KWOK_PORT
DOUBLE_CONTROL=$CP_RUN_ROOT/double.control
ENV

"$CP_BIN/cphelper" certs "$CERTS" || failed certs "cphelper certs failed"

b64() { base64 -w0 <"$1"; }
cat >"$KUBECONFIG_FILE" <<KC
apiVersion: v1
kind: Config
clusters:
- name: tarantool-dev
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(b64 "$CERTS/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(b64 "$CERTS/admin.crt")
    client-key-data: $(b64 "$CERTS/admin.key")
contexts:
- name: tarantool-dev
  context: {cluster: tarantool-dev, user: admin}
current-context: tarantool-dev
KC
chmod 600 "$KUBECONFIG_FILE"

# ---------------------------------------------------------------- etcd
start etcd "$CP_BIN/etcd" \
  --name default --data-dir "$CP_TARGET/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --log-level warn
etcd_healthy() { curl -fsS "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
wait_for etcd 30 etcd_healthy

# ---------------------------------------------------------------- kube-apiserver
# The audit log (tests/control-plane/audit-policy.yaml: writes and execs, at
# Metadata level) goes to a directory of its own, so that the failure reports
# printing every component log's tail leave it out; 20 MB, two old files kept.
mkdir -p "$LOGS/audit"
start kube-apiserver "$CP_BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
  --tls-cert-file "$CERTS/apiserver.crt" --tls-private-key-file "$CERTS/apiserver.key" \
  --client-ca-file "$CERTS/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$CERTS/sa.pub" --service-account-signing-key-file "$CERTS/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 \
  --authorization-mode RBAC \
  --allow-privileged=true \
  --endpoint-reconciler-type none \
  --kubelet-client-certificate "$CERTS/admin.crt" --kubelet-client-key "$CERTS/admin.key" \
  --kubelet-preferred-address-types InternalIP \
  --audit-policy-file "$CP_DIR/audit-policy.yaml" \
  --audit-log-path "$LOGS/audit/audit.log" --audit-log-format json \
  --audit-log-maxsize 20 --audit-log-maxbackup 2 \
  --profiling=false
wait_for kube-apiserver 180 "${KUBECTL[@]}" get --raw /readyz

# ---------------------------------------------------------------- controllers
CONTROLLERS=(
  serviceaccount-token-controller serviceaccount-controller root-ca-certificate-publisher-controller
  namespace-controller garbage-collector-controller
  statefulset-controller deployment-controller replicaset-controller daemonset-controller
  job-controller ttl-after-finished-controller disruption-controller
  endpoints-controller endpointslice-controller
  persistentvolume-binder-controller persistentvolume-protection-controller
  persistentvolumeclaim-protection-controller clusterrole-aggregation-controller
)
start kube-controller-manager "$CP_BIN/kube-controller-manager" \
  --kubeconfig "$KUBECONFIG_FILE" \
  --authentication-kubeconfig "$KUBECONFIG_FILE" --authorization-kubeconfig "$KUBECONFIG_FILE" \
  --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
  --leader-elect=false \
  --controllers "$(IFS=,; echo "${CONTROLLERS[*]}")" \
  --service-account-private-key-file "$CERTS/sa.key" --root-ca-file "$CERTS/ca.crt" \
  --use-service-account-credentials=false \
  --kube-api-qps "$KCM_QPS" --kube-api-burst "$KCM_BURST" \
  --profiling=false
start kube-scheduler "$CP_BIN/kube-scheduler" \
  --kubeconfig "$KUBECONFIG_FILE" \
  --authentication-kubeconfig "$KUBECONFIG_FILE" --authorization-kubeconfig "$KUBECONFIG_FILE" \
  --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" \
  --leader-elect=false --profiling=false
wait_for kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
wait_for kube-scheduler 60 curl -fsSk "https://127.0.0.1:$SCHED_PORT/healthz"

# ---------------------------------------------------------------- kwok
"${KUBECTL[@]}" apply --server-side -f "$CP_BIN/kwok-execs-crd.yaml" >"$LOGS/setup.log" 2>&1 ||
  failed setup "applying the kwok Exec CRD failed"
cp_wait_crds_established 30 "${KUBECTL[@]}" -- execs.kwok.x-k8s.io >>"$LOGS/setup.log" 2>&1 ||
  failed setup "the kwok Exec CRD is not established"
sed -e "s/@POD_READY_DELAY_MS@/$READY_MS/" -e "s/@POD_DELETE_DELAY_MS@/$DELETE_MS/" \
  "$CP_DIR/kwok/stages.yaml" >"$RUN/kwok.yaml"
start kwok env PATH="${KWOK_EXEC_PATH:+$KWOK_EXEC_PATH:}$PATH" "$CP_BIN/kwok" \
  --kubeconfig "$KUBECONFIG_FILE" --config "$RUN/kwok.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --node-ip 127.0.0.1 --node-port "$KWOK_PORT" --server-address "127.0.0.1:$KWOK_PORT" --cidr 10.244.0.0/16 \
  --tls-cert-file "$CERTS/kwok.crt" --tls-private-key-file "$CERTS/kwok.key" \
  --enable-crds Exec --v "${KWOK_LOG_LEVEL:-WARN}"
wait_for kwok 60 curl -fsSk "https://127.0.0.1:$KWOK_PORT/healthz"

# ---------------------------------------------------------------- Cartridge double
# Before the agent: the agent only writes marker files (run/double/), which the
# double polls, so either may (re)start first.
command -v tarantool >/dev/null || die "tarantool is not installed: make setup-tarantool"
cp_double start 2>>"$LOGS/setup.log" || failed double "the Cartridge double did not start"

# ---------------------------------------------------------------- agent (exec work dirs, volumes)
start agent env PATH="${KWOK_EXEC_PATH:+$KWOK_EXEC_PATH:}$PATH" "$CP_BIN/cphelper" agent --kubeconfig "$KUBECONFIG_FILE" \
  --pods-dir "$CP_TARGET/pods" --volumes-dir "$CP_TARGET/volumes" \
  --run-root "$CP_RUN_ROOT" --double-markers "$RUN/double"
wait_for agent 30 grep -q 'agent ready' "$LOGS/agent.log"

# ---------------------------------------------------------------- nodes and storage
{
  for ((i = 0; i < NODES; i++)); do
    cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: kwok-node-$i
    topology.kubernetes.io/zone: zone-$i
YAML
  done
  cat <<YAML
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: local.tarantool-operator.dev/hostpath
reclaimPolicy: Delete
volumeBindingMode: Immediate
YAML
} >"$RUN/objects.yaml"
"${KUBECTL[@]}" apply --server-side -f "$RUN/objects.yaml" >>"$LOGS/setup.log" 2>&1 ||
  failed setup "creating nodes and the StorageClass failed"
wait_for kwok 60 "${KUBECTL[@]}" wait --for condition=Ready --timeout 5s node --all
# The NodeRestriction/TaintNodesByCondition admission puts node.kubernetes.io/not-ready
# on new nodes; the node-lifecycle controller, which we do not run (it would evict
# pods whenever a starved kwok misses heartbeats), would lift it once Ready.
"${KUBECTL[@]}" taint nodes -l type=kwok node.kubernetes.io/not-ready:NoSchedule- >>"$LOGS/setup.log" 2>&1 || true
# Namespaces made by tests need the default ServiceAccount; wait until the controller works.
wait_for kube-controller-manager 60 "${KUBECTL[@]}" get serviceaccount default -n default

echo "$(( ($(date +%s%N) - start_ts) / 1000000 ))" >"$RUN/startup-ms"
log "up in $(( $(cat "$RUN/startup-ms") ))ms: export KUBECONFIG=$KUBECONFIG_FILE"
