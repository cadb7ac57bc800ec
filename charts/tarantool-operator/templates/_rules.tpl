{{/*
The operator's permissions, least privilege: exactly the verbs its
controllers use, Secrets by get only, nothing on nodes or RBAC. Rendered into a
ClusterRole (watchNamespace empty) or into a Role in watchNamespace. The
leader-election Lease is granted separately (leader-election-rbac.yaml).
tests/harness/tests/chart.rs checks every rule with SelfSubjectAccessReview
as the chart's ServiceAccount; change both together.
*/}}
{{- define "tarantool-operator.rules" -}}
# The custom resources: the controllers watch them (get/list/watch) and never
# create or delete them: users do. Clusters are only read.
- apiGroups: ["tarantool.io"]
  resources: ["clusters"]
  verbs: ["get", "list", "watch"]
# A Role's metadata is patched (never updated): the Role's finalizer
# (tarantool.io/expel: drain and expel before the Role goes) and its
# Cluster's ownerReference once the Role names that Cluster.
- apiGroups: ["tarantool.io"]
  resources: ["roles"]
  verbs: ["get", "list", "watch", "patch"]
# Status (phase, conditions, replica sets, the strategy's opaque state) is
# written only through the status subresource, by server-side apply (a patch).
- apiGroups: ["tarantool.io"]
  resources: ["clusters/status", "roles/status"]
  verbs: ["patch"]
# Setting ownerReferences with blockOwnerDeletion on owned objects needs
# update on the owner's finalizers subresource (OwnerReferencesPermissionEnforcement).
- apiGroups: ["tarantool.io"]
  resources: ["clusters/finalizers", "roles/finalizers"]
  verbs: ["update"]
# One StatefulSet per replica set: read before it is applied, applied by
# server-side apply (a patch, which the apiserver also authorizes as create
# when the object is new), and deleted on scale-down or after a PVC-template
# migration.
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The headless Service per Role (advertise URIs) and the Cluster's client
# Service: applied like the StatefulSets; never deleted by the operator (the
# garbage collector removes them with their owner).
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch"]
# One PodDisruptionBudget per replica set (at most one instance evicted at a
# time by a drain or the autoscaler): watched by label (a pass reads them
# from the watch's store; listed only when the store lacks one; a budget
# deleted by hand wakes its Role), never read one by one, applied by
# server-side apply (a patch, authorized as create too when the object is
# new), and deleted once its replica set's StatefulSet is (after drain and
# expel). The garbage collector removes the rest with their Role.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Pods are watched to build the strategy's view; the update strategies roll
# them by deleting them (StatefulSets use updateStrategy OnDelete). The
# operator never creates pods: the StatefulSet controller does.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete"]
{{- if .Values.webhook.enabled }}
# The eviction webhook marks a pod whose eviction it denied (two
# annotations: when, and until when its master is moved away): patch.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["patch"]
{{- end }}
# The only path to Tarantool: its admin console over pod exec. A websocket
# exec upgrade is a GET; newer apiservers also authorize it as create.
- apiGroups: [""]
  resources: ["pods/exec"]
  verbs: ["create", "get"]
# Claims are created by the StatefulSet controller and deleted only by the
# operator (whenScaled and whenDeleted: Retain), once Cartridge confirmed
# their instances expelled: after a volumeClaimTemplates change, fewer replica
# sets, or fewer replicas. Listed (metadata only) to see that they are gone;
# never watched.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "delete"]
# Failover passwords: one get of the Secret a Cluster's passwordSecretRef names (no list/watch).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# Custom update strategies ship as a .wasm in a ConfigMap referenced from the
# Role; the operator watches (metadata only, label tarantool.io/strategy) and
# reads them, never writes them.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
# An Event for every action and every refusal (both APIs: the events.k8s.io
# recorder, and core events for tools that read only those). Patch bumps the
# count of a repeated event.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
