#!/usr/bin/env bash
# Build DevPlane's three images (workspace, hub, operator) with whichever container tool works
# here: docker, podman or buildah. `make images` runs this.
#
#   hack/build-images.sh                      # build all three, tagged devplane/<name>:<appVersion>
#   REGISTRY=registry.example.internal/platform PUSH=1 hack/build-images.sh
#   IMAGES="hub operator" TAG=0.1.0-rc1 hack/build-images.sh
#
# Settings (environment):
#   ENGINE    docker | podman | buildah; default: the first one that really works
#   REGISTRY  prefix of every image name, e.g. your internal mirror; default: none
#   TAG       image tag; default: appVersion in chart/Chart.yaml, so the chart's defaults
#             (which use the same appVersion) pick these images up without overrides
#   IMAGES    which to build, space-separated; default: "workspace hub operator"
#   PUSH      1 to push each image after building it; default: 0
#   BUILD_ARGS extra arguments passed to the build command as they are (word-split)
#
# Each image is built from images/<name>/Dockerfile with the repository root as the build
# context, because the hub and operator images install DevPlane's own Python packages.
#
# "Works" means more than "is installed": a docker CLI without a reachable daemon is common
# (it is so on the project's build machines), so each tool is asked to talk to its engine
# (`docker info`, `podman info`, `buildah info`) before it is chosen.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

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
  if ! out="$("$tool" info 2>&1 >/dev/null)"; then
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
${report}Install and start one of them (e.g. start the Docker daemon, or 'apt-get install podman' / 'apt-get install buildah',
which need no daemon), or build on a machine that has one: the images need nothing from this machine but the repository."
}

build_one() {
  local engine=$1 name=$2 ref=$3 dockerfile="$ROOT/images/$2/Dockerfile"
  [[ -f "$dockerfile" ]] || die "$dockerfile is missing"
  local extra=()
  # BUILD_ARGS is documented as word-split.
  # shellcheck disable=SC2206
  [[ -n "${BUILD_ARGS:-}" ]] && extra=($BUILD_ARGS)
  log "building $ref with $engine"
  case "$engine" in
    docker | podman) "$engine" build -f "$dockerfile" -t "$ref" "${extra[@]}" "$ROOT" ;;
    buildah) buildah bud -f "$dockerfile" -t "$ref" "${extra[@]}" "$ROOT" ;;
  esac
  if [[ "${PUSH:-0}" == 1 ]]; then
    log "pushing $ref"
    "$engine" push "$ref"
  fi
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
  engine="$(pick_engine)"
  log "using $engine; tag $tag${registry:+; registry $registry}"
  for name in $images; do
    ref="${registry:+$registry/}devplane/$name:$tag"
    build_one "$engine" "$name" "$ref"
    built+=("$ref")
  done
  log "built: ${built[*]}"
  if [[ -n "$registry" ]]; then
    log "install with: --set global.imageRegistry=$registry (the chart's tags default to $tag)"
  fi
}

main "$@"
