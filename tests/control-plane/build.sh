#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok, helm and our cphelper) with CGO_ENABLED=0 and
# links them into target/control-plane/bin.
#
# Binaries are cached outside the checkout, one folder per component group,
# keyed by what decides their content (Go version, pinned versions, go.mod/go.sum,
# sources), so a second run, also from a fresh clone on the same machine, only
# links them: ${TARANTOOL_OPERATOR_CACHE:-${XDG_CACHE_HOME:-~/.cache}/tarantool-operator}/control-plane/<group>-<key>/
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v go >/dev/null || die "go is not on PATH (Go >= 1.26 is needed to build the control plane)"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-p=${CP_GO_JOBS:-2} -trimpath"
CACHE_ROOT=$(cp_cache_root)
mkdir -p "$CACHE_ROOT" "$CP_BIN"
GOVERSION=$(go env GOVERSION)

# kube_ldflags VERSION: the version the binaries report (/version, kubectl).
kube_ldflags() {
  local minor=${1#v1.} flags="-s -w" pkg
  minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$1 -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  printf '%s' "$flags"
}
KUBE_LDFLAGS=$(kube_ldflags "$KUBERNETES_VERSION")
KUBE_OLDEST_LDFLAGS=$(kube_ldflags "$KUBERNETES_OLDEST_VERSION")
KUBE_OLDEST_DIR=$CP_DIR/kube-${KUBERNETES_OLDEST_VERSION%.*}
KWOK_LDFLAGS="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
HELM_LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"

key_of() { sha256sum | cut -c1-16; }

# group NAME KEY BUILD_FUNCTION: builds into a temp dir once, then reuses it.
group() {
  local name=$1 key=$2 fn=$3 dir tmp start
  dir=$CACHE_ROOT/$name-$key
  if [[ ! -f $dir/.complete ]]; then
    tmp=$(mktemp -d "$CACHE_ROOT/.$name-$key.XXXXXX")
    log "building $name (cache miss: $dir)"
    start=$(date +%s)
    if ! "$fn" "$tmp" >"$tmp/.build.log" 2>&1; then
      tail -n 40 "$tmp/.build.log" >&2
      die "build of $name failed (full log: $tmp/.build.log)"
    fi
    echo "$(( $(date +%s) - start ))" >"$tmp/.build-seconds"
    touch "$tmp/.complete"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    log "built $name in $(cat "$dir/.build-seconds")s"
  fi
  # The oldest release's binaries go into a control plane that runs it only.
  [[ $name == kube-oldest && ${CP_KUBERNETES:-newest} != oldest ]] && return 0
  local f
  for f in "$dir"/*; do
    ln -f "$f" "$CP_BIN/" 2>/dev/null || cp -f "$f" "$CP_BIN/"
  done
}

build_kube() {
  (cd "$CP_DIR" && GOBIN=$1 go install -ldflags="$KUBE_LDFLAGS" tool)
  mv "$1/server" "$1/etcd" # go.etcd.io/etcd/server/v3 installs as "server"
}
# The oldest supported release's kube-apiserver, kube-controller-manager,
# kube-scheduler and kubectl; etcd comes from the newest group (the etcd API
# is the same).
build_kube_oldest() {
  (cd "$KUBE_OLDEST_DIR" && GOBIN=$1 go install -ldflags="$KUBE_OLDEST_LDFLAGS" tool)
}
build_kwok() {
  # kwok is built from a patched copy of its module source (two small fixes to
  # pkg/utils/exec/exec.go, the code that runs exec'd commands, and one to
  # pkg/kwok/controllers/pod_controller.go; all verified below):
  # 1. stdin EOF: v0.8.0 copies the exec stream's stdin into the command's stdin
  #    pipe but never closes the pipe, so a command reading stdin to the end
  #    (`tarantoolctl connect`, `cat`) never finishes. Close it after the copy.
  # 2. exit codes: a failed command comes back as a wrapped error, so the exec
  #    stream reports "500 InternalError" instead of NonZeroExitCode with the
  #    ExitCode cause that a kubelet sends. Return k8s.io/utils/exec.CodeExitError.
  # 3. stale pod deletes: a stage job holds the pod as kwok saw it when the job
  #    was queued, is keyed by namespace/name, and `next: delete` then deletes
  #    that name with grace 0 and no preconditions. A job that outlives its pod
  #    (a retried delete whose first try timed out but went through, a job made
  #    from a watch event processed after the pod was already gone, a relist
  #    that gives no Deleted event) is only cancelled once kwok handles the
  #    replacement pod; until then it force-deletes the StatefulSet's new pod
  #    of the same name. Delete with a UID precondition, as the kubelet does,
  #    and treat NotFound/Conflict (gone, or replaced) as done, not as an error.
  local src work f
  src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -d $src ]] || { echo "sigs.k8s.io/kwok@$KWOK_VERSION: no module source"; return 1; }
  work=$1/.src
  cp -r "$src" "$work" && chmod -R u+w "$work"
  f=$work/pkg/utils/exec/exec.go
  sed -i \
    -e 's/^\(\s*\)_, _ = io.Copy(inPipe, opt.In)$/&\n\1_ = inPipe.Close() \/\/ tarantool-operator patch 1/' \
    -e 's/^\t"os\/exec"$/&\n\tutilexec "k8s.io\/utils\/exec" \/\/ tarantool-operator patch 2/' \
    -e 's/^\(\s*\)err = cmd.Wait()$/&\n\1if ee, ok := err.(*exec.ExitError); ok \&\& ee.Exited() { return nil, utilexec.CodeExitError{Err: err, Code: ee.ExitCode()} } \/\/ tarantool-operator patch 2/' \
    "$f"
  [[ $(grep -c 'tarantool-operator patch' "$f") == 3 ]] ||
    { echo "the kwok patches no longer apply to $KWOK_VERSION: check pkg/utils/exec/exec.go"; return 1; }
  f=$work/pkg/kwok/controllers/pod_controller.go
  sed -i \
    -e 's/^\t"k8s.io\/apimachinery\/pkg\/api\/meta"$/\tapierrors "k8s.io\/apimachinery\/pkg\/api\/errors" \/\/ tarantool-operator patch 3\n&/' \
    -e 's/^\(\s*\)err := c.typedClient.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, deleteOpt)$/\1opt := deleteOpt \/\/ tarantool-operator patch 3\n\1opt.Preconditions = metav1.NewUIDPreconditions(string(pod.UID)) \/\/ tarantool-operator patch 3\n\1err := c.typedClient.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, opt) \/\/ tarantool-operator patch 3\n\1if apierrors.IsNotFound(err) || apierrors.IsConflict(err) { logger.Warn("Skip deleting pod: already gone, or the name now belongs to a new pod", "uid", pod.UID, "err", err); return nil } \/\/ tarantool-operator patch 3/' \
    "$f"
  [[ $(grep -c 'tarantool-operator patch 3' "$f") == 5 ]] ||
    { echo "the kwok patches no longer apply to $KWOK_VERSION: check pkg/kwok/controllers/pod_controller.go"; return 1; }
  (cd "$work" && go build -ldflags="$KWOK_LDFLAGS" -o "$1/kwok" ./cmd/kwok)
  # The Exec CRD: kwok watches per-pod Exec objects (--enable-crds=Exec).
  cp "$src/kustomize/crd/bases/kwok.x-k8s.io_execs.yaml" "$1/kwok-execs-crd.yaml"
  rm -rf "$work"
}
build_helm() { GOBIN=$1 go install -ldflags="$HELM_LDFLAGS" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; }
build_cphelper() { (cd "$CP_DIR" && go build -ldflags="-s -w" -o "$1/cphelper" ./cmd/cphelper); }


# CP_KUBERNETES=oldest: the oldest supported release's binaries, linked over
# the newest ones (after them), so $CP_BIN holds one complete control plane.
default_targets="kube kwok helm cphelper"
[[ ${CP_KUBERNETES:-newest} == oldest ]] && default_targets="kube kube-oldest kwok helm cphelper"
targets=${*:-$default_targets}
for t in $targets; do
  case $t in
    kube) group kube "$( { echo "$GOVERSION $KUBERNETES_VERSION $KUBE_LDFLAGS"; cat "$CP_DIR/go.mod" "$CP_DIR/go.sum"; } | key_of)" build_kube ;;
    kube-oldest) group kube-oldest "$( { echo "$GOVERSION $KUBERNETES_OLDEST_VERSION $KUBE_OLDEST_LDFLAGS"; cat "$KUBE_OLDEST_DIR/go.mod" "$KUBE_OLDEST_DIR/go.sum"; } | key_of)" build_kube_oldest ;;
    kwok) group kwok "$(echo "$GOVERSION $KWOK_VERSION $KWOK_LDFLAGS with-exec-crd patches-1-2-3" | key_of)" build_kwok ;;
    helm) group helm "$(echo "$GOVERSION $HELM_VERSION $HELM_LDFLAGS" | key_of)" build_helm ;;
    cphelper) group cphelper "$( { echo "$GOVERSION"; cat "$CP_DIR/go.mod" "$CP_DIR/go.sum"; find "$CP_DIR/cmd/cphelper" -name '*.go' ! -name '*_test.go' | LC_ALL=C sort | xargs cat; } | key_of)" build_cphelper ;;
    *) die "unknown build target $t" ;;
  esac
done
if [[ $# -eq 0 ]]; then
  for b in "${CP_BINARIES[@]}"; do
    [[ -x $CP_BIN/$b ]] || die "missing $CP_BIN/$b after the build"
  done
fi
log "binaries ready in $CP_BIN"
