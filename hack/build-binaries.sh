#!/usr/bin/env bash
# Build the local control plane's binaries from Go modules, pinned in versions.env.
#
#   kube-apiserver, kube-controller-manager, kube-scheduler,
#   kubectl, kubelet, kube-proxy                             <- k8s.io/kubernetes
#   etcd                                                     <- go.etcd.io/etcd/server/v3
#   kwok                                                     <- sigs.k8s.io/kwok
#   helm                                                     <- helm.sh/helm/v3
#   registry (only when asked: `build-binaries.sh registry`)  <- github.com/distribution/distribution/v3
#   kube-apiserver at COMPAT_KUBERNETES_VERSION (only when asked: `build-binaries.sh compat`),
#     the oldest version the chart claims, for the compatibility tests <- k8s.io/kubernetes
#   the real node's extras (only when asked: `build-binaries.sh node`):
#     kube-router                                            <- github.com/cloudnativelabs/kube-router/v2
#     coredns                                                <- github.com/coredns/coredns
#     pause (the pod sandbox's process)                      <- hack/devcluster/pause/main.go
#
# Binaries land in $DEVPLANE_CACHE/bin/<key>/ (default ~/.cache/devplane), where <key> is
# derived from the pins, so they live outside the work tree, survive `git clean`, and are
# rebuilt only when a pin changes. Prints the bin directory on the last line of stdout.
# The image registry has a key of its own (bin/registry-<version>_<os>-<arch>/), so moving its
# pin does not rebuild the control plane; asked for alone, its directory is the one printed.
# The real node's extras likewise (bin/node-<pins>_<os>-<arch>/, printed when `node` is asked
# for alone): kubelet and kube-proxy come from the Kubernetes build above, so a cluster without
# the real node never builds kube-router or CoreDNS.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../versions.env
source "$ROOT/versions.env"

log() { echo "build-binaries: $*" >&2; }
die() { echo "build-binaries: ERROR: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "Go is not installed or not on PATH.
  The local control plane is built from Go modules and needs Go >= 1.24.
  Install it (e.g. 'apt-get install golang-1.24' or your distribution's Go package) and re-run."

CACHE="${DEVPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devplane}"
KEY="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}_$(go env GOOS)-$(go env GOARCH)"
BIN="$CACHE/bin/$KEY"
SRC="$CACHE/src"
mkdir -p "$BIN" "$SRC"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false -trimpath"
export CGO_ENABLED=0

have() { [[ -x "$BIN/$1" ]]; }


# A build in the background, said every BUILD_PROGRESS_EVERY (30) s while it runs: go build
# prints nothing until it is done, and a cold Kubernetes build takes many minutes. Returns the
# build's exit status.
watched() { # what, command...
  local what=$1 start=$SECONDS pid status=0 every=${BUILD_PROGRESS_EVERY:-30} next
  shift
  next=$((start + every))
  "$@" &
  pid=$!
  # A background job ignores Ctrl-C in a script: pass it on, so an interrupted make stops the
  # build too.
  trap 'kill "$pid" 2>/dev/null; exit 130' INT TERM
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)) && kill -0 "$pid" 2>/dev/null; then
      local elapsed=$((SECONDS - start))
      log "$what: still building, $((elapsed / 60)) min $((elapsed % 60)) s so far"
      next=$((next + every))
    fi
  done
  trap - INT TERM
  wait "$pid" || status=$?
  ((status == 0)) && log "$what: built in $((SECONDS - start)) s (cached from now on)"
  return "$status"
}
in_dir() { local dir=$1; shift; (cd "$dir" && "$@"); }
# go build resolving the module graph as it goes (the go.mod files here are written, not tidy).
go_build() { GOFLAGS="$GOFLAGS -mod=mod" go build "$@"; }
go_tidy_build() { GOFLAGS="$GOFLAGS -mod=mod" go mod tidy && go build "$@"; }

# Kubernetes binaries at one version: k8s_build <version> <staging version> <out dir> <cmd>...
k8s_build() {
  local version=$1 staging=$2 out=$3
  shift 3
  local dir="$SRC/kubernetes-$version"
  rm -rf "$dir" && mkdir -p "$dir" "$out"
  # k8s.io/kubernetes replaces every k8s.io/* staging module with ./staging/src/...,
  # which a consumer cannot use. Generate the matching v0.X.Y replace list from the
  # downloaded go.mod instead of typing it, so it stays right when the pin moves.
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$version (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
  local goversion
  goversion="$(sed -n 's/^go \(.*\)/\1/p' "$gomod" | head -1)"
  {
    echo "module devplane.local/kubebuild"
    echo
    echo "go $goversion"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/src/.*#\t\1 => \1 '"$staging"'#p' "$gomod"
    echo ")"
  } >"$dir/go.mod"
  local n; n="$(grep -c ' => ' "$dir/go.mod")"
  [[ "$n" -gt 20 ]] || die "expected the k8s.io staging replace list in $gomod, found $n entries"
  local major minor
  major="${version#v}"; major="${major%%.*}"
  minor="${version#v*.}"; minor="${minor%%.*}"
  local ld="-s -w" pkg cmds=()
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for pkg in "$@"; do cmds+=("k8s.io/kubernetes/cmd/$pkg"); done
  watched "kubernetes $version ($*)" in_dir "$dir" go_build -ldflags "$ld" -o "$out/" "${cmds[@]}" \
    || die "building Kubernetes $version failed (see above). Needs Go >= $goversion and ~6 GiB of memory."
}

build_kubernetes() {
  # kubelet and kube-proxy (the real node, docs/devcluster.md) share the control plane's pin,
  # build and cache key: they must speak the same Kubernetes version.
  local want=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
  local missing=0 b
  for b in "${want[@]}"; do have "$b" || missing=1; done
  [[ $missing == 0 ]] && { log "kubernetes $KUBERNETES_VERSION: cached"; return; }
  log "kubernetes $KUBERNETES_VERSION: building ${want[*]} (first build takes a while)"
  k8s_build "$KUBERNETES_VERSION" "$KUBERNETES_STAGING_VERSION" "$BIN" "${want[@]}"
}

# The oldest API server the chart claims (Chart.yaml kubeVersion), for the compatibility
# tests (tests/operator/test_op_compat.py); a cache key of its own.
COMPAT_BIN="$CACHE/bin/k8s-compat-${COMPAT_KUBERNETES_VERSION}_$(go env GOOS)-$(go env GOARCH)"

build_compat() {
  [[ -x "$COMPAT_BIN/kube-apiserver" ]] && { log "kube-apiserver $COMPAT_KUBERNETES_VERSION (compatibility): cached"; return; }
  log "kube-apiserver $COMPAT_KUBERNETES_VERSION (the oldest supported): building"
  k8s_build "$COMPAT_KUBERNETES_VERSION" "$COMPAT_KUBERNETES_STAGING_VERSION" "$COMPAT_BIN" kube-apiserver
}

build_etcd() {
  have etcd && { log "etcd $ETCD_VERSION: cached"; return; }
  log "etcd $ETCD_VERSION: building"
  local dir="$SRC/etcd-$ETCD_VERSION"
  rm -rf "$dir" && mkdir -p "$dir"
  # The etcd server's main() lives in the root module; the server module exports the same
  # entry point as etcdmain.Main, so a three-line wrapper builds the real server.
  cat >"$dir/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  printf 'module devplane.local/etcdbuild\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
  watched "etcd $ETCD_VERSION" in_dir "$dir" go_tidy_build -ldflags "-s -w" -o "$BIN/etcd" . \
    || die "building etcd $ETCD_VERSION failed (see above)."
}

build_kwok() {
  have kwok && { log "kwok $KWOK_VERSION: cached"; return; }
  log "kwok $KWOK_VERSION: building"
  local dir="$SRC/kwok-$KWOK_VERSION"
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'module devplane.local/kwokbuild\n\ngo 1.24\n\nrequire sigs.k8s.io/kwok %s\n' "$KWOK_VERSION" >"$dir/go.mod"
  watched "kwok $KWOK_VERSION" in_dir "$dir" go_build \
      -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
      -o "$BIN/" sigs.k8s.io/kwok/cmd/kwok \
    || die "building kwok $KWOK_VERSION failed (see above)."
}

build_helm() {
  have helm && { log "helm $HELM_VERSION: cached"; return; }
  log "helm $HELM_VERSION: building"
  local dir="$SRC/helm-$HELM_VERSION"
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'module devplane.local/helmbuild\n\ngo 1.24\n\nrequire helm.sh/helm/v3 %s\n' "$HELM_VERSION" >"$dir/go.mod"
  # Like helm's own release build, tell it which Kubernetes its client libraries speak, so
  # offline `helm template`/`helm lint` do not assume v1.20 (derived from helm's go.mod).
  local clientgo kmajor kminor
  clientgo="$(cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go list -m -f '{{.Version}}' k8s.io/client-go)" \
    || die "could not resolve helm $HELM_VERSION's dependencies (see above)."
  kmajor=1
  kminor="$(echo "$clientgo" | cut -d. -f2)"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" pkg
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ld+=" -X $pkg.k8sVersionMajor=$kmajor -X $pkg.k8sVersionMinor=$kminor"
  done
  watched "helm $HELM_VERSION" in_dir "$dir" go_build -ldflags "$ld" -o "$BIN/helm" helm.sh/helm/v3/cmd/helm \
    || die "building helm $HELM_VERSION failed (see above)."
}

REGISTRY_BIN="$CACHE/bin/registry-${DISTRIBUTION_VERSION}_$(go env GOOS)-$(go env GOARCH)"

build_registry() {
  [[ -x "$REGISTRY_BIN/registry" ]] && { log "registry $DISTRIBUTION_VERSION: cached"; return; }
  log "registry (distribution) $DISTRIBUTION_VERSION: building"
  local dir="$SRC/distribution-$DISTRIBUTION_VERSION"
  rm -rf "$dir" && mkdir -p "$dir" "$REGISTRY_BIN"
  printf 'module devplane.local/registrybuild\n\ngo 1.24\n\nrequire github.com/distribution/distribution/v3 %s\n' \
    "$DISTRIBUTION_VERSION" >"$dir/go.mod"
  # The version is stamped the way distribution's own Makefile does, so `registry --version`
  # names the pin.
  watched "registry $DISTRIBUTION_VERSION" in_dir "$dir" go_build \
      -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$DISTRIBUTION_VERSION" \
      -o "$REGISTRY_BIN/registry" github.com/distribution/distribution/v3/cmd/registry \
    || die "building the registry (distribution $DISTRIBUTION_VERSION) failed (see above)."
}

# The real node's extras. kube-router runs only its NetworkPolicy controller in the local test
# cluster; it is never shipped (docs/devcluster.md says why that version is acceptable there).
PAUSE_SRC="$ROOT/hack/devcluster/pause/main.go"
NODE_BIN="$CACHE/bin/node-kube-router-${KUBE_ROUTER_VERSION}_coredns-${COREDNS_VERSION}_pause-$(sha256sum "$PAUSE_SRC" | cut -c1-12)_$(go env GOOS)-$(go env GOARCH)"

# A fresh source directory for one of the node's builds; prints its path.
node_src() { local dir="$SRC/$1"; rm -rf "$dir" && mkdir -p "$dir" "$NODE_BIN" && echo "$dir"; }

build_kube_router() {
  [[ -x "$NODE_BIN/kube-router" ]] && { log "kube-router $KUBE_ROUTER_VERSION: cached"; return; }
  log "kube-router $KUBE_ROUTER_VERSION: building"
  local dir pkg=github.com/cloudnativelabs/kube-router/v2
  dir="$(node_src "kube-router-$KUBE_ROUTER_VERSION")"
  printf 'module devplane.local/kuberouterbuild\n\ngo 1.24\n\nrequire %s %s\n' "$pkg" "$KUBE_ROUTER_VERSION" >"$dir/go.mod"
  watched "kube-router $KUBE_ROUTER_VERSION" in_dir "$dir" go_build \
      -ldflags "-s -w -X $pkg/pkg/version.Version=$KUBE_ROUTER_VERSION -X $pkg/pkg/version.BuildDate=1970-01-01T00:00:00Z" \
      -o "$NODE_BIN/kube-router" "$pkg/cmd/kube-router" \
    || die "building kube-router $KUBE_ROUTER_VERSION failed (see above)."
}

build_coredns() {
  [[ -x "$NODE_BIN/coredns" ]] && { log "coredns $COREDNS_VERSION: cached"; return; }
  log "coredns $COREDNS_VERSION: building"
  local dir
  dir="$(node_src "coredns-$COREDNS_VERSION")"
  # CoreDNS's own main links every plugin, which pulls in every cloud provider's SDK. The
  # cluster needs a handful, so this main registers only those (CoreDNS's documented way to
  # choose plugins at compile time); a Corefile naming another plugin is refused at start.
  cat >"$dir/main.go" <<'GO'
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() { coremain.Run() }
GO
  printf 'module devplane.local/corednsbuild\n\ngo 1.26\n\nrequire github.com/coredns/coredns %s\n' "$COREDNS_VERSION" >"$dir/go.mod"
  watched "coredns $COREDNS_VERSION" in_dir "$dir" go_tidy_build \
      -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" -o "$NODE_BIN/coredns" . \
    || die "building coredns $COREDNS_VERSION failed (see above)."
}

build_pause() {
  [[ -x "$NODE_BIN/pause" ]] && { log "pause: cached"; return; }
  log "pause: building"
  local dir
  dir="$(node_src pause)"
  cp "$PAUSE_SRC" "$dir/main.go"
  printf 'module devplane.local/pause\n\ngo 1.24\n' >"$dir/go.mod"
  watched pause in_dir "$dir" go build -ldflags "-s -w" -o "$NODE_BIN/pause" . || die "building pause failed (see above)."
}

build_node() { build_kube_router; build_coredns; build_pause; }

targets=("$@")
[[ ${#targets[@]} == 0 ]] && targets=(etcd kwok kubernetes helm)
# Several test sessions may call this at once; each build step deletes and recreates its
# source directory, so builds are serialised (the wait is free once everything is cached).
# The registry has its own sources and lock, so `make images` never waits on a Kubernetes build.
lock="$CACHE/build.lock"
[[ "${targets[*]}" == registry ]] && lock="$CACHE/build-registry.lock"
exec 9>"$lock"
flock 9
for t in "${targets[@]}"; do "build_$t"; done
case "${targets[*]}" in
  registry) echo "$REGISTRY_BIN" ;;
  node) echo "$NODE_BIN" ;;
  compat) echo "$COMPAT_BIN" ;;
  *) echo "$BIN" ;;
esac
