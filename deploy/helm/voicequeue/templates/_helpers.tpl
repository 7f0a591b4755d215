{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "voicequeue.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. Component names are appended to it ("-gateway", "-worker-metrics"), so
it is kept to 45 characters.
*/}}
{{- define "voicequeue.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "voicequeue.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "voicequeue.labels" -}}
helm.sh/chart: {{ include "voicequeue.chart" . }}
app.kubernetes.io/name: {{ include "voicequeue.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: voicequeue
{{- end }}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "gateway"). */}}
{{- define "voicequeue.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voicequeue.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of one component's objects. */}}
{{- define "voicequeue.componentLabels" -}}
{{ include "voicequeue.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "voicequeue.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "voicequeue.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "voicequeue.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}

{{/* The Secret holding app key, app secret, push secret, tokens and keys. */}}
{{- define "voicequeue.secretName" -}}
{{- default (include "voicequeue.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* The gateway's in-cluster base URL (the simulator pushes to it). */}}
{{- define "voicequeue.gatewayURL" -}}
{{- printf "http://%s-gateway:%d" (include "voicequeue.fullname" .) (int .Values.gateway.service.port) }}
{{- end }}

{{/* VOICEQUEUE_PROVIDER_URL: as configured, else the simulator's Service when it runs. */}}
{{- define "voicequeue.providerURL" -}}
{{- if .Values.config.providerURL }}
{{- .Values.config.providerURL }}
{{- else if .Values.simulator.enabled }}
{{- printf "http://%s-simulator:%d" (include "voicequeue.fullname" .) (int .Values.simulator.port) }}
{{- end }}
{{- end }}

{{/* VOICEQUEUE_PUSH_BASE_URL: as configured, else the gateway's Service when the simulator runs. */}}
{{- define "voicequeue.pushBaseURL" -}}
{{- if .Values.config.pushBaseURL }}
{{- .Values.config.pushBaseURL }}
{{- else if .Values.simulator.enabled }}
{{- include "voicequeue.gatewayURL" . }}
{{- end }}
{{- end }}

{{/*
Environment of the gateway and worker containers read from the Secret(s). component is
"gateway" or "worker": only the worker needs the provider's app secret. Keys that have a
derived default are optional.
*/}}
{{- define "voicequeue.secretEnv" -}}
{{- $secret := include "voicequeue.secretName" .ctx -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ default $secret .ctx.Values.redis.existingSecret }}
      key: {{ .ctx.Values.redis.existingSecretKey }}
- name: VOICEQUEUE_APP_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: app-key
{{- if eq .component "worker" }}
- name: VOICEQUEUE_APP_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: app-secret
{{- end }}
- name: VOICEQUEUE_PUSH_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: push-secret
{{- if eq .component "gateway" }}
- name: VOICEQUEUE_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: api-tokens
{{- end }}
- name: VOICEQUEUE_USERDATA_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: userdata-key
      optional: true
- name: VOICEQUEUE_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: webhook-secret
      optional: true
- name: VOICEQUEUE_CODE_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: code-key
      optional: true
{{- end }}

{{/* Pod annotations that restart the pods when their configuration changes. */}}
{{- define "voicequeue.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/* Volumes of the gateway and worker pods. */}}
{{- define "voicequeue.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 16Mi
{{- with .Values.config.providerCA }}
{{- if .configMap }}
- name: provider-ca
  configMap:
    name: {{ .configMap }}
    items:
      - key: {{ .key }}
        path: ca.crt
{{- else if .secret }}
- name: provider-ca
  secret:
    secretName: {{ .secret }}
    items:
      - key: {{ .key }}
        path: ca.crt
{{- end }}
{{- end }}
{{- end }}

{{- define "voicequeue.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if or .Values.config.providerCA.configMap .Values.config.providerCA.secret }}
- name: provider-ca
  mountPath: /etc/voicequeue/provider-ca
  readOnly: true
{{- end }}
{{- end }}

{{/*
Checks run before anything renders: a grace period shorter than the shutdown it must cover would
let Kubernetes kill a worker with a provider request in flight.
*/}}
{{- define "voicequeue.validate" -}}
{{- $shutdown := int .Values.config.shutdownTimeoutSeconds }}
{{- $provider := int .Values.config.providerTimeoutSeconds }}
{{- $wNeed := add $shutdown $provider 5 }}
{{- if lt (int .Values.worker.terminationGracePeriodSeconds) (int $wNeed) }}
{{- fail (printf "worker.terminationGracePeriodSeconds (%d) must be at least config.shutdownTimeoutSeconds + config.providerTimeoutSeconds + 5 = %d: asynq waits the shutdown timeout for running tasks, a provider request in flight always finishes, and the admin server needs a moment" (int .Values.worker.terminationGracePeriodSeconds) (int $wNeed)) }}
{{- end }}
{{- $gNeed := add (int .Values.gateway.preStopSleepSeconds) $shutdown 5 }}
{{- if lt (int .Values.gateway.terminationGracePeriodSeconds) (int $gNeed) }}
{{- fail (printf "gateway.terminationGracePeriodSeconds (%d) must be at least gateway.preStopSleepSeconds + config.shutdownTimeoutSeconds + 5 = %d" (int .Values.gateway.terminationGracePeriodSeconds) (int $gNeed)) }}
{{- end }}
{{- if and .Values.secrets.existingSecret (or .Values.secrets.appKey .Values.secrets.appSecret .Values.secrets.pushSecret .Values.secrets.apiTokens .Values.secrets.userDataKey .Values.secrets.webhookSecret .Values.secrets.codeKey) }}
{{- fail "secrets.existingSecret is set: leave the secrets.* values empty (they would be ignored); put the keys in the existing Secret" }}
{{- end }}
{{- if and .Values.secrets.existingSecret .Values.redis.url (not .Values.redis.existingSecret) }}
{{- fail "redis.url is ignored when secrets.existingSecret is set: put the URL under the key redis-url of that Secret, or name another Secret with redis.existingSecret" }}
{{- end }}
{{- if eq (int .Values.gateway.httpPort) (int .Values.gateway.adminPort) }}
{{- fail "gateway.httpPort and gateway.adminPort must differ" }}
{{- end }}
{{- end }}
