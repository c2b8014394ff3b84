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
