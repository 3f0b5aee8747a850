#!/usr/bin/env bash
# Create (or reuse) a private virtualenv with the pinned checkov and print its checkov path.
#
# Why a venv of its own: checkov pulls in a large dependency tree (boto3, networkx, ...) with
# pins that conflict with DevPlane's own test dependencies, so it must not share .venv.
# Why outside the work tree: like the control-plane binaries it is keyed by its pin and kept
# under $DEVPLANE_CACHE (default ~/.cache/devplane), so `git clean` and fresh CI clones reuse
# it and neither git nor ruff ever sees its files.
#
#   tests/chart/setup-checkov.sh          # prints .../venv-checkov-<version>/bin/checkov
#
# `make setup` runs this; tests/chart/test_chart_security.py calls it too, so a missing venv is
# created on demand instead of making the test skip.
set -euo pipefail

# The pin: bump it deliberately, re-run the chart tests, review any new failing check.
CHECKOV_VERSION="3.3.30"

CACHE="${DEVPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devplane}"
VENV="$CACHE/venv-checkov-$CHECKOV_VERSION"
PYTHON="${PYTHON:-python3}"

log() { echo "setup-checkov: $*" >&2; }

# The stamp is written last, so an interrupted install is never taken for a finished one.
if [[ -f "$VENV/.complete" && -x "$VENV/bin/checkov" ]]; then
  echo "$VENV/bin/checkov"
  exit 0
fi

log "creating $VENV with checkov $CHECKOV_VERSION (first time takes a minute or two)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip >&2
"$VENV/bin/pip" install --quiet "checkov==$CHECKOV_VERSION" >&2
"$VENV/bin/checkov" --version >/dev/null
touch "$VENV/.complete"
echo "$VENV/bin/checkov"
