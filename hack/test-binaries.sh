#!/usr/bin/env bash
# Builds the test control plane's binaries (kube-apiserver, kube-controller-manager,
# etcd), kubectl and helm from their Go modules, once, into a cache outside the
# repo keyed by version. Prints the directory that holds them (envtest's
# KUBEBUILDER_ASSETS layout). Honours envtest's conventions first: if
# TEST_ASSET_KUBE_APISERVER and TEST_ASSET_ETCD name binaries, or
# KUBEBUILDER_ASSETS holds kube-apiserver and etcd, nothing is built (the printed
# directory is then the one holding kube-apiserver). Concurrent runs wait for
# each other on a lock instead of building twice.
#
#   hack/test-binaries.sh            build what is missing, print the directory
#   hack/test-binaries.sh --check    exit 0 if everything is available, 1 otherwise
#
# Prometheus's promtool (for the chart's alerting rules) has its own directory,
# keyed by its own version, so that bumping one never rebuilds the other:
#
#   hack/test-binaries.sh --promtool           build it if missing, print its path
#   hack/test-binaries.sh --promtool --check   print its path and exit 0 if built, exit 1 otherwise
set -euo pipefail

K8S_VERSION="${ORIGINGUARD_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ORIGINGUARD_ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${ORIGINGUARD_HELM_VERSION:-v3.22.0}"
# github.com/prometheus/prometheus tags its Go module v0.<minor>.<patch> for Prometheus 3.<minor>.<patch>.
PROMETHEUS_VERSION="${ORIGINGUARD_PROMETHEUS_VERSION:-v0.316.0}"
CACHE_ROOT="${ORIGINGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/originguard}"
OUT="$CACHE_ROOT/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
BINARIES=(kube-apiserver kube-controller-manager etcd kubectl helm)

log() { printf '[test-binaries] %s\n' "$*" >&2; }

# One build at a time per output: a second run waits on the lock, then finds the binaries.
lock_cache() {
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/$1"
  if ! flock -n 9; then
    log "another build is running in $CACHE_ROOT; waiting for it"
    flock 9
  fi
}

if [[ "${1:-}" == "--promtool" ]]; then
  PROMTOOL="$CACHE_ROOT/bin/promtool-$PROMETHEUS_VERSION/promtool"
  if [[ -x "$PROMTOOL" ]]; then echo "$PROMTOOL"; exit 0; fi
  [[ "${2:-}" == "--check" ]] && exit 1
  command -v go >/dev/null || { log "go is not installed: install Go to build promtool"; exit 1; }
  lock_cache build-promtool.lock
  if [[ ! -x "$PROMTOOL" ]]; then
    start=$(date +%s)
    log "building promtool from github.com/prometheus/prometheus $PROMETHEUS_VERSION (first run only: a few minutes)"
    dir="$CACHE_ROOT/build/prometheus-$PROMETHEUS_VERSION"
    mkdir -p "$dir" "$(dirname "$PROMTOOL")"
    (
      cd "$dir"
      export GOFLAGS="-mod=mod" CGO_ENABLED=0
      [[ -f go.mod ]] || go mod init originguard.test/prometheus >/dev/null 2>&1
      go mod edit -go=1.26
      go mod edit -require="github.com/prometheus/prometheus@$PROMETHEUS_VERSION"
      printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/prometheus/prometheus/cmd/promtool"\n' > tools.go
      go mod tidy >/dev/null 2>&1 || go mod tidy
      release="3.${PROMETHEUS_VERSION#v0.}"
      ld="-s -w -X github.com/prometheus/common/version.Version=$release"
      go build -trimpath -ldflags "$ld" -o "$PROMTOOL.tmp" github.com/prometheus/prometheus/cmd/promtool
      mv "$PROMTOOL.tmp" "$PROMTOOL"
    )
    log "promtool ready in $(( $(date +%s) - start ))s"
  fi
  echo "$PROMTOOL"
  exit 0
fi

have_all() {
  local dir="$1" b
  for b in "${BINARIES[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
}

if [[ -x "${TEST_ASSET_KUBE_APISERVER:-}" && -x "${TEST_ASSET_ETCD:-}" ]]; then
  [[ "${1:-}" == "--check" ]] && exit 0
  dirname "$TEST_ASSET_KUBE_APISERVER"
  exit 0
fi

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && [[ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]] && [[ -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
  # envtest's convention: use what the user points at. kube-controller-manager
  # and helm are optional there; tests that need them say so.
  [[ "${1:-}" == "--check" ]] && exit 0
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

if have_all "$OUT"; then
  [[ "${1:-}" == "--check" ]] && exit 0
  echo "$OUT"
  exit 0
fi
[[ "${1:-}" == "--check" ]] && exit 1

command -v go >/dev/null || { log "go is not installed: install Go, or set KUBEBUILDER_ASSETS to a directory with kube-apiserver and etcd"; exit 1; }

mkdir -p "$OUT"
lock_cache build.lock
if have_all "$OUT"; then
  echo "$OUT"
  exit 0
fi
WORK="$CACHE_ROOT/build"
mkdir -p "$WORK"
export GOFLAGS="-mod=mod"
export CGO_ENABLED=0
start_all=$(date +%s)

build_kubernetes() {
  local dir="$WORK/kubernetes-$K8S_VERSION" minor major staging
  [[ -x "$OUT/kube-apiserver" && -x "$OUT/kube-controller-manager" && -x "$OUT/kubectl" ]] && return 0
  log "building kube-apiserver, kube-controller-manager and kubectl $K8S_VERSION from k8s.io/kubernetes (first run only: about 12 minutes on 2 cores)"
  mkdir -p "$dir"
  major="${K8S_VERSION#v}"; major="${major%%.*}"
  minor="${K8S_VERSION#v*.}"; minor="${minor%%.*}"
  staging="v0.${K8S_VERSION#v*.}"
  (
    cd "$dir"
    [[ -f go.mod ]] || go mod init originguard.test/kubernetes >/dev/null 2>&1
    go mod edit -go=1.26
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
    # with ./staging paths; a consumer must replace each with its published tag.
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging' "$gomod" | awk '{print $1}' | sort -u | while read -r m; do
      go mod edit -replace="$m=$m@$staging"
    done
    go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    go mod tidy >/dev/null 2>&1 || go mod tidy
    local ld="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-01-01T00:00:00Z"
    done
    for cmd in kube-apiserver kube-controller-manager kubectl; do
      [[ -x "$OUT/$cmd" ]] && continue
      go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ld" -o "$OUT/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
      mv "$OUT/$cmd.tmp" "$OUT/$cmd"
    done
  )
}

build_etcd() {
  local dir="$WORK/etcd-$ETCD_VERSION"
  [[ -x "$OUT/etcd" ]] && return 0
  log "building etcd $ETCD_VERSION from go.etcd.io/etcd/server/v3"
  mkdir -p "$dir"
  (
    cd "$dir"
    [[ -f go.mod ]] || go mod init originguard.test/etcd >/dev/null 2>&1
    go mod edit -go=1.26
    go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
    go mod tidy >/dev/null 2>&1 || go mod tidy
    go build -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$OUT/etcd.tmp" "$OUT/etcd"
  )
}

build_helm() {
  local dir="$WORK/helm-$HELM_VERSION" kminor
  [[ -x "$OUT/helm" ]] && return 0
  log "building helm $HELM_VERSION from helm.sh/helm/v3"
  mkdir -p "$dir"
  kminor="${K8S_VERSION#v*.}"; kminor="${kminor%%.*}"
  (
    cd "$dir"
    [[ -f go.mod ]] || go mod init originguard.test/helm >/dev/null 2>&1
    go mod edit -go=1.26
    go mod edit -require="helm.sh/helm/v3@$HELM_VERSION"
    printf '//go:build tools\n\npackage tools\n\nimport _ "helm.sh/helm/v3/cmd/helm"\n' > tools.go
    go mod tidy >/dev/null 2>&1 || go mod tidy
    local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    ld="$ld -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kminor"
    ld="$ld -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kminor"
    go build -trimpath -ldflags "$ld" -o "$OUT/helm.tmp" helm.sh/helm/v3/cmd/helm
    mv "$OUT/helm.tmp" "$OUT/helm"
  )
}

build_etcd
build_helm
build_kubernetes
log "binaries ready in $OUT ($(( $(date +%s) - start_all ))s)"
echo "$OUT"
