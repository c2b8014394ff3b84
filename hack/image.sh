#!/usr/bin/env bash
# Builds the image from the Dockerfile into the local Podman store (npm run image),
# installing Podman, runc and mmdebstrap first on a Debian machine where they are
# missing. No registry is needed: the Dockerfile's Node base is replaced by a
# stand-in built from Debian's packages and the project's own Node (see
# hack/image-base.sh). Users build with `docker build .` and the official base.
#
#   hack/image.sh               install what is missing, build, print the image tag
#   hack/image.sh --no-install  fail with exit 3 instead of installing (tests use this)
#
# Warm runs are fast: the stand-in base is kept in the Podman store under a tag
# keyed by its inputs, and Podman reuses every Dockerfile layer whose inputs did
# not change. Podman reads hack/podman/containers.conf (runc, cgroupfs) unless
# CONTAINERS_CONF already names a file.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${ORIGINGUARD_IMAGE:-originguard:dev}"
CACHE_ROOT="${ORIGINGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/originguard}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/hack/podman/containers.conf}"
PACKAGES=(podman runc mmdebstrap uidmap slirp4netns fuse-overlayfs)
log() { printf '[image] %s\n' "$*" >&2; }

missing=()
for tool in podman runc mmdebstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]} > 0)); then
  if [[ "${1:-}" == "--no-install" ]]; then
    log "missing: ${missing[*]} (npm run image installs them on Debian: apt-get install ${PACKAGES[*]})"
    exit 3
  fi
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    log "missing: ${missing[*]}; install them (Debian: apt-get install ${PACKAGES[*]}) and run again"
    exit 1
  fi
  log "installing ${PACKAGES[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
fi

# One build at a time (the network and cluster tests may both ask for the image).
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/image.lock"
if ! flock -n 9; then
  log "another image build is running; waiting for it"
  flock 9
fi

base=$(bash hack/image-base.sh)
start=$(date +%s)
# --network host: the build stage's `npm ci` reaches the npm registry through the
# host's network (no container network is needed here). A CA the host's Node
# trusts on top of its own (a TLS-inspecting proxy's) goes in as a build secret.
secret=()
if [[ -s "${NODE_EXTRA_CA_CERTS:-}" ]]; then secret=(--secret "id=build-ca,src=$NODE_EXTRA_CA_CERTS"); fi
podman build --layers --network host "${secret[@]}" \
  --build-arg "NODE_IMAGE=$base" \
  --tag "$IMAGE" --file Dockerfile . >&2
# Earlier builds leave untagged images behind; those of the last day stay, as
# they (and the layers under them) are the cache of the next build.
podman image prune --force --filter until=24h >/dev/null
log "$IMAGE built from the Dockerfile on $base in $(( $(date +%s) - start ))s"
echo "$IMAGE"
