{{/*
Names, labels and image references shared by every template (the names
`helm create` and the prometheus-community charts use).
*/}}

{{/* Chart name, overridable. */}}
{{- define "shallot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, or the release name when it already contains
the chart name; truncated to 63 characters (DNS label limit).
*/}}
{{- define "shallot.fullname" -}}
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

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "shallot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object the chart creates. */}}
{{- define "shallot.labels" -}}
helm.sh/chart: {{ include "shallot.chart" . }}
{{ include "shallot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: shallot
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels (stable across upgrades: never add to these). */}}
{{- define "shallot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shallot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's ServiceAccount name. */}}
{{- define "shallot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "shallot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference of a Shallot component: the full override if set, else
<registry>shallot-<component>:<tag>. Call with (list $ "operator" .Values.image.operator).
*/}}
{{- define "shallot.image" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $override := index . 2 }}
{{- if $override }}
{{- $override }}
{{- else }}
{{- printf "%sshallot-%s:%s" $root.Values.image.registry $component (toString $root.Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The OnionNetwork the SOCKS client joins. */}}
{{- define "shallot.clientNetwork" -}}
{{- default .Values.examples.network.name .Values.client.network }}
{{- end }}

{{/* "true" when the SOCKS client uses TLS links (the example network's setting when it joins that one). */}}
{{- define "shallot.clientTls" -}}
{{- if and .Values.examples.network.enabled (eq (include "shallot.clientNetwork" .) .Values.examples.network.name) }}
{{- .Values.examples.network.tls }}
{{- else }}
{{- .Values.client.tls }}
{{- end }}
{{- end }}

{{/* The SOCKS client's object name. */}}
{{- define "shallot.clientName" -}}
{{- printf "%s-client" (include "shallot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The operator's object name. */}}
{{- define "shallot.operatorName" -}}
{{- printf "%s-operator" (include "shallot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Pod security context of every chart pod: uid 1000 as the images run, no privilege. */}}
{{- define "shallot.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container security context: read-only root, no capabilities. */}}
{{- define "shallot.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
{{- end }}

{{/* prometheus.io scrape annotations for a pod serving /metrics on the given port. */}}
{{- define "shallot.scrapeAnnotations" -}}
{{- $root := index . 0 }}
{{- if and $root.Values.monitoring.scrapeAnnotations (not $root.Values.monitoring.serviceMonitor.enabled) }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ index . 1 | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}
