#!/usr/bin/env bash
# Install or upgrade DevPlane with the pinned helm: `make deploy` runs this.
#
#   make deploy VALUES=my-values.yaml NAMESPACE=devplane
#   hack/deploy.sh                      # the chart's defaults into namespace "devplane"
#
# Settings (environment):
#   VALUES     a values file (or several, comma-separated); see chart/values.yaml and docs/install.md
#   NAMESPACE  the release namespace (hub, proxy, operator); default: devplane.
#              Workspaces go to "<NAMESPACE>-workspaces" unless the values say otherwise.
#   RELEASE    the Helm release name; default: devplane
#   KUBECONFIG / KUBE_CONTEXT  which cluster; default: helm's usual (current context)
#   HELM_ARGS  extra arguments for `helm upgrade --install` (word-split), e.g. "--dry-run"
#
# helm comes from hack/build-binaries.sh (built from its Go module at the version pinned in
# versions.env), so every install uses the helm the chart is tested with.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { echo "deploy: $*" >&2; }
die() { echo "deploy: ERROR: $*" >&2; exit 1; }

NAMESPACE="${NAMESPACE:-devplane}"
RELEASE="${RELEASE:-devplane}"

bin_dir="$("$ROOT/hack/build-binaries.sh" helm | tail -1)" || die "could not build the pinned helm (see above)"
HELM="$bin_dir/helm"
[[ -x "$HELM" ]] || die "$HELM is missing after hack/build-binaries.sh helm"

args=(upgrade --install "$RELEASE" "$ROOT/chart" --namespace "$NAMESPACE" --create-namespace
      --wait --timeout 10m)
if [[ -n "${VALUES:-}" ]]; then
  IFS=',' read -r -a files <<<"$VALUES"
  for f in "${files[@]}"; do
    [[ -f "$f" ]] || die "VALUES file '$f' does not exist"
    args+=(--values "$f")
  done
else
  log "no VALUES file given: installing the chart's defaults (no login, no LLM configured yet)"
fi
[[ -n "${KUBE_CONTEXT:-}" ]] && args+=(--kube-context "$KUBE_CONTEXT")
if [[ -n "${HELM_ARGS:-}" ]]; then
  # HELM_ARGS is documented as word-split.
  # shellcheck disable=SC2206
  args+=($HELM_ARGS)
fi

log "$HELM ${args[*]}"
"$HELM" "${args[@]}"
