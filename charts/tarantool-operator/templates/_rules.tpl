{{/*
The operator's permissions, least privilege: exactly the verbs its
controllers use, Secrets by get only, nothing on nodes or RBAC. Rendered into a
ClusterRole (watchNamespace empty) or into a Role in watchNamespace. The
leader-election Lease is granted separately (leader-election-rbac.yaml).
tests/harness/tests/chart.rs checks every rule with SelfSubjectAccessReview
as the chart's ServiceAccount; change both together.
*/}}
{{- define "tarantool-operator.rules" -}}
# The custom resources: the controllers watch them (get/list/watch); they
# patch/update metadata only: their finalizer (expel from the topology before
# deletion) and the Cluster's ownerReference on its Roles. They never create
# or delete them: users do.
- apiGroups: ["tarantool.io"]
  resources: ["clusters", "roles"]
  verbs: ["get", "list", "watch", "patch", "update"]
# Status (phase, conditions, replica sets, the strategy's opaque state) is
# written only through the status subresource.
- apiGroups: ["tarantool.io"]
  resources: ["clusters/status", "roles/status"]
  verbs: ["get", "patch", "update"]
# Setting ownerReferences with blockOwnerDeletion on owned objects needs
# update on the owner's finalizers subresource (OwnerReferencesPermissionEnforcement).
- apiGroups: ["tarantool.io"]
  resources: ["clusters/finalizers", "roles/finalizers"]
  verbs: ["update"]
# One StatefulSet per replica set: created, applied (server-side apply =
# patch), and deleted on scale-down or after a PVC-template migration.
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# The headless Service per Role (advertise URIs) and the Cluster's client
# Service, with the same life cycle as the StatefulSets.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# Pods are watched to build the strategy's view; the update strategies roll
# them by deleting them (StatefulSets use updateStrategy OnDelete). The
# operator never creates pods: the StatefulSet controller does.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete"]
# The only path to Tarantool: its admin console over pod exec. A websocket
# exec upgrade is a GET; newer apiservers also authorize it as create.
- apiGroups: [""]
  resources: ["pods/exec"]
  verbs: ["create", "get"]
# Claims are created by the StatefulSet controller and deleted only by the
# operator (whenScaled and whenDeleted: Retain), once Cartridge confirmed
# their instances expelled: after a volumeClaimTemplates change, fewer replica
# sets, or fewer replicas. Listed to see that they are gone.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "delete"]
# Failover passwords: one get of the Secret a Cluster's passwordSecretRef names (no list/watch).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# Custom update strategies ship as a .wasm in a ConfigMap referenced from the
# Role; the operator reads and watches them, never writes them.
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
