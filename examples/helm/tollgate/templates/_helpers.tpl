{{/* The release's name for its objects. */}}
{{- define "tollgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tollgate.labels" -}}
app.kubernetes.io/name: tollgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tollgate.selector" -}}
app.kubernetes.io/name: tollgate
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tollgate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "tollgate.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "tollgate.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{/* Where Envoy reaches the enforcer: its own pod (sidecar) or the pool's Service. */}}
{{- define "tollgate.authzAddress" -}}
{{- if eq .Values.gateway.enforcer "sidecar" -}}
127.0.0.1:9191
{{- else -}}
{{ include "tollgate.fullname" . }}-enforcer:9191
{{- end -}}
{{- end -}}

{{/* A restricted container: never root, nothing written outside its volumes. */}}
{{- define "tollgate.securityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The volumes every Tollgate container mounts. */}}
{{- define "tollgate.volumeMounts" -}}
- name: config
  mountPath: /etc/tollgate
  readOnly: true
- name: data
  mountPath: /var/lib/tollgate
- name: cache
  mountPath: /var/cache/tollgate
{{- if .Values.etcd.tls.secretName }}
- name: etcd-tls
  mountPath: /etc/tollgate-etcd
  readOnly: true
{{- end }}
{{- if .Values.etcd.auth.passwordSecret }}
- name: etcd-password
  mountPath: /etc/tollgate-etcd-password
  readOnly: true
{{- end }}
{{- if .Values.tls.secretName }}
- name: tls
  mountPath: /etc/tollgate-tls
  readOnly: true
{{- end }}
{{- range .Values.extraSecrets }}
- name: secret-{{ .name }}
  mountPath: {{ .mountPath }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "tollgate.volumes" -}}
- name: config
  configMap:
    name: {{ include "tollgate.fullname" . }}
- name: data
  emptyDir: {}
- name: cache
  emptyDir: {}
{{- if .Values.etcd.tls.secretName }}
- name: etcd-tls
  secret:
    secretName: {{ .Values.etcd.tls.secretName }}
{{- end }}
{{- if .Values.etcd.auth.passwordSecret }}
- name: etcd-password
  secret:
    secretName: {{ .Values.etcd.auth.passwordSecret }}
{{- end }}
{{- if .Values.tls.secretName }}
- name: tls
  secret:
    secretName: {{ .Values.tls.secretName }}
{{- end }}
{{- range .Values.extraSecrets }}
- name: secret-{{ .name }}
  secret:
    secretName: {{ .name }}
{{- end }}
{{- end -}}

{{- define "tollgate.probes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: admin}
  periodSeconds: 10
readinessProbe:
  httpGet: {path: /readyz, port: admin}
  periodSeconds: 5
{{- end -}}
