#!/usr/bin/env bash
# Bootstrap the base images DevPlane's Dockerfiles build FROM, with mmdebstrap from a Debian
# package mirror, for machines and sites where no container registry serves base images.
#
#   hack/build-bases.sh                  # python, hub and workspace bases (as needed)
#   BASES="python" hack/build-bases.sh
#
# Each base is Debian bookworm (minbase) plus the packages listed in images/bases/<name>.packages,
# imported into the engine as devplane/base-<name>:bookworm, the default FROM of the Dockerfiles.
#
# Pinning: images/bases/<name>.lock records the exact version of every package in the base
# (committed, reviewed like constraints.txt). Debian mirrors keep only the latest version of a
# package, so when the mirror has moved on (a point release, a security update) a fresh
# bootstrap resolves the same packages at newer versions: that is built, with the difference
# shown as a warning and the resolved list's hash on the image. A different set of packages
# fails, and so does any difference with DEVPLANE_BASE_STRICT=1 (release builds). Accept the
# mirror's versions with DEVPLANE_BASE_RELOCK=1, which rewrites the lock for review.
#
# Caching: a base is rebuilt only when one of its inputs changes: this script, its package list,
# the apt sources it is bootstrapped from, the suite, the architecture, or its lock. The inputs'
# hash is a label on the image, so the check is one `inspect`.
#
# Settings (environment):
#   ENGINE          podman | docker (the one hack/build-images.sh picked); default: podman.
#                   buildah has no `import`: with buildah alone, build the bases where podman is.
#   BASES           which bases; default: "python hub workspace"
#   DEBIAN_SOURCES  apt sources file (one-line or deb822) to bootstrap from; default: this
#                   host's Debian sources (/etc/apt/sources.list.d/debian.sources or
#                   /etc/apt/sources.list), so the host's mirror configuration is used as it is.
#                   The file is also the bases' /etc/apt/sources.list.
#   ARCH            Debian architecture; default: this host's (only amd64 is built and tested)
#   CA_BUNDLE       CA bundle for an https mirror behind a TLS-inspecting proxy (see below)
#   DEVPLANE_BASE_STRICT=1  fail when the mirror's versions differ from the lock at all
#   DEVPLANE_BASE_RELOCK=1  write the mirror's versions into the lock
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE=bookworm

log() { echo "build-bases: $*" >&2; }
die() { echo "build-bases: ERROR: $*" >&2; exit 1; }

ENGINE="${ENGINE:-podman}"
case "$ENGINE" in podman | docker) ;; *) die "ENGINE=$ENGINE: bases are imported with podman or docker (buildah has no import)" ;; esac
command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap is not installed; it bootstraps the base images
  from the Debian mirror. Install it with 'make setup-images' (or 'apt-get install mmdebstrap'), or
  build FROM bases your registry serves (see docs/images.md, \"Base images\")."
[[ $(id -u) == 0 ]] || die "mmdebstrap runs here in root mode, so this needs root (or build the bases on a
  machine where you are root and push them to your registry; see docs/images.md)."

ARCH="${ARCH:-$(dpkg --print-architecture)}"
if [[ -z "${DEBIAN_SOURCES:-}" ]]; then
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [[ -s "$f" ]] && { DEBIAN_SOURCES=$f; break; }
  done
fi
[[ -n "${DEBIAN_SOURCES:-}" && -s "$DEBIAN_SOURCES" ]] || die "no apt sources to bootstrap from: set
  DEBIAN_SOURCES to a sources file naming your Debian mirror's $SUITE suites."
grep -q "$SUITE" "$DEBIAN_SOURCES" || die "$DEBIAN_SOURCES names no '$SUITE' suite; set DEBIAN_SOURCES
  to a sources file for Debian $SUITE (its -updates and -security suites too, for security fixes)."

CACHE="${DEVPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devplane}"
WORK="$CACHE/bases"
mkdir -p "$WORK"
# Two builds at once would bootstrap the same base twice; the second waits, then finds it built.
exec 8>"$WORK/.lock"
flock 8

sha() { sha256sum | cut -d' ' -f1; }

# The packages of a list file, comments and blank lines dropped.
packages_of() { sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$1"; }

# Hash of everything a base is made from; the image carries it as a label.
input_key() {
  local name=$1 lock="$ROOT/images/bases/$1.lock"
  {
    echo "suite=$SUITE arch=$ARCH"
    sha256sum "${BASH_SOURCE[0]}" "$ROOT/images/bases/$name.packages" | cut -d' ' -f1
    echo "sources:"; cat "$DEBIAN_SOURCES"
    echo "lock:"; if [[ -f "$lock" ]]; then cat "$lock"; fi
  } | sha
}

image_label() {
  "$ENGINE" image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# Whether two "package=version" lists name the same packages (whatever their versions).
same_packages() {
  diff -q <(cut -d= -f1 "$1") <(cut -d= -f1 "$2") >/dev/null
}

build_base() {
  local name=$1 list="$ROOT/images/bases/$1.packages" lock="$ROOT/images/bases/$1.lock"
  local ref="devplane/base-$name:$SUITE" key
  [[ -f "$list" ]] || die "no package list $list for base '$name'"
  key="$(input_key "$name")"
  if [[ "$(image_label "$ref" org.devplane.inputs)" == "$key" ]]; then
    log "$ref: up to date"
    return
  fi
  local include tar="$WORK/$name.tar" got="$WORK/$name.got"
  include="$(packages_of "$list" | paste -sd, -)"
  log "$ref: bootstrapping $SUITE/$ARCH with: $include (takes a minute or two)"
  local opts=()
  if [[ -n "${CA_BUNDLE:-}" ]]; then
    # An https mirror behind a TLS-inspecting proxy: apt needs the site's CA to fetch.
    opts+=(--aptopt="Acquire::https::CAInfo \"$CA_BUNDLE\"")
  fi
  # No Recommends: the lists name everything wanted. Docs, man pages and translations are
  # dropped (copyright files stay, for the licence review): the containers have no man reader
  # and C.UTF-8 needs no locale data. usrmerge is what apt picks for init-system-helpers while
  # installing the required packages; /usr is merged already (mmdebstrap does it) and the lists
  # include usr-is-merged, so it is purged again with the perl modules it brought, and perl
  # (~50 MB) goes too unless a listed package needs it (git does); debconf only suggests it.
  # ("$1" in a hook is mmdebstrap's: the new root.)
  # shellcheck disable=SC2016
  mmdebstrap --quiet --mode=root --variant=minbase --format=tar --architectures="$ARCH" \
    --include="$include" --aptopt='APT::Install-Recommends "false"' "${opts[@]}" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='chroot "$1" apt-get purge --yes --quiet=2 usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl' \
    --customize-hook='chroot "$1" apt-mark auto --quiet perl libperl5.36 perl-modules-5.36 >/dev/null 2>&1 || true' \
    --customize-hook='chroot "$1" apt-get autoremove --purge --yes --quiet=2 -o APT::AutoRemove::SuggestsImportant=false' \
    --customize-hook="dpkg-query --admindir=\"\$1/var/lib/dpkg\" -W -f='\${Package}=\${Version}\n' | LC_ALL=C sort >'$got'" \
    "$SUITE" "$tar" "$DEBIAN_SOURCES" \
    || die "mmdebstrap could not bootstrap base '$name' from $DEBIAN_SOURCES (see above). An https mirror
  behind a TLS-inspecting proxy needs CA_BUNDLE=/path/to/ca-bundle.crt."
  if [[ ! -f "$lock" ]]; then
    cp "$got" "$lock"
    log "$ref: wrote $lock (new pin: review and commit it)"
  elif ! diff -q "$lock" "$got" >/dev/null; then
    if [[ "${DEVPLANE_BASE_RELOCK:-0}" == 1 ]]; then
      cp "$got" "$lock"
      log "$ref: DEVPLANE_BASE_RELOCK=1: rewrote $lock (review and commit it)"
    elif [[ "${DEVPLANE_BASE_STRICT:-0}" != 1 ]] && same_packages "$lock" "$got"; then
      # The same packages at newer versions: a Debian point release or a security update
      # replaced the pinned ones, which the mirror no longer serves. Refusing would leave a new
      # machine unable to build anything until someone relocks; the base is built from what
      # the mirror serves, and the difference is shown and recorded on the image.
      diff -u "$lock" "$got" | sed -n 's/^\([-+][^-+]\)/  \1/p' >&2 || true
      log "$ref: WARNING: the mirror has moved on from $lock (-pinned +mirror, above); built from
  the mirror's versions. Relock to make it the pin: DEVPLANE_BASE_RELOCK=1 hack/build-bases.sh
  (DEVPLANE_BASE_STRICT=1 refuses instead, for release builds)."
    else
      rm -f "$tar"
      diff -u "$lock" "$got" | sed -n 's/^\([-+][^-+]\)/  \1/p' >&2 || true
      die "base '$name': the mirror now serves other packages or versions than $lock pins
  (-pinned +mirror, above). With DEVPLANE_BASE_STRICT=1 any version change fails; without it,
  only a change in the set of packages does. Accept the mirror's with DEVPLANE_BASE_RELOCK=1
  hack/build-bases.sh, review the lock's diff and commit it."
    fi
  fi
  # The key is computed again: it covers the lock, which may just have been written.
  key="$(input_key "$name")"
  "$ENGINE" import --quiet \
    --change "LABEL org.devplane.inputs=$key" \
    --change "LABEL org.devplane.packages-sha256=$(sha <"$got")" \
    --change "LABEL org.opencontainers.image.description=DevPlane base $name: Debian $SUITE minbase + images/bases/$name.packages" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$tar" "$ref" >/dev/null
  rm -f "$tar"
  log "$ref: imported ($(wc -l <"$got") packages; images/bases/$name.lock pins $(wc -l <"$lock"))"
}

for name in ${BASES:-python hub workspace}; do
  build_base "$name"
done
