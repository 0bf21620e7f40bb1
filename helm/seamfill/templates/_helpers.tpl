{{/*
Names and labels shared by every template.
*/}}

{{/* Chart name, overridable. */}}
{{- define "seamfill.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified release name; truncated to 63 chars for DNS label limits. */}}
{{- define "seamfill.fullname" -}}
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

{{/* Component names: leave room for pod-name suffixes. */}}
{{- define "seamfill.coordinator.fullname" -}}
{{- printf "%s-coordinator" (include "seamfill.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- define "seamfill.worker.fullname" -}}
{{- printf "%s-worker" (include "seamfill.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- define "seamfill.redis.fullname" -}}
{{- printf "%s-redis" (include "seamfill.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- define "seamfill.questdb.fullname" -}}
{{- printf "%s-questdb" (include "seamfill.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "seamfill.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "seamfill.labels" -}}
helm.sh/chart: {{ include "seamfill.chart" . }}
{{ include "seamfill.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: seamfill
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "seamfill.selectorLabels" -}}
app.kubernetes.io/name: {{ include "seamfill.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Per-component labels: call with (dict "ctx" $ "component" "coordinator"). */}}
{{- define "seamfill.componentLabels" -}}
{{ include "seamfill.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "seamfill.componentSelectorLabels" -}}
{{ include "seamfill.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "seamfill.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "seamfill.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The one image every entry point runs; a digest wins over a tag. */}}
{{- define "seamfill.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Secret holding the role tokens (and credentials the chart generated). */}}
{{- define "seamfill.authSecretName" -}}
{{- default (printf "%s-auth" (include "seamfill.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* Where Redis is: the user's URL, or the trial StatefulSet. */}}
{{- /* Trial mode wins: its point is to run against the chart's own servers. */}}
{{- define "seamfill.redisUrl" -}}
{{- if .Values.trial.enabled }}
{{- printf "redis://%s:6379/0" (include "seamfill.redis.fullname" .) }}
{{- else }}
{{- .Values.redis.url }}
{{- end }}
{{- end }}

{{- define "seamfill.questdbHttpUrl" -}}
{{- if .Values.trial.enabled }}
{{- printf "http://%s:9000" (include "seamfill.questdb.fullname" .) }}
{{- else }}
{{- .Values.questdb.httpUrl }}
{{- end }}
{{- end }}

{{- define "seamfill.questdbDsn" -}}
{{- if .Values.trial.enabled }}
{{- printf "postgresql://admin:quest@%s:8812/qdb" (include "seamfill.questdb.fullname" .) }}
{{- else }}
{{- .Values.questdb.dsn }}
{{- end }}
{{- end }}

{{/* The address workers dial: grpcs:// when the coordinator serves TLS. */}}
{{- define "seamfill.coordinatorAddress" -}}
{{- $scheme := ternary "grpcs://" "" .Values.tls.enabled }}
{{- default (printf "%s%s:%d" $scheme (include "seamfill.coordinator.fullname" .) (int .Values.coordinator.port)) .Values.worker.coordinatorAddress }}
{{- end }}

{{/*
Fail early, with the key to set, when the values cannot make a working release.
*/}}
{{- define "seamfill.validate" -}}
{{- if and (not (include "seamfill.redisUrl" .)) (not .Values.redis.existingSecret) }}
{{- fail "redis.url: set the Redis URL (redis://host:6379/0), or redis.existingSecret, or trial.enabled=true" }}
{{- end }}
{{- if and (not (include "seamfill.questdbHttpUrl" .)) (not .Values.questdb.existingSecret) }}
{{- fail "questdb.httpUrl: set the QuestDB HTTP URL (http://host:9000), or questdb.existingSecret, or trial.enabled=true" }}
{{- end }}
{{- $heartbeat := div (int .Values.config.lease_ttl_ms) 3000 }}
{{- $needed := add (int .Values.worker.graceSeconds) $heartbeat }}
{{- if le (int .Values.worker.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "worker.terminationGracePeriodSeconds: %d is too short; it must exceed worker.graceSeconds (%d) plus one heartbeat (config.lease_ttl_ms/3 = %ds): set it above %d" (int .Values.worker.terminationGracePeriodSeconds) (int .Values.worker.graceSeconds) $heartbeat $needed) }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "tls.existingSecret: tls.enabled=true needs a kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt) named here" }}
{{- end }}
{{- if and .Values.worker.autoscaling.enabled (gt (int .Values.worker.autoscaling.minReplicas) (int .Values.worker.autoscaling.maxReplicas)) }}
{{- fail "worker.autoscaling.minReplicas: must not exceed worker.autoscaling.maxReplicas" }}
{{- end }}
{{- end }}

{{/* Pod-level security context shared by the seamfill pods. */}}
{{- define "seamfill.tmpVolume" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- end }}

{{/* Env entries for the Redis and QuestDB addresses: from a Secret when one is named. */}}
{{- define "seamfill.redisEnv" -}}
- name: SEAMFILL_REDIS_URL
{{- if and .Values.redis.existingSecret (not .Values.trial.enabled) }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else }}
  value: {{ include "seamfill.redisUrl" . | quote }}
{{- end }}
{{- end }}

{{- define "seamfill.questdbUrlEnv" -}}
- name: SEAMFILL_QUESTDB_URL
{{- if and .Values.questdb.existingSecret (not .Values.trial.enabled) }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.questdb.existingSecret }}
      key: {{ .Values.questdb.httpUrlKey }}
{{- else }}
  value: {{ include "seamfill.questdbHttpUrl" . | quote }}
{{- end }}
{{- end }}

{{- define "seamfill.questdbDsnEnv" -}}
{{- if and .Values.questdb.existingSecret (not .Values.trial.enabled) -}}
- name: SEAMFILL_QUESTDB_DSN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.questdb.existingSecret }}
      key: {{ .Values.questdb.dsnKey }}
      optional: true
{{- else if (include "seamfill.questdbDsn" .) -}}
- name: SEAMFILL_QUESTDB_DSN
  value: {{ include "seamfill.questdbDsn" . | quote }}
{{- end }}
{{- end }}

{{/* A token of one role from the auth Secret: call with (dict "ctx" $ "role" "worker" "name" "SEAMFILL_TOKEN"). */}}
{{- define "seamfill.tokenEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "seamfill.authSecretName" .ctx }}
      key: {{ get .ctx.Values.auth.keys .role }}
{{- end }}

{{/* Rolls pods when the configuration or the chart-made Secret changes. */}}
{{- define "seamfill.configChecksum" -}}
{{- $config := include (print .Template.BasePath "/configmap.yaml") . }}
{{- $secret := "" }}
{{- if not .Values.auth.existingSecret }}
{{- $secret = toYaml .Values.auth.tokens }}
{{- end }}
{{- print $config $secret | sha256sum }}
{{- end }}
