{{/*
The app.kubernetes.io/name label: the chart name unless overridden.
*/}}
{{- define "ferrum.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of every object of the release (suffixed for the Role, the approver ClusterRole and
the Service). fullnameOverride if set; else the release name when it already says "ferrum"
(`helm install ferrum` gives "ferrum", not "ferrum-ferrum-issuer"); else "<release>-ferrum".
Cut to 55 characters so that "<fullname>-metrics" is still a valid Service name (63).
*/}}
{{- define "ferrum.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" -}}
{{- else if contains "ferrum" .Release.Name -}}
{{- .Release.Name | trunc 55 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-ferrum" .Release.Name | trunc 55 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
Selector labels: stable for the life of the release (a Deployment's selector is immutable).
*/}}
{{- define "ferrum.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferrum.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Labels of every object.
*/}}
{{- define "ferrum.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ferrum.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "ferrum.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ferrum.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ferrum.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Where the Lease lives and what it is called. The Role's resourceNames must agree with the
flags, so both come from here.
*/}}
{{- define "ferrum.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace -}}
{{- end -}}

{{- define "ferrum.leaseName" -}}
{{- default (include "ferrum.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{- define "ferrum.clusterResourceNamespace" -}}
{{- default .Release.Namespace .Values.config.clusterResourceNamespace -}}
{{- end -}}
