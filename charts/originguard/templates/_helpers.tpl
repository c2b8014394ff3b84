{{- define "originguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "originguard.fullname" -}}
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

{{- define "originguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "originguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "originguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "originguard.labels" -}}
helm.sh/chart: {{ include "originguard.chart" . }}
{{ include "originguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: originguard
{{- end }}

{{- define "originguard.operatorLabels" -}}
{{ include "originguard.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "originguard.operatorSelectorLabels" -}}
{{ include "originguard.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "originguard.serviceAccountName" -}}
{{- default (printf "%s-operator" (include "originguard.fullname" .)) .Values.serviceAccount.name }}
{{- end }}

{{/* Names the operator's flags and the RBAC rules share. */}}
{{- define "originguard.webhookConfiguration" -}}{{ include "originguard.fullname" . }}{{- end }}
{{- define "originguard.webhookService" -}}{{ include "originguard.fullname" . }}-webhook{{- end }}
{{- define "originguard.webhookSecret" -}}{{ include "originguard.fullname" . }}-webhook-cert{{- end }}
{{- define "originguard.lease" -}}{{ include "originguard.fullname" . }}-operator{{- end }}
{{- define "originguard.operatorRole" -}}{{ include "originguard.fullname" . }}-operator{{- end }}

{{- define "originguard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Namespaces the webhook never calls for: system ones, the release's, and the configured ones. */}}
{{- define "originguard.excludedNamespaces" -}}
{{- $ns := concat (list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace) .Values.webhook.excludedNamespaces | uniq | sortAlpha }}
{{- toJson $ns }}
{{- end }}

{{/* Parses a generated YAML file kept under files/ (header comment and `---` separators) into a list of objects. */}}
{{- define "originguard.filesObjects" -}}
{{- $objects := list }}
{{- range $doc := regexSplit "(?m)^---\\s*$" (.root.Files.Get .path) -1 }}
{{- $obj := fromYaml $doc }}
{{- if and $obj (hasKey $obj "kind") }}
{{- $objects = append $objects $obj }}
{{- end }}
{{- end }}
{{- toJson $objects }}
{{- end }}

{{/* A memory quantity (256Mi, 1Gi, 500M, bytes) in whole MiB, rounded down. */}}
{{- define "originguard.mebibytes" -}}
{{- if kindIs "float64" . }}
{{- divf . 1048576 | floor | int }}
{{- else }}
{{- $q := toString . }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $unit := substr (len $num) (len $q) $q }}
{{- $mib := dict "" 0.00000095367431640625 "k" 0.00095367431640625 "Ki" 0.0009765625 "M" 0.95367431640625 "Mi" 1 "G" 953.67431640625 "Gi" 1024 "T" 953674.31640625 "Ti" 1048576 }}
{{- if or (eq $num "") (not (hasKey $mib $unit)) }}
{{- fail (printf "resources.limits.memory: cannot read %q as a memory quantity (e.g. 256Mi, 1Gi)" $q) }}
{{- end }}
{{- mulf (float64 $num) (get $mib $unit) | floor | int }}
{{- end }}
{{- end }}

{{/*
NODE_OPTIONS sizing V8's heap from the container's memory limit, so that the
garbage collector works within the limit instead of the kernel killing the
process at it: the old space gets the limit minus what is not old space (Node
itself, code, the young generation, network buffers), the young generation a
fixed size. Empty without a memory limit.
*/}}
{{- define "originguard.nodeOptions" -}}
{{- $limit := dig "limits" "memory" "" .Values.resources }}
{{- if and .Values.operator.heap.fromLimit $limit }}
{{- $old := sub (include "originguard.mebibytes" $limit | int) (.Values.operator.heap.reserveMiB | int) }}
{{- if lt $old 64 }}
{{- fail (printf "resources.limits.memory %s leaves %d MiB of V8 heap after operator.heap.reserveMiB (%d): the operator needs at least 64 (see docs/operations.md)" (toString $limit) $old (.Values.operator.heap.reserveMiB | int)) }}
{{- end }}
{{- printf "--max-old-space-size=%d --max-semi-space-size=%d" $old (.Values.operator.heap.semiSpaceMiB | int) }}
{{- end }}
{{- end }}
