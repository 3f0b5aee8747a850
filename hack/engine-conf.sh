#!/usr/bin/env bash
# Write the containers.conf DevPlane runs podman and buildah with, and print its path.
# hack/build-images.sh and the image tests (tests/images/) export it as CONTAINERS_CONF, so
# every build and every test container runs the same way:
#
#   export CONTAINERS_CONF="$(hack/engine-conf.sh)"; podman run ...
#
# Why a file of our own:
#   - runtime runc: crun fails on hosts that mix cgroup v1 and v2 (the project's build machines
#     do); runc works on both. `make setup-images` installs runc.
#   - ulimits no higher than this host's: rootful podman asks for nofile=1048576 and a large
#     nproc by default, and runc cannot raise a limit above the caller's hard limit
#     ("error setting rlimit type 7: operation not permitted"). nproc is capped at 32768,
#     podman build's own default, which is what worked here.
# The file depends only on this host's limits, so it is rewritten only when they change.
set -euo pipefail

CACHE="${DEVPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devplane}"
conf="$CACHE/containers.conf"
mkdir -p "$CACHE"

nofile_soft="$(ulimit -Sn)" nofile_hard="$(ulimit -Hn)"
nproc="$(ulimit -Hu)"
[[ "$nproc" == unlimited || "$nproc" -gt 32768 ]] && nproc=32768
[[ "$nofile_hard" == unlimited ]] && nofile_hard=1048576
[[ "$nofile_soft" == unlimited ]] && nofile_soft="$nofile_hard"

want="# Written by hack/engine-conf.sh (DevPlane); see the comments there.
[containers]
default_ulimits = [
  \"nofile=$nofile_soft:$nofile_hard\",
  \"nproc=$nproc:$nproc\",
]

[engine]
runtime = \"runc\"
"
if [[ ! -f "$conf" || "$(cat "$conf")" != "${want%$'\n'}" ]]; then
  printf '%s' "$want" >"$conf.tmp.$$"
  mv -f "$conf.tmp.$$" "$conf"
fi
echo "$conf"
