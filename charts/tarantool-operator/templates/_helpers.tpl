{{/*
Names and labels shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "tarantool-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, or the release name
when it already contains the chart name, or "<release>-<chart>". Truncated to
63 characters because some Kubernetes name fields are DNS labels.
*/}}
{{- define "tarantool-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The name of cluster-scoped objects (ClusterRole, ClusterRoleBinding): the same
release name may be installed in several namespaces, so the namespace is part
of the name to keep two installs from overwriting each other's RBAC.
*/}}
{{- define "tarantool-operator.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "tarantool-operator.fullname" .) }}
{{- end }}

{{- define "tarantool-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The standard labels (https://helm.sh/docs/chart_best_practices/labels/). */}}
{{- define "tarantool-operator.labels" -}}
helm.sh/chart: {{ include "tarantool-operator.chart" . }}
{{ include "tarantool-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: tarantool-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that select the operator's pods; never change them (Deployment selectors are immutable). */}}
{{- define "tarantool-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tarantool-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "tarantool-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tarantool-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image reference: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "tarantool-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
The eviction webhook's ValidatingWebhookConfiguration (cluster-scoped: named
after the release and its namespace, as the ClusterRole is).
*/}}
{{- define "tarantool-operator.webhookName" -}}
{{- printf "%s-evictions" (include "tarantool-operator.clusterName" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
