{{/*
Names, labels, the image reference, the rendered claimd.yaml and the start-up commands
shared by the Deployment and the migration Job.
*/}}

{{- define "claimd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "claimd.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "claimd.labels" -}}
{{ include "claimd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* repository:tag, or repository@digest; the tag defaults to the appVersion. */}}
{{- define "claimd.imageRef" -}}
{{- $img := index . 0 -}}
{{- $root := index . 1 -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{- define "claimd.image" -}}
{{- include "claimd.imageRef" (list .Values.image .) -}}
{{- end -}}

{{- define "claimd.signerImage" -}}
{{- if .Values.signer.image.repository -}}
{{- include "claimd.imageRef" (list .Values.signer.image .) -}}
{{- else -}}
{{- include "claimd.image" . -}}
{{- end -}}
{{- end -}}

{{/* Where things are mounted; the config and the commands below use these paths. */}}
{{- define "claimd.paths" -}}
config: /etc/claimd/config
public: /etc/claimd/public
keysSecret: /etc/claimd/secret/keys
databaseSecret: /etc/claimd/secret/database
adminSecret: /etc/claimd/secret/admin
run: /run/claimd
signerRun: /run/claimd-keys
socketDir: /run/claimd-signer
{{- end -}}

{{- define "claimd.adminEnabled" -}}
{{- if .Values.existingSecret.adminTokens }}true{{ end -}}
{{- end -}}

{{/*
claimd.yaml: the chart's settings, with config from values merged over them. The
users are the containers' uids (the signer answers only server.user's uid on its
socket); the key paths point into the signer's in-memory copy; database.url is appended at start
from the database Secret (claimd.runClaimd).
*/}}
{{- define "claimd.config" -}}
{{- $p := include "claimd.paths" . | fromYaml -}}
{{- $keys := $p.signerRun -}}
{{- $sec := .Values.securityContext -}}
{{- $chart := dict
  "server" (dict "listen" (printf "0.0.0.0:%d" (int .Values.ports.claim)) "user" (toString (int $sec.claimdUser)))
  "signer" (dict "socket" (printf "%s/signer.sock" $p.socketDir) "user" (toString (int $sec.signerUser)))
  "log" (dict "format" "json") -}}
{{- if .Values.keys.caKey }}
{{- $_ := set $chart "ca" (dict "key" (printf "%s/%s" $keys .Values.keys.caKey)) }}
{{- end }}
{{- $_ := set $chart "secrets" (dict "key_file" (printf "%s/%s" $keys .Values.keys.secretsKey)) }}
{{- if .Values.keys.paiKey }}
{{- $_ := set $chart "matter" (dict "pai_key" (printf "%s/%s" $keys .Values.keys.paiKey)) }}
{{- end }}
{{- if include "claimd.adminEnabled" . }}
{{- $_ := set $chart "admin" (dict "listen" (printf "0.0.0.0:%d" (int .Values.ports.admin)) "tokens_file" (printf "%s/admin-tokens" $p.run)) }}
{{- $_ := set $chart.server "metrics" "admin" }}
{{- end }}
{{- $merged := mergeOverwrite $chart (deepCopy .Values.config) -}}
# claimd.yaml rendered by the claimd chart from its values (config/claimd.example.yaml
# lists every key). database.url is appended at start from the database Secret.
{{ toYaml $merged }}
{{- end -}}

{{/*
The claimd container's start: copy the admin tokens out of the Secret mount (kubelet
makes them group-readable for fsGroup; claimd wants 0600 and its own uid), append
database.url from the Secret (plus existingSecret.databaseUrlParams: a URI gets them
as query parameters, a key=value string as more words) to the config, then exec the
program given.
*/}}
{{- define "claimd.prepare" -}}
{{- $p := include "claimd.paths" .root | fromYaml -}}
set -eu
umask 077
{{- if and .tokens (include "claimd.adminEnabled" .root) }}
cp -L {{ $p.adminSecret }}/{{ .root.Values.existingSecret.adminTokensKey }} {{ $p.run }}/admin-tokens
{{- end }}
url=$(cat {{ $p.databaseSecret }}/{{ .root.Values.existingSecret.databaseUrlKey }})
{{- with .root.Values.existingSecret.databaseUrlParams }}
{{- $kv := list }}
{{- range $k, $v := . }}{{ $kv = append $kv (printf "%s=%s" $k $v) }}{{ end }}
case $url in
postgres://* | postgresql://*) case $url in *\?*) url="$url&{{ join "&" $kv }}" ;; *) url="$url?{{ join "&" $kv }}" ;; esac ;;
*) url="$url {{ join " " $kv }}" ;;
esac
{{- end }}
url=$(printf '%s' "$url" | sed "s/'/''/g")
{ cat {{ $p.config }}/claimd.yaml; printf "database:\n  url: '%s'\n" "$url"; } >{{ $p.run }}/claimd.yaml
exec {{ .exec }}
{{- end -}}

{{/*
The signer's start: copy every key file out of the Secret mount into the signer's
own in-memory folder (0600, its uid), and each of signer.copyMounts into a folder of
the same name there (an HSM token wants a writable folder), then exec the signer.
*/}}
{{- define "claimd.prepareSigner" -}}
{{- $p := include "claimd.paths" . | fromYaml -}}
set -eu
umask 077
for f in {{ $p.keysSecret }}/*; do cp -L "$f" {{ $p.signerRun }}/; done
{{- range .Values.signer.copyMounts }}
mkdir -p {{ $p.signerRun }}/{{ base . }}
cp -RL {{ . }}/[!.]* {{ $p.signerRun }}/{{ base . }}/
{{- end }}
exec claimd --signer -c {{ $p.config }}/claimd.yaml
{{- end -}}

{{- define "claimd.containerSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .user }}
runAsGroup: {{ .group }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "claimd.podSecurity" -}}
runAsNonRoot: true
fsGroup: {{ .Values.securityContext.secretsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}
