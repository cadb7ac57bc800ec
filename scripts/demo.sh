#!/usr/bin/env bash
# `make demo`: the one-command tour. On the local dev cluster
# (docs/dev-cluster.md) it installs the Helm chart into namespace `demo`, runs
# the real operator binary as a local process with the chart's ServiceAccount
# token (so it has exactly the chart's RBAC), bootstraps the article's Cartridge
# cluster, rolls a new image through both Roles (routers with
# ClusterPartitionUpdate, storages with SwitchMasterUpdate) while recording the
# run, and draws the timeline.
#
#   scripts/demo.sh          the demo; stops everything at the end
#   KEEP=1 scripts/demo.sh   leaves the cluster and the operator running
#   scripts/demo.sh down     stops what a KEEP=1 run left running
#
# Environment: KEEP (0), DEMO_NAMESPACE (demo), DEMO_TIMEOUT_SECS (300: bound
# of each wait, a guard against hangs, not a speed check), DEMO_IMAGE_TAG (the
# tag rolled out; default: the next patch release of the manifests' tag),
# KWOK_POD_READY_DELAY (1500ms here: the time a Tarantool pod takes to start,
# applied only when this script starts the control plane), CARGO,
# CARGO_TARGET_DIR, MAKE.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# CP_TARGET, CP_BIN: the dev cluster's state and binaries (one source of truth).
# shellcheck source=tests/control-plane/lib.sh
. tests/control-plane/lib.sh

NS=${DEMO_NAMESPACE:-demo}
KEEP=${KEEP:-0}
TIMEOUT=${DEMO_TIMEOUT_SECS:-300}
MAKE=${MAKE:-make}
CARGO=${CARGO:-cargo}
OUT=$REPO/target/demo
ADMIN_KUBECONFIG=$CP_TARGET/kubeconfig
OP_KUBECONFIG=$OUT/operator.kubeconfig
BIN=$OUT/bin/tarantool-operator
RELEASE=tarantool-operator
# The ServiceAccount's name is the release's full name (the release name
# contains the chart name, see the chart's _helpers.tpl).
SERVICE_ACCOUNT=$RELEASE
OLD_IMAGE=tarantool/tarantool-operator-examples-kv:0.0.4
NEW_IMAGE=tarantool/tarantool-operator-examples-kv:${DEMO_IMAGE_TAG:-0.0.5}
# Marker: the control plane was started by a demo run, so a demo may stop it.
# A control plane the user started themselves is left running.
CP_OURS=$OUT/control-plane-started-by-demo

export KUBECONFIG=$ADMIN_KUBECONFIG
export PATH=$CP_BIN:$PATH

if [[ -t 1 ]]; then B=$'\e[1m' R=$'\e[31m' G=$'\e[32m' Z=$'\e[0m'; else B='' R='' G='' Z=''; fi
say() { printf '%s\n' "$*"; }
die() { printf '%sdemo: ERROR: %s%s\n' "$R" "$*" "$Z" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%01ds' $(( $1 / 1000 )) $(( $1 % 1000 / 100 )); }

T0=$(now_ms)
STEP_NAME='' STEP_T0=0 STEP_NO=0
SUMMARY=()
end_step() {
  [[ -n $STEP_NAME ]] || return 0
  local took=$(( $(now_ms) - STEP_T0 ))
  say "    ${G}done${Z} in $(secs "$took")"
  SUMMARY+=("$(printf '%-30s %8s' "$STEP_NAME" "$(secs "$took")")")
  STEP_NAME=''
}
step() { # TITLE [WHAT IT DOES]
  end_step
  STEP_NO=$(( STEP_NO + 1 )) STEP_NAME=$1 STEP_T0=$(now_ms)
  say ""
  say "${B}==> [$STEP_NO] $1${Z}${2:+: $2}  (t+$(secs $(( STEP_T0 - T0 ))))"
}

# ---------------------------------------------------------------- processes
# A pid file names a process of ours only while its command line still names
# the demo's binary: a stale file must never make us signal a reused pid.
alive() { # PIDFILE -> prints the pid if that process is still ours
  local f=$1 pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$OUT/bin/tarantool-operator" || return 1
  echo "$pid"
}
stop_pidfile() { # PIDFILE SIGNAL WHAT
  local f=$1 sig=$2 what=$3 pid
  if pid=$(alive "$f"); then
    kill "-$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "    $what (pid $pid) did not stop in 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "    stopped $what (pid $pid)"
  fi
  rm -f "$f"
}
stop_processes() {
  # The recorder stops on SIGINT (as at Ctrl-C) and flushes what it saw.
  stop_pidfile "$OUT/recorder.pid" INT "the timeline recorder"
  stop_pidfile "$OUT/operator.pid" TERM "the operator"
}
cluster_down_if_ours() {
  if [[ -f $CP_OURS ]]; then
    "$MAKE" -s --no-print-directory cluster-down
    rm -f "$CP_OURS"
  elif bash tests/control-plane/status.sh >/dev/null 2>&1; then
    say "    the dev cluster was running before the demo: left running (make cluster-down stops it)"
  fi
}

# The demo's operator is stopped before its namespace goes: the Roles'
# finalizer (drain and expel before deletion) would hold the namespace.
release_roles() {
  kubectl get roles.tarantool.io -n "$NS" -o name 2>/dev/null | while read -r role; do
    kubectl patch "$role" -n "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null || true
  done
}

if [[ ${1:-} == down ]]; then
  # What `make demo-down` does after a KEEP=1 run.
  stop_processes
  if [[ -f $CP_OURS ]]; then
    cluster_down_if_ours
  elif bash tests/control-plane/status.sh >/dev/null 2>&1; then
    release_roles
    kubectl delete namespace "$NS" --ignore-not-found --wait=false >/dev/null
    say "deleted namespace $NS; the dev cluster was not started by the demo: left running (make cluster-down stops it)"
  fi
  exit 0
elif [[ $# -gt 0 ]]; then
  die "usage: $0 [down]"
fi

# ---------------------------------------------------------------- diagnostics and cleanup
diagnostics() {
  say ""
  say "${B}---- diagnostics (also in $OUT/diagnostics.txt) ----${Z}"
  {
    echo "## kubectl get tntc,tntr,statefulsets,pods -n $NS -o wide"
    kubectl get tntc,tntr,statefulsets,pods -n "$NS" -o wide --request-timeout 10s 2>&1 || true
    echo
    echo "## Role status (phase, conditions, update)"
    kubectl get tntr -n "$NS" --request-timeout 10s -o go-template='{{range .items}}{{.metadata.name}}: generation {{.metadata.generation}}, observed {{.status.observedGeneration}}, phase {{.status.phase}}, updated {{.status.updatedReplicasets}}/{{.spec.replicasets}}
  update: {{with .status.update}}strategy {{.strategy}}, revision {{.revision}}, {{.updatedPods}}/{{.totalPods}} pods, done {{.done}}, message: {{.message}}{{else}}none{{end}}
{{range .status.conditions}}  {{.type}}={{.status}} {{.reason}}: {{.message}}
{{end}}{{end}}' 2>&1 || true
    echo
    echo "## Cluster status"
    kubectl get tntc -n "$NS" --request-timeout 10s -o go-template='{{range .items}}{{.metadata.name}}: phase {{.status.phase}}, bootstrapped {{.status.bootstrapped}}, leader {{.status.leader}}
{{range .status.conditions}}  {{.type}}={{.status}} {{.reason}}: {{.message}}
{{end}}{{end}}' 2>&1 || true
    echo
    echo "## kubectl get events -n $NS --sort-by=.lastTimestamp (last 40)"
    kubectl get events -n "$NS" --sort-by=.lastTimestamp --request-timeout 10s 2>&1 | tail -n 40 || true
    echo
    echo "## operator log ($OUT/operator.log, last 40 lines)"
    tail -n 40 "$OUT/operator.log" 2>/dev/null || echo "(none)"
    if [[ -s $OUT/recorder.log ]]; then
      echo
      echo "## recorder log ($OUT/recorder.log, last 10 lines)"
      tail -n 10 "$OUT/recorder.log"
    fi
  } | tee "$OUT/diagnostics.txt"
}
PROGRESS_PID=''
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [[ -n $PROGRESS_PID ]] && kill -INT "$PROGRESS_PID" 2>/dev/null && wait "$PROGRESS_PID" 2>/dev/null
  if [[ $rc != 0 ]]; then
    printf '\n%sdemo: FAILED in step [%s] %s (exit %s, after %s)%s\n' "$R" "$STEP_NO" "$STEP_NAME" "$rc" \
      "$(secs $(( $(now_ms) - T0 )))" "$Z" >&2
    # Diagnostics for a failure, not for a Ctrl-C (130) or kill (143).
    if [[ $rc != 130 && $rc != 143 ]] && bash tests/control-plane/status.sh >/dev/null 2>&1 &&
      kubectl get namespace "$NS" >/dev/null 2>&1; then
      diagnostics >&2
    fi
    if [[ $KEEP == 1 ]]; then
      say "KEEP=1: everything left running for a look (make demo-down stops it)" >&2
      exit "$rc"
    fi
  fi
  if [[ $KEEP != 1 || $rc != 0 ]]; then
    say ""
    say "${B}==> cleaning up${Z}"
    stop_processes
    cluster_down_if_ours
  fi
  exit "$rc"
}
trap on_exit EXIT
# Ctrl-C and kill: run the same cleanup (the EXIT trap) with the usual codes.
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for WHAT CMD...: polls CMD every second until it succeeds; fails after
# $TIMEOUT s, or at once when the operator has died (its log tells why).
wait_for() {
  local what=$1 deadline=$(( $(date +%s) + TIMEOUT )); shift
  until "$@"; do
    if [[ -f $OUT/operator.pid ]] && ! alive "$OUT/operator.pid" >/dev/null; then
      die "the operator exited while waiting for: $what (log: $OUT/operator.log)"
    fi
    (( $(date +%s) < deadline )) || die "gave up after ${TIMEOUT}s waiting for: $what"
    sleep 1
  done
}

mkdir -p "$OUT/bin"

# ---------------------------------------------------------------- 1. prerequisites
step "prerequisites" "make setup (wasm target, Go check, Debian packages, tarantool)"
"$MAKE" -s --no-print-directory setup

step "control-plane binaries" "make control-plane (from the cache; the first build takes ~22 min)"
"$MAKE" -s --no-print-directory control-plane

step "build the operator" "cargo build -p tarantool-operator"
"$CARGO" build -p tarantool-operator
BUILT=${CARGO_TARGET_DIR:-$REPO/target}/debug/tarantool-operator
[[ -x $BUILT ]] || die "cargo build did not produce $BUILT"
# Run a snapshot: a rebuild during the demo (another checkout sharing the
# target dir) must not swap the binary under the running operator. A hard
# link costs nothing; cargo replaces the built file rather than rewriting it.
stop_processes # a previous KEEP=1 run's operator and recorder use the old snapshot
# A previous run's outputs would mix with this run's (the recorder appends).
rm -f "$OUT"/{run.jsonl,timeline.svg,timeline.html,operator.log,recorder.log,diagnostics.txt}
ln -f "$BUILT" "$BIN" 2>/dev/null || cp -f "$BUILT" "$BIN"
say "    $BIN ($("$BIN" --version))"

# ---------------------------------------------------------------- 2. cluster
step "dev cluster" "make cluster-up (etcd, kube-apiserver, controllers, kwok, the Cartridge double)"
if bash tests/control-plane/status.sh >/dev/null 2>&1; then
  say "    already up: reused"
else
  KWOK_POD_READY_DELAY=${KWOK_POD_READY_DELAY:-1500ms} "$MAKE" -s --no-print-directory cluster-up
  touch "$CP_OURS"
fi
say "    nodes: $(kubectl get nodes -o name | tr '\n' ' ')"

step "namespace $NS" "a previous run's is deleted first"
if kubectl get namespace "$NS" >/dev/null 2>&1; then
  release_roles
  kubectl delete namespace "$NS" --wait=true --timeout="${TIMEOUT}s"
fi
kubectl create namespace "$NS"

# ---------------------------------------------------------------- 3. operator
step "helm install" "charts/tarantool-operator into $NS, watchNamespace=$NS"
say "    Containers cannot run here: kwok fakes the chart's Deployment pod (image"
say "    example.invalid/..., never pulled). The real operator runs as a local"
say "    process below, with the chart's ServiceAccount token and RBAC."
helm install "$RELEASE" charts/tarantool-operator --namespace "$NS" \
  --set watchNamespace="$NS" \
  --set image.repository=example.invalid/tarantool-operator \
  --wait --timeout 3m
# Helm creates the CRDs before the templates; the manifests below need them served.
# Polled, not `kubectl wait`: see cp_wait_crds_established in tests/control-plane/lib.sh.
cp_wait_crds_established 60 kubectl -- clusters.tarantool.io roles.tarantool.io ||
  die "the operator's CRDs are not established"
kubectl get deployment,serviceaccount,role,rolebinding -n "$NS" -l app.kubernetes.io/instance="$RELEASE"

step "operator credentials" "a token of ServiceAccount $NS/$SERVICE_ACCOUNT (TokenRequest) in a kubeconfig"
TOKEN=$(kubectl create token "$SERVICE_ACCOUNT" -n "$NS" --duration "${DEMO_TOKEN_DURATION:-2h}")
SERVER=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
rm -f "$OP_KUBECONFIG"
kubectl config --kubeconfig "$OP_KUBECONFIG" set-cluster dev --server "$SERVER" \
  --certificate-authority "$CP_TARGET/certs/ca.crt" --embed-certs >/dev/null
kubectl config --kubeconfig "$OP_KUBECONFIG" set-credentials "$SERVICE_ACCOUNT" --token "$TOKEN" >/dev/null
kubectl config --kubeconfig "$OP_KUBECONFIG" set-context operator --cluster dev \
  --user "$SERVICE_ACCOUNT" --namespace "$NS" >/dev/null
kubectl config --kubeconfig "$OP_KUBECONFIG" use-context operator >/dev/null
chmod 600 "$OP_KUBECONFIG"
# The chart's RBAC is all it has: it may watch Roles in $NS and nothing outside.
say "    as the operator: get tntr -n $NS: $(kubectl --kubeconfig "$OP_KUBECONFIG" auth can-i list roles.tarantool.io -n "$NS" || true), \
get tntr -n default: $(kubectl --kubeconfig "$OP_KUBECONFIG" auth can-i list roles.tarantool.io -n default || true), \
get secrets -n $NS: $(kubectl --kubeconfig "$OP_KUBECONFIG" auth can-i get secrets -n "$NS" || true)"
say "    $OP_KUBECONFIG"

step "start the operator" "target/demo/bin/tarantool-operator run, log target/demo/operator.log"
mapfile -t PORTS < <("$CP_BIN/cphelper" ports 2)
# setsid: its own session, so it survives this script with KEEP=1 and a
# closed terminal; the pid file is how `make demo-down` finds it.
KUBECONFIG=$OP_KUBECONFIG setsid "$BIN" run --namespace "$NS" \
  --leader-elect --lease-namespace "$NS" --identity "demo-$(hostname)" \
  --poll-seconds 1 --log-level info \
  --metrics-addr "127.0.0.1:${PORTS[0]}" --health-addr "127.0.0.1:${PORTS[1]}" \
  --cache-dir "$OUT/strategy-cache" \
  </dev/null >"$OUT/operator.log" 2>&1 &
echo $! >"$OUT/operator.pid"
ready() { curl -fsS "http://127.0.0.1:${PORTS[1]}/readyz" >/dev/null 2>&1; }
wait_for "the operator's /readyz (it holds the Lease)" ready
say "    pid $(cat "$OUT/operator.pid"); metrics http://127.0.0.1:${PORTS[0]}/metrics, health http://127.0.0.1:${PORTS[1]}/readyz"

# ---------------------------------------------------------------- 4. the cluster
step "bootstrap" "apply examples/article (Roles router, storage; Cluster) and wait until the Cluster is Ready"
kubectl apply -n "$NS" -f examples/article/router.yaml -f examples/article/storage.yaml \
  -f examples/article/cluster.yaml
LAST=''
bootstrapped() {
  local now
  # What happens, printed each time it changes.
  now=$(kubectl get tntc,tntr -n "$NS" 2>&1 || true)
  if [[ $now != "$LAST" ]]; then
    say "    -- t+$(secs $(( $(now_ms) - STEP_T0 )))"
    printf '%s\n' "$now" | sed 's/^/    /'
    LAST=$now
  fi
  [[ $(kubectl get tntc tarantool-cluster -n "$NS" -o jsonpath='{.status.phase}/{.status.bootstrapped}' 2>/dev/null) == Ready/true ]]
}
wait_for "Cluster tarantool-cluster Ready and bootstrapped" bootstrapped
kubectl get pods -n "$NS" -l app.kubernetes.io/managed-by=tarantool-operator \
  -L tarantool.io/replicaset -o wide | cut -c1-150
say "    Cartridge leader: $(kubectl get tntc tarantool-cluster -n "$NS" -o jsonpath='{.status.leader}')"

# ---------------------------------------------------------------- 5. the update
step "rolling update" "image $OLD_IMAGE -> $NEW_IMAGE in both Roles"
rm -f "$OUT/run.jsonl"
KUBECONFIG=$ADMIN_KUBECONFIG setsid "$BIN" timeline record --namespace "$NS" --out "$OUT/run.jsonl" \
  </dev/null >"$OUT/recorder.log" 2>&1 &
echo $! >"$OUT/recorder.pid"
# The recorder notes the pods present at its start; give it that first list
# before anything changes.
recording() { [[ -s $OUT/run.jsonl ]]; }
wait_for "the recorder's first records" recording
say "    recording to target/demo/run.jsonl (pid $(cat "$OUT/recorder.pid"))"
# The rollout each Role had before the change (the first deployment may be
# recorded as a done rollout): the wait below needs one about the new template.
declare -A BEFORE
for r in router storage; do
  BEFORE[$r]=$(kubectl get tntr "$r" -n "$NS" -o jsonpath='{.status.update.revision}')
done
# The article's router keeps its template under spec.vshard (an alias); the
# storage in the canonical spec.replicasetTemplate.
kubectl patch tntr router -n "$NS" --type json -p \
  "[{\"op\":\"replace\",\"path\":\"/spec/vshard/replicasetTemplate/podTemplate/spec/containers/0/image\",\"value\":\"$NEW_IMAGE\"}]"
kubectl patch tntr storage -n "$NS" --type json -p \
  "[{\"op\":\"replace\",\"path\":\"/spec/replicasetTemplate/podTemplate/spec/containers/0/image\",\"value\":\"$NEW_IMAGE\"}]"
say "    router: ClusterPartitionUpdate (batchSize 1), storage: SwitchMasterUpdate (maxUnavailable 1)"
say "    tarantool-operator progress --namespace $NS --watch:"
say ""
"$BIN" progress --namespace "$NS" --watch &
PROGRESS_PID=$!
# Done: the operator has seen the new generation, a rollout other than the one
# before the change says done (every pod updated), every replica set is on the
# new template, and the Role is Ready again (the last pod deleted is back), so
# the picture ends on a whole cluster.
role_done() {
  [[ $(kubectl get tntr "$1" -n "$NS" -o \
    jsonpath='{.metadata.generation}={.status.observedGeneration} {.status.update.revision} {.status.update.done} {.status.updatedReplicasets}={.spec.replicasets} {.status.phase}' \
    2>/dev/null) =~ ^([0-9]+)=([0-9]+)\ ([^ ]+)\ true\ ([0-9]+)=([0-9]+)\ Ready$ ]] &&
    [[ ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" && ${BASH_REMATCH[3]} != "${BEFORE[$1]}" &&
      ${BASH_REMATCH[4]} == "${BASH_REMATCH[5]}" ]]
}
both_done() { role_done router && role_done storage; }
wait_for "both Roles updated and Ready (status.update.done, updatedReplicasets == replicasets, phase Ready)" both_done
kill -INT "$PROGRESS_PID" 2>/dev/null || true
wait "$PROGRESS_PID" 2>/dev/null || true
PROGRESS_PID=''
say ""
say "    final state:"
"$BIN" progress --namespace "$NS" | sed 's/^/    /'
# Check the outcome on the pods themselves, not only the status.
old=$(kubectl get pods -n "$NS" -l app.kubernetes.io/managed-by=tarantool-operator \
  -o jsonpath='{range .items[*]}{.metadata.name} {.spec.containers[0].image}{"\n"}{end}' | grep -v " $NEW_IMAGE\$" || true)
[[ -z $old ]] || die "the update says done, but these pods still run another image:"$'\n'"$old"
# Shown, not hidden: a Warning the operator raised on a Role during the run
# (it finished anyway, so the condition cleared; worth a look all the same).
warnings=$(kubectl get events -n "$NS" --field-selector type=Warning,involvedObject.kind=Role \
  -o go-template='{{range .items}}{{.involvedObject.name}} {{.reason}} (x{{or .count .series.count 1}}): {{.message}}{{"\n"}}{{end}}')
if [[ -n $warnings ]]; then
  say "    Warning Events on the Roles during the run (the update finished regardless):"
  printf '%s\n' "$warnings" | sed 's/^/      /'
fi

step "timeline" "stop the recorder, draw the run"
# A moment for the last Events to reach the recorder, and a margin on the
# right of the picture.
sleep 1
stop_pidfile "$OUT/recorder.pid" INT "the timeline recorder"
count() { grep -c "\"kind\":\"$1\"" "$OUT/run.jsonl" || true; }
say "    $(wc -l <"$OUT/run.jsonl") records: $(count deleted) deletions (pods and Events), $(count ready) Ready transitions, $(count master) master switches, $(count step) strategy steps"
(( $(count deleted) > 0 && $(count ready) > 0 )) ||
  die "the recording has no deletions or Ready transitions: see $OUT/recorder.log"
(( $(count master) >= 2 )) ||
  die "fewer than 2 master switches recorded: SwitchMasterUpdate should move the master of each storage replica set"
"$BIN" timeline --from "$OUT/run.jsonl" --out "$OUT/timeline.svg" >/dev/null
"$BIN" timeline --from "$OUT/run.jsonl" --out "$OUT/timeline.html" >/dev/null
say "    ${B}$OUT/timeline.svg${Z}"
say "    ${B}$OUT/timeline.html${Z}  (open in a browser; hover a mark for details)"
end_step

# ---------------------------------------------------------------- summary
say ""
say "${B}==> summary${Z}"
printf '    %s\n' "${SUMMARY[@]}"
say "    $(printf '%-30s %8s' total "$(secs $(( $(now_ms) - T0 )))")"
if [[ $KEEP == 1 ]]; then
  cat <<EOF

KEEP=1: the dev cluster and the operator (pid $(cat "$OUT/operator.pid"), log target/demo/operator.log) keep running.
  export KUBECONFIG=$ADMIN_KUBECONFIG
  export PATH=$CP_BIN:\$PATH
  kubectl get tntc,tntr,pods -n $NS
  $BIN progress -n $NS
The operator's token expires after ${DEMO_TOKEN_DURATION:-2h}. Stop everything with: make demo-down
EOF
fi
