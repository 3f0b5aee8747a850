{{/*
Shared helpers. Every name, label set, image reference and security context the templates use
comes from here, so the components cannot drift apart.
*/}}

{{/* Chart name, overridable. */}}
{{- define "devplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified release name: "<release>" when it already contains the chart name, else
"<release>-devplane". Object names append a component suffix to it, so it is cut to 40
characters to leave room ("-proxy-public" is the longest suffix) inside a 63-character label.
*/}}
{{- define "devplane.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains (include "devplane.name" .) .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "devplane.name" .) | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>": the name of every object of one component. */}}
{{- define "devplane.componentName" -}}
{{- printf "%s-%s" (include "devplane.fullname" .root) .component -}}
{{- end -}}

{{/*
The namespace the workspaces (and their Workspace resources) live in. Defaults to
"<release namespace>-workspaces": a namespace of their own, so PodSecurity `restricted` and the
default-deny NetworkPolicy apply to user pods without touching the hub's namespace.
*/}}
{{- define "devplane.workspaceNamespace" -}}
{{- default (printf "%s-workspaces" .Release.Namespace) .Values.workspaces.namespace.name -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "devplane.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "devplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: devplane
{{- end -}}

{{/*
Selector labels of one component: stable across upgrades (a Deployment's selector is
immutable), and what NetworkPolicies use to pick the component's pods.
Call with (dict "root" $ "component" "hub").
*/}}
{{- define "devplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "devplane.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component's objects. Call with (dict "root" $ "component" "hub"). */}}
{{- define "devplane.componentLabels" -}}
{{ include "devplane.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Workspace pods, as the operator labels them (docs/contracts.md). The NetworkPolicies select
them by this label, so a pod the operator did not make is not let through by accident.
*/}}
{{- define "devplane.workspacePodLabels" -}}
app.kubernetes.io/managed-by: devplane
app.kubernetes.io/name: devplane-workspace
{{- end -}}

{{/*
An image reference. Precedence for the registry: the image's own `registry`, then
`global.imageRegistry` (one prefix for an internal mirror), then none. The tag defaults to the
chart's appVersion for DevPlane's own images; a digest, when set, pins the exact image.
Call with (dict "root" $ "image" .Values.hub.image).
*/}}
{{- define "devplane.image" -}}
{{- $registry := default .root.Values.global.imageRegistry .image.registry | trimSuffix "/" -}}
{{- $ref := .image.repository -}}
{{- if $registry -}}
{{- $ref = printf "%s/%s" $registry $ref -}}
{{- end -}}
{{- $tag := default .root.Chart.AppVersion (toString (.image.tag | default "")) -}}
{{- $ref = printf "%s:%s" $ref $tag -}}
{{- if .image.digest -}}
{{- $ref = printf "%s@%s" $ref .image.digest -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{/*
Where workspace images may come from, as DEVPLANE_ALLOWED_IMAGE_REGISTRIES: the listed prefixes,
else the chart's own registry, else "" (the operator then allows the path of its default image).
*/}}
{{- define "devplane.allowedImageRegistries" -}}
{{- $ws := .Values.workspaces -}}
{{- if $ws.allowedImageRegistries -}}
{{- $prefixes := list -}}
{{- range $ws.allowedImageRegistries -}}
{{- $prefixes = append $prefixes (trimSuffix "/" .) -}}
{{- end -}}
{{- join "," $prefixes -}}
{{- else -}}
{{- default .Values.global.imageRegistry $ws.image.registry | trimSuffix "/" -}}
{{- end -}}
{{- end -}}

{{/*
Fails the render when a profile's image lies outside the allowed registries (the operator would
refuse every Workspace started from it): the same prefix rule as the operator's.
*/}}
{{- define "devplane.checkProfileImages" -}}
{{- $allowed := include "devplane.allowedImageRegistries" . -}}
{{- if not $allowed -}}
{{- $default := include "devplane.image" (dict "root" . "image" .Values.workspaces.image) -}}
{{- $allowed = regexReplaceAll "/[^/]*$" $default "" -}}
{{- end -}}
{{- range $i, $profile := .Values.hub.profiles -}}
{{- /* Every image the profile can give: its own, KubeSpawner's override, each choice's. */ -}}
{{- $images := dict -}}
{{- with $profile.image }}{{ $_ := set $images (printf "hub.profiles[%d].image" $i) . }}{{ end -}}
{{- with $profile.kubespawner_override }}{{ with .image }}{{ $_ := set $images (printf "hub.profiles[%d].kubespawner_override.image" $i) . }}{{ end }}{{ end -}}
{{- range $option, $spec := $profile.profile_options | default dict -}}
{{- range $choice, $c := $spec.choices | default dict -}}
{{- with $c.kubespawner_override }}{{ with .image }}{{ $_ := set $images (printf "hub.profiles[%d].profile_options.%s.choices.%s.kubespawner_override.image" $i $option $choice) . }}{{ end }}{{ end -}}
{{- end -}}
{{- end -}}
{{- range $where, $image := $images -}}
{{- $ok := false -}}
{{- range splitList "," $allowed -}}
{{- if hasPrefix (printf "%s/" .) $image -}}{{- $ok = true -}}{{- end -}}
{{- end -}}
{{- if not $ok -}}
{{- fail (printf "%s %q is not under the allowed registries (%s): the operator would refuse it; add its registry to workspaces.allowedImageRegistries or use an image from one of them" $where $image $allowed) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets of every chart pod (global list). */}}
{{- define "devplane.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Pod-level security context that passes the PodSecurity `restricted` profile: non-root with a
fixed uid/gid, fsGroup so mounted volumes are writable, seccomp RuntimeDefault.
Call with the component's values (hub, proxy, operator, culler).
*/}}
{{- define "devplane.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Container-level security context (restricted profile): nothing to escalate to, no
capabilities, an immutable root filesystem (writable paths are explicit emptyDirs/PVCs).
*/}}
{{- define "devplane.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Secret holding the chart-generated tokens (proxy API token, cookie secret, culler token). */}}
{{- define "devplane.hubSecretName" -}}
{{- include "devplane.componentName" (dict "root" . "component" "hub") -}}
{{- end -}}

{{/* In-cluster DNS names of the services the parts use to find each other. */}}
{{- define "devplane.hubServiceName" -}}
{{- include "devplane.componentName" (dict "root" . "component" "hub") -}}
{{- end -}}
{{- define "devplane.hubConnectURL" -}}
{{- printf "http://%s.%s.svc:%d" (include "devplane.hubServiceName" .) .Release.Namespace (int .Values.hub.service.port) -}}
{{- end -}}
{{- define "devplane.proxyAPIServiceName" -}}
{{- include "devplane.componentName" (dict "root" . "component" "proxy-api") -}}
{{- end -}}
{{- define "devplane.proxyPublicServiceName" -}}
{{- include "devplane.componentName" (dict "root" . "component" "proxy-public") -}}
{{- end -}}

{{/* JupyterHub's base URL, always with a leading and a trailing slash. */}}
{{- define "devplane.baseUrl" -}}
{{- $u := trimAll "/" .Values.hub.baseUrl -}}
{{- if $u -}}{{ printf "/%s/" $u }}{{- else -}}/{{- end -}}
{{- end -}}

{{/*
The public URL users open: https://<ingress host> when the Ingress is on, else the configured
hub.publicURL (e.g. a LoadBalancer's name), else empty (NOTES.txt then explains port-forward).
*/}}
{{- define "devplane.publicURL" -}}
{{- if .Values.hub.publicURL -}}
{{- .Values.hub.publicURL | trimSuffix "/" -}}
{{- else if and .Values.ingress.enabled .Values.ingress.host -}}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) .Values.ingress.host -}}
{{- end -}}
{{- end -}}

{{/*
The hub's subdomain_host when hub.perUserSubdomains is on: the public URL's scheme and host
(users get <user>.<host>); "" when off. Fails, naming the values, on what cannot be safe:
admin access without per-user subdomains (a user's page would run on the hub's origin in an
admin's browser), or subdomains without an https public URL (__Host- cookies need https).
*/}}
{{- define "devplane.subdomainHost" -}}
{{- $public := include "devplane.publicURL" . -}}
{{- if and .Values.hub.adminAccess (not .Values.hub.perUserSubdomains) -}}
{{- fail "hub.adminAccess needs hub.perUserSubdomains=true: an admin who opens a user's terminal would otherwise run that user's page on the hub's own origin (docs/install.md, \"Admin access\")" -}}
{{- end -}}
{{- if .Values.hub.perUserSubdomains -}}
{{- if not (hasPrefix "https://" $public) -}}
{{- fail "hub.perUserSubdomains needs an https public URL: ingress.host with ingress.tls.enabled, or hub.publicURL=https://..." -}}
{{- end -}}
{{- $u := urlParse $public -}}
{{- printf "%s://%s" $u.scheme $u.host -}}
{{- end -}}
{{- end -}}

{{/* The CA bundle ConfigMap (chart-made from caBundle.pem, or the admin's), or "" when none. */}}
{{- define "devplane.caBundleConfigMap" -}}
{{- if .Values.caBundle.existingConfigMap -}}
{{- .Values.caBundle.existingConfigMap -}}
{{- else if .Values.caBundle.pem -}}
{{- include "devplane.componentName" (dict "root" . "component" "ca-bundle") -}}
{{- end -}}
{{- end -}}

{{/* Where chart pods mount the CA bundle, and the variables that make TLS clients use it. */}}
{{- define "devplane.caBundlePath" -}}/etc/devplane/ca/ca.crt{{- end -}}
{{- define "devplane.caBundleEnv" -}}
{{- if include "devplane.caBundleConfigMap" . }}
- name: SSL_CERT_FILE
  value: {{ include "devplane.caBundlePath" . }}
- name: REQUESTS_CA_BUNDLE
  value: {{ include "devplane.caBundlePath" . }}
- name: NODE_EXTRA_CA_CERTS
  value: {{ include "devplane.caBundlePath" . }}
{{- end }}
{{- end -}}
{{- define "devplane.caBundleVolumeMount" -}}
{{- if include "devplane.caBundleConfigMap" . }}
- name: ca-bundle
  mountPath: /etc/devplane/ca
  readOnly: true
{{- end }}
{{- end -}}
{{- define "devplane.caBundleVolume" -}}
{{- if include "devplane.caBundleConfigMap" . }}
- name: ca-bundle
  configMap:
    name: {{ include "devplane.caBundleConfigMap" . }}
    items:
      - key: {{ .Values.caBundle.key }}
        path: ca.crt
{{- end }}
{{- end -}}

{{/*
Egress to cluster DNS, for every NetworkPolicy that restricts egress: without it nothing can
resolve a Service name.
*/}}
{{- define "devplane.dnsEgressRule" -}}
- to:
    - namespaceSelector:
        {{- toYaml .Values.networkPolicy.dns.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml .Values.networkPolicy.dns.podSelector | nindent 8 }}
  ports:
    {{- range .Values.networkPolicy.dns.ports }}
    - protocol: UDP
      port: {{ . }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end -}}

{{/*
Egress to the Kubernetes API server (hub and operator only): its endpoint addresses and port,
never any address. networkPolicy.kubeAPI.cidrs when set; else the `kubernetes` EndpointSlice in
`default`, looked up at install; a render that can look nothing up (helm template) fails.
*/}}
{{- define "devplane.kubeAPIEgressRule" -}}
{{- $api := .Values.networkPolicy.kubeAPI -}}
{{- $cidrs := $api.cidrs | default list -}}
{{- $ports := $api.ports -}}
{{- if not $cidrs -}}
{{- $slice := lookup "discovery.k8s.io/v1" "EndpointSlice" "default" "kubernetes" -}}
{{- range ($slice.endpoints | default list) -}}
{{- range .addresses -}}
{{- $cidrs = append $cidrs (printf "%s/%s" . (ternary "128" "32" (contains ":" .))) -}}
{{- end -}}
{{- end -}}
{{- $found := list -}}
{{- range ($slice.ports | default list) -}}
{{- $found = append $found .port -}}
{{- end -}}
{{- if $found -}}
{{- $ports = $found -}}
{{- end -}}
{{- end -}}
{{- if not $cidrs -}}
{{- fail "networkPolicy.kubeAPI.cidrs is empty and the API server's address could not be looked up (helm template and other renders without a cluster cannot): set networkPolicy.kubeAPI.cidrs (and ports) to the API server's endpoints, from `kubectl get endpointslice -n default kubernetes`, or turn networkPolicy.enabled off" -}}
{{- end }}
- to:
    {{- range $cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range $ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end -}}

{{/*
Egress from the hub to the OIDC provider (discovery, token, userinfo), when a login is
configured: networkPolicy.oidc.cidrs when set; else the addresses hub.oidc's URLs name, on their
ports. A provider known only by name fails the render (unless hub.extraEgress, the older way,
says where it is): a NetworkPolicy cannot match a host name.
*/}}
{{- define "devplane.oidcEgressRule" -}}
{{- $oidc := .Values.hub.oidc -}}
{{- $np := .Values.networkPolicy.oidc -}}
{{- if $oidc.clientId -}}
{{- $cidrs := $np.cidrs | default list -}}
{{- $ports := $np.ports -}}
{{- $names := list -}}
{{- if not $cidrs -}}
{{- $ports = list -}}
{{- range (list $oidc.issuer $oidc.tokenURL $oidc.userdataURL | compact) -}}
{{- $u := urlParse . -}}
{{- $hostport := splitList ":" $u.host -}}
{{- $host := first $hostport -}}
{{- if regexMatch "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$" $host -}}
{{- $cidrs = append $cidrs (printf "%s/32" $host) -}}
{{- $ports = append $ports (ternary (last $hostport) (ternary "443" "80" (eq $u.scheme "https")) (gt (len $hostport) 1) | int) -}}
{{- else -}}
{{- $names = append $names $host -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $names (not .Values.hub.extraEgress) -}}
{{- fail (printf "the hub must reach the OIDC provider %s, and a NetworkPolicy cannot match a host name: set networkPolicy.oidc.cidrs (and ports) to its addresses" (join ", " ($names | uniq))) -}}
{{- end -}}
{{- if $cidrs }}
- to:
    {{- range ($cidrs | uniq) }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range ($ports | uniq) }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}
{{- end -}}
{{- end -}}

{{/*
The egress rule of one LLM provider, for the workspace egress policy: one port (the URL's,
80/443 when it names none, or networkPolicy.ports), never every port. Derived like the
operator's per-workspace policy (operator/devplane_operator/netpol.py):
  - `networkPolicy.to` set: those peers;
  - an IP address in baseURL: that address (/32);
  - an in-cluster Service name (<svc>.<namespace>.svc[...] or <svc>.<namespace>): that
    namespace, narrowed to `networkPolicy.podSelector`'s pods when given;
  - a bare <svc>, or a Service in the workspace namespace, fails: that namespace holds other
    users' workspaces, which no workspace may reach;
  - any other host name cannot be a NetworkPolicy peer: rendering fails, naming the field.
Call with (dict "root" $ "provider" . "index" $i).
*/}}
{{- define "devplane.llmEgressRule" -}}
{{- $p := .provider -}}
{{- $np := $p.networkPolicy | default dict -}}
{{- $u := urlParse $p.baseURL -}}
{{- $hostport := splitList ":" $u.host -}}
{{- $host := first $hostport -}}
{{- $port := ternary "443" "80" (eq $u.scheme "https") -}}
{{- if gt (len $hostport) 1 -}}
{{- $port = last $hostport -}}
{{- end -}}
{{- $labels := splitList "." $host -}}
{{- $wsNamespace := include "devplane.workspaceNamespace" .root -}}
{{- $serviceNamespace := "" -}}
{{- if or (eq (len $labels) 2) (and (ge (len $labels) 3) (eq (index $labels 2) "svc")) -}}
{{- $serviceNamespace = index $labels 1 -}}
{{- end }}
{{- if $np.to }}
- to:
    {{- toYaml $np.to | nindent 4 }}
{{- else if regexMatch "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$" $host }}
- to:
    - ipBlock:
        cidr: {{ printf "%s/32" $host }}
{{- else if eq (len $labels) 1 }}
{{- fail (printf "llm.providers[%d] (%s): %q is a bare host name, and a bare host name resolves in the workspace namespace, which holds other users' workspaces: name the LLM's Service in its own namespace, <service>.<namespace>.svc" .index $p.name $host) }}
{{- else if eq $serviceNamespace $wsNamespace }}
{{- fail (printf "llm.providers[%d] (%s): the namespace of %q is the workspace namespace, which holds other users' workspaces: run the LLM in a namespace of its own" .index $p.name $host) }}
{{- else if $serviceNamespace }}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ $serviceNamespace }}
      {{- with $np.podSelector }}
      podSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- else }}
{{- fail (printf "llm.providers[%d] (%s): cannot derive a NetworkPolicy peer from the host %q of its baseURL; set llm.providers[%d].networkPolicy.to (e.g. an ipBlock with the endpoint's address)" .index $p.name $host .index) }}
{{- end }}
  ports:
    {{- if $np.ports }}
    {{- toYaml $np.ports | nindent 4 }}
    {{- else }}
    - protocol: TCP
      port: {{ $port | int }}
    {{- end }}
{{- end -}}

{{/*
llm.providers as the spawner reads them (the Workspace's spec.ai.providers shape): without
`networkPolicy`, which only the operator reads (its DEVPLANE_LLM_PROVIDERS get the values as
they are).
*/}}
{{- define "devplane.llmProvidersJson" -}}
{{- $out := list -}}
{{- range .Values.llm.providers -}}
{{- $out = append $out (omit . "networkPolicy") -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* "k: v" YAML labels (a string, e.g. from devplane.selectorLabels) as "k=v,k2=v2". */}}
{{- define "devplane.labelSelectorEnv" -}}
{{- $labels := fromYaml . -}}
{{- $pairs := list -}}
{{- range $k := keys $labels | sortAlpha -}}
{{- $pairs = append $pairs (printf "%s=%s" $k (get $labels $k)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/*
workspaces.egressAllowlist in the operator's DEVPLANE_EGRESS_ALLOWLIST form:
"CIDR[:port[/PROTOCOL]]" entries, comma-separated, one per port.
*/}}
{{- define "devplane.egressAllowlistEnv" -}}
{{- $entries := list -}}
{{- range .Values.workspaces.egressAllowlist -}}
{{- $rule := . -}}
{{- if $rule.ports -}}
{{- range $rule.ports -}}
{{- $entries = append $entries (printf "%s:%d/%s" $rule.cidr (int .) ($rule.protocol | default "TCP")) -}}
{{- end -}}
{{- else -}}
{{- $entries = append $entries $rule.cidr -}}
{{- end -}}
{{- end -}}
{{- join "," $entries -}}
{{- end -}}

{{/*
NetworkPolicy peers: the pods of one DevPlane component in a namespace, and the workspace pods.
Call devplane.peer with (dict "root" $ "namespace" "ns" "component" "hub").
*/}}
{{- define "devplane.peer" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .namespace }}
  podSelector:
    matchLabels:
      {{- include "devplane.selectorLabels" (dict "root" .root "component" .component) | nindent 6 }}
{{- end -}}
{{- define "devplane.workspacePeer" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ include "devplane.workspaceNamespace" . }}
  podSelector:
    matchLabels:
      {{- include "devplane.workspacePodLabels" . | nindent 6 }}
{{- end -}}

{{/* Where the OIDC provider sends the browser back: explicit, else derived from the public URL. */}}
{{- define "devplane.oidcCallbackURL" -}}
{{- $public := include "devplane.publicURL" . -}}
{{- if .Values.hub.oidc.callbackURL -}}
{{- .Values.hub.oidc.callbackURL -}}
{{- else if $public -}}
{{- printf "%s%shub/oauth_callback" $public (include "devplane.baseUrl" .) -}}
{{- end -}}
{{- end -}}
