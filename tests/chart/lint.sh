#!/usr/bin/env bash
# Static checks of the Helm chart (make lint-chart): helm lint --strict, and
# helm template in both RBAC modes with what each must (and must not)
# render, and values the schema or the templates must refuse. Uses the helm
# of the local control plane (make control-plane builds or links it). The
# chart is installed for real by tests/harness/tests/chart.rs.
set -euo pipefail
# shellcheck source=../control-plane/lib.sh
. "$(dirname "$0")/../control-plane/lib.sh"

HELM=${HELM:-$CP_BIN/helm}
CHART=$REPO_ROOT/charts/tarantool-operator
# Our helm build has no cluster to ask; render for the release the tests run.
TEMPLATE=("$HELM" template lint-release "$CHART" --namespace ops --kube-version "${KUBERNETES_VERSION#v}")
failures=0

say() { printf '[lint-chart] %s\n' "$*" >&2; }
bad() { say "FAIL: $*"; failures=$((failures + 1)); }

[[ -x $HELM ]] || { say "no helm at $HELM (run make control-plane)"; exit 1; }

# The chart ships the generated CRDs unchanged (the Rust test
# chart_crds_are_the_generated_ones checks them against the types too).
if ! diff -r "$REPO_ROOT/crds" "$CHART/crds" >&2; then
  bad "charts/tarantool-operator/crds differs from crds/ (run make crds)"
fi

"$HELM" lint --strict "$CHART" || bad "helm lint --strict (default values)"
"$HELM" lint --strict "$CHART" --set watchNamespace=apps || bad "helm lint --strict (watchNamespace)"

# count KIND FILE: the number of objects of that kind in a rendered stream.
count() { grep -c "^kind: $1\$" "$2" || true; }

# expect NAME FILE KIND=N...: each kind appears exactly N times.
expect() {
  local name=$1 file=$2; shift 2
  local pair kind want got
  for pair in "$@"; do
    kind=${pair%=*} want=${pair#*=}
    got=$(count "$kind" "$file")
    [[ $got == "$want" ]] || bad "$name: $got $kind, expected $want"
  done
}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Default: cluster-wide RBAC, the Lease Role in the release namespace.
if "${TEMPLATE[@]}" >"$out/default.yaml"; then
  expect default "$out/default.yaml" ServiceAccount=1 ClusterRole=1 ClusterRoleBinding=1 \
    Role=1 RoleBinding=1 Deployment=1 Service=1 ServiceMonitor=0 PodDisruptionBudget=0 NetworkPolicy=0
  grep -q -- '- --leader-elect$' "$out/default.yaml" || bad "default: no --leader-elect"
  grep -q -- '- --lease-namespace=ops$' "$out/default.yaml" || bad "default: lease namespace is not the release namespace"
  grep -q -- '- --namespace=' "$out/default.yaml" && bad "default: --namespace set without watchNamespace"
  grep -q 'readOnlyRootFilesystem: true' "$out/default.yaml" || bad "default: root filesystem is writable"
  grep -q 'type: Recreate$' "$out/default.yaml" && bad "default: Recreate with leader election (RollingUpdate hands the Lease over)"
else
  bad "helm template (default values)"
fi

# Without leader election one operator must be gone before the next starts.
if "${TEMPLATE[@]}" --set leaderElection.enabled=false >"$out/single.yaml"; then
  grep -q -- '- --leader-elect$' "$out/single.yaml" && bad "leaderElection.enabled=false: --leader-elect still set"
  grep -q '^    type: Recreate$' "$out/single.yaml" || bad "leaderElection.enabled=false: the Deployment does not use Recreate"
else
  bad "helm template --set leaderElection.enabled=false"
fi

# watchNamespace: a Role in that namespace, nothing cluster-wide.
if "${TEMPLATE[@]}" --set watchNamespace=apps >"$out/watch.yaml"; then
  expect watchNamespace "$out/watch.yaml" ServiceAccount=1 ClusterRole=0 ClusterRoleBinding=0 \
    Role=2 RoleBinding=2 Deployment=1 Service=1
  grep -q -- '- --namespace=apps$' "$out/watch.yaml" || bad "watchNamespace: no --namespace=apps"
  [[ $(grep -c '^  namespace: apps$' "$out/watch.yaml" || true) == 2 ]] ||
    bad "watchNamespace: the Role and RoleBinding are not both in namespace apps"
else
  bad "helm template --set watchNamespace=apps"
fi

# The ServiceMonitor, when its API exists.
if "${TEMPLATE[@]}" --set metrics.serviceMonitor.enabled=true \
  --api-versions monitoring.coreos.com/v1/ServiceMonitor >"$out/sm.yaml"; then
  expect serviceMonitor "$out/sm.yaml" ServiceMonitor=1
else
  bad "helm template with the ServiceMonitor"
fi

# The alerting rules and the dashboard: nothing of them by default; when
# on, the PrometheusRule carries the rule file's every alert, and the
# dashboard ConfigMap the sidecar's label and the JSON.
expect default "$out/default.yaml" PrometheusRule=0 ConfigMap=0
if "${TEMPLATE[@]}" --set metrics.prometheusRule.enabled=true --set metrics.dashboard.enabled=true \
  --api-versions monitoring.coreos.com/v1/PrometheusRule >"$out/obs.yaml"; then
  expect observability "$out/obs.yaml" PrometheusRule=1 ConfigMap=1
  alerts=$(grep -c '^  *- alert: ' "$CHART/rules/tarantool-operator.rules.yaml" || true)
  [[ $alerts -gt 0 && $(grep -c '^    - alert: ' "$out/obs.yaml" || true) == "$alerts" ]] ||
    bad "prometheusRule: the PrometheusRule does not carry the $alerts alerts of the rule file"
  grep -q '^    grafana_dashboard: "1"$' "$out/obs.yaml" || bad "dashboard: no grafana_dashboard label"
  grep -q '"uid": "tarantool-operator"' "$out/obs.yaml" || bad "dashboard: the JSON is not in the ConfigMap"
else
  bad "helm template with the PrometheusRule and the dashboard"
fi

# Two replicas: a PodDisruptionBudget keeps one through a drain.
if "${TEMPLATE[@]}" --set replicaCount=2 >"$out/two.yaml"; then
  expect replicaCount=2 "$out/two.yaml" PodDisruptionBudget=1
  grep -q '^  maxUnavailable: 1$' "$out/two.yaml" || bad "replicaCount=2: the PDB does not allow exactly one disruption"
else
  bad "helm template --set replicaCount=2"
fi

# The eviction webhook: off by default; on, its Service, its registration
# (failurePolicy Ignore, no caBundle: the operator writes it), the Secret
# Role and the one-object ClusterRole of the self-managed certificate, and
# pods patch (the denial mark) in the operator's rules.
grep -q '^kind: ValidatingWebhookConfiguration$' "$out/default.yaml" && bad "default: the eviction webhook is on"
grep -q -- '- --eviction-webhook-port' "$out/default.yaml" && bad "default: --eviction-webhook-port set"
if "${TEMPLATE[@]}" --set webhook.enabled=true >"$out/webhook.yaml"; then
  expect webhook "$out/webhook.yaml" ValidatingWebhookConfiguration=1 Service=2 ClusterRole=2 \
    ClusterRoleBinding=2 Role=2 RoleBinding=2 Issuer=0 Certificate=0
  grep -q 'failurePolicy: Ignore$' "$out/webhook.yaml" || bad "webhook: failurePolicy is not Ignore"
  grep -q 'resources: \["pods/eviction"\]$' "$out/webhook.yaml" || bad "webhook: not registered for pods/eviction"
  grep -q '^ *caBundle:' "$out/webhook.yaml" && bad "webhook: a caBundle in the chart (the operator writes it)"
  grep -q -- '- --eviction-webhook-configuration=ops-lint-release-tarantool-operator-evictions$' "$out/webhook.yaml" ||
    bad "webhook: the operator is not told which configuration to keep"
  grep -q -- '- --eviction-webhook-hosts=lint-release-tarantool-operator-webhook.ops.svc$' "$out/webhook.yaml" ||
    bad "webhook: the certificate is not for the webhook Service"
  grep -q 'resourceNames: \["ops-lint-release-tarantool-operator-evictions"\]$' "$out/webhook.yaml" ||
    bad "webhook: the ClusterRole is not limited to its configuration"
  grep -A1 'resources: \["pods"\]$' "$out/webhook.yaml" | grep -q 'verbs: \["patch"\]$' || bad "webhook: no pods patch"
else
  bad "helm template --set webhook.enabled=true"
fi
if "${TEMPLATE[@]}" --set webhook.enabled=true --set webhook.certManager.enabled=true \
  --api-versions cert-manager.io/v1 >"$out/webhook-cm.yaml"; then
  expect webhook-certManager "$out/webhook-cm.yaml" ValidatingWebhookConfiguration=1 Issuer=1 Certificate=1 \
    ClusterRole=1 Role=1
  grep -q 'cert-manager.io/inject-ca-from: ops/lint-release-tarantool-operator-webhook$' "$out/webhook-cm.yaml" ||
    bad "webhook-certManager: no CA injection"
  grep -q -- '- --eviction-webhook-cert-dir=' "$out/webhook-cm.yaml" || bad "webhook-certManager: the mounted certificate is not served"
else
  bad "helm template with the webhook and cert-manager"
fi
if "${TEMPLATE[@]}" --set webhook.enabled=true --set watchNamespace=apps >"$out/webhook-watch.yaml"; then
  grep -q 'kubernetes.io/metadata.name: apps$' "$out/webhook-watch.yaml" || bad "webhook with watchNamespace: evictions of every namespace go to it"
else
  bad "helm template with the webhook and watchNamespace"
fi

# The NetworkPolicy: apiserver and DNS out; health in; metrics only from the
# peers given.
if "${TEMPLATE[@]}" --set networkPolicy.enabled=true \
  --set 'networkPolicy.apiServer.cidrs={10.0.0.1/32}' \
  --set 'networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring' >"$out/np.yaml"; then
  expect networkPolicy "$out/np.yaml" NetworkPolicy=1
  grep -q 'cidr: 10.0.0.1/32$' "$out/np.yaml" || bad "networkPolicy: the apiserver network is not the only egress"
  grep -q 'name: monitoring$' "$out/np.yaml" || bad "networkPolicy: metricsFrom not rendered"
else
  bad "helm template with the NetworkPolicy"
fi
if "${TEMPLATE[@]}" --set networkPolicy.enabled=true >"$out/np-default.yaml"; then
  grep -q -- '- port: 8080$' "$out/np-default.yaml" && bad "networkPolicy without metricsFrom: metrics open to anyone"
else
  bad "helm template with the NetworkPolicy (defaults)"
fi

# Values that must be refused: by the strict schema, or by the templates.
refuse() {
  local why=$1; shift
  if "${TEMPLATE[@]}" "$@" >/dev/null 2>"$out/err"; then
    bad "accepted $*: $why"
  fi
}
refuse "unknown top-level key (schema is strict)" --set replicas=2
refuse "unknown nested key" --set image.name=x
refuse "pull policy outside the enum" --set image.pullPolicy=Sometimes
refuse "not a namespace name" --set watchNamespace=Not_A_Namespace
refuse "two active operators" --set replicaCount=2 --set leaderElection.enabled=false
refuse "ServiceMonitor without its CRD" --set metrics.serviceMonitor.enabled=true
refuse "PrometheusRule without its CRD" --set metrics.prometheusRule.enabled=true
refuse "existing ServiceAccount without a name" --set serviceAccount.create=false
refuse "cert-manager without its CRDs" --set webhook.enabled=true --set webhook.certManager.enabled=true
refuse "an unknown webhook key" --set webhook.bogus=1
refuse "an apiserver network that is not a CIDR" --set networkPolicy.enabled=true --set 'networkPolicy.apiServer.cidrs={apiserver}'

if ((failures)); then
  say "$failures check(s) failed"
  exit 1
fi
say "ok"
