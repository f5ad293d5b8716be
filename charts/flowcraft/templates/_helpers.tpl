{{/* Names and labels shared by every template. */}}

{{- define "flowcraft.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "flowcraft.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable across upgrades (a Deployment's selector is immutable). */}}
{{- define "flowcraft.selectorLabels" -}}
app.kubernetes.io/name: flowcraft
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flowcraft.labels" -}}
{{ include "flowcraft.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: flowcraft
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "flowcraft.chart" . }}
{{- end -}}

{{- define "flowcraft.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flowcraft.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "flowcraft.leaseName" -}}
{{- default (include "flowcraft.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{- define "flowcraft.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The namespaces a namespaced install watches (one per line). */}}
{{- define "flowcraft.watchNamespaces" -}}
{{- $namespaces := .Values.watchNamespaces | default (list .Release.Namespace) -}}
{{- range $namespaces }}
{{ . }}
{{- end -}}
{{- end -}}

{{/*
What the operator may do: mirrors deploy/operator.yaml. Flows are read and only their status
is written; Jobs are the unit of work; pods are read (their container state carries the
result; a result over 4 KiB is read from the finished pod's log) and deleted only to stop an
attempt past its timeout; output ConfigMaps are created once (and again if deleted while their
Flow runs). Node pods get no RBAC at all.
*/}}
{{- define "flowcraft.rules" -}}
- apiGroups: ["flowcraft.io"]
  resources: ["flows"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: ["flowcraft.io"]
  resources: ["blueprints"]
  verbs: ["list"]
- apiGroups: ["flowcraft.io"]
  resources: ["flows/status"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "delete"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{/* A resource map ({cpu: 2, memory: 4Gi}) as the operator's flag syntax: cpu=2,memory=4Gi. */}}
{{- define "flowcraft.resourceList" -}}
{{- $parts := list -}}
{{- range $name, $quantity := . -}}
{{- $parts = append $parts (printf "%s=%v" $name $quantity) -}}
{{- end -}}
{{- join "," $parts -}}
{{- end -}}

{{/*
The admission webhook's TLS material, as a dict {ca, crt, key} of base64 PEM: the Secret's when
it exists (kept across upgrades: `helm upgrade` does not rotate it, nor restart the operator),
else a CA and a serving certificate for the webhook Service generated here. Generated once per
render and memoized in .Values, so the Secret, the caBundle and the pod's checksum agree.
*/}}
{{- define "flowcraft.webhookTLS" -}}
{{- if not .Values.webhook._tls -}}
{{- $service := printf "%s-webhook" (include "flowcraft.fullname" .) -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (printf "%s-tls" $service) -}}
{{- $tls := dict -}}
{{- if and $secret (index ($secret.data | default dict) "ca.crt") -}}
{{- $tls = dict "ca" (index $secret.data "ca.crt") "crt" (index $secret.data "tls.crt") "key" (index $secret.data "tls.key") -}}
{{- else -}}
{{- $days := int .Values.webhook.certValidityDays -}}
{{- $ca := genCA (printf "%s-ca" $service) $days -}}
{{- $host := printf "%s.%s.svc" $service .Release.Namespace -}}
{{- $names := list $service (printf "%s.%s" $service .Release.Namespace) $host (printf "%s.cluster.local" $host) -}}
{{- $cert := genSignedCert $host nil $names $days $ca -}}
{{- $tls = dict "ca" ($ca.Cert | b64enc) "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- $_ := set .Values.webhook "_tls" $tls -}}
{{- end -}}
{{- toYaml .Values.webhook._tls -}}
{{- end -}}
