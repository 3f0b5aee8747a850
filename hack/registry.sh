#!/usr/bin/env bash
# A local OCI registry on 127.0.0.1: CNCF distribution, built from its Go module at the version
# versions.env pins (DISTRIBUTION_VERSION). The same path an air-gapped site takes with its
# internal registry: `make images` pushes to it, a cluster pulls from it.
#
#   hack/registry.sh up        # start (idempotent); prints the address, e.g. 127.0.0.1:5000
#   hack/registry.sh down      # stop it and delete what was pushed
#   hack/registry.sh status
#   REGISTRY=$(hack/registry.sh up)/devplane PUSH=1 make images
#
# It listens on loopback only and speaks plain http there (nothing leaves the machine), so
# clients push with --tls-verify=false (hack/build-images.sh does so for a loopback registry).
# State (config, blobs, log, pid) lives in $DEVPLANE_CACHE/registry-<port>/, outside the work tree.
#
# Settings: DEVPLANE_REGISTRY_PORT (default 5000).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DEVPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devplane}"
PORT="${DEVPLANE_REGISTRY_PORT:-5000}"
# One state directory per port, so a test registry never touches the one `make registry` runs.
STATE="$CACHE/registry-$PORT"

ADDR="127.0.0.1:$PORT"

log() { echo "registry: $*" >&2; }
die() { echo "registry: ERROR: $*" >&2; exit 1; }

running_pid() {
  local pid
  pid="$(cat "$STATE/pid" 2>/dev/null || true)"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
  return 0
}

answers() { curl -fsS -o /dev/null --max-time 2 "http://$ADDR/v2/" 2>/dev/null; }

up() {
  if [[ -n "$(running_pid)" ]] && answers; then
    echo "$ADDR"
    return
  fi
  local bin
  bin="$("$ROOT/hack/build-binaries.sh" registry | tail -1)/registry"
  [[ -x "$bin" ]] || die "no registry binary at $bin (see hack/build-binaries.sh's output above)"
  answers && die "something else already answers on $ADDR; set DEVPLANE_REGISTRY_PORT to a free port"
  mkdir -p "$STATE/data"
  cat >"$STATE/config.yml" <<EOF
# Written by hack/registry.sh
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $STATE/data
  delete:
    enabled: true
http:
  addr: $ADDR
EOF
  # Its own session, so it outlives the make that started it until `make registry-down`.
  setsid "$bin" serve "$STATE/config.yml" >"$STATE/registry.log" 2>&1 </dev/null &
  echo $! >"$STATE/pid"
  local i
  for ((i = 0; i < 100; i++)); do
    answers && { log "distribution $("$bin" --version | awk '{print $3}') on http://$ADDR (log: $STATE/registry.log)"; echo "$ADDR"; return; }
    kill -0 "$(cat "$STATE/pid")" 2>/dev/null || break
    sleep 0.1
  done
  tail -5 "$STATE/registry.log" >&2 || true
  die "the registry did not start on $ADDR (log above: $STATE/registry.log)"
}

down() {
  local pid i
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    kill "$pid"
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "stopped (pid $pid)"
  fi
  rm -rf "$STATE"
}

status() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]] && answers; then echo "running: http://$ADDR (pid $pid)"; else echo "not running"; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 up|down|status" ;;
esac
