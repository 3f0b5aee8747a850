#!/usr/bin/env bash
# Install the Debian packages listed in $1 that are not installed yet.
set -euo pipefail
list="${1:?usage: install-apt.sh FILE}"
missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done <"$list"
[[ ${#missing[@]} == 0 ]] && exit 0
echo "install-apt: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null || { echo "install-apt: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
