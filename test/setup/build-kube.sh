#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy into the tool cache
# ($SHALLOT_TOOLS, default ~/.cache/shallot-tools/bin). k8s.io/kubernetes and
# etcd's server use replace directives, so `go install` cannot build them;
# the wrapper modules beside this script pin the versions and replace each
# staging module with its published release. Cold: 10-20 min on 2 cores;
# afterwards the cached binaries are reused.
#
# `build-kube.sh node` also builds what a real single-node cluster needs
# (test/setup/cluster/up.sh): kube-controller-manager, kube-scheduler,
# kubelet, kube-proxy and kubectl at the same version and with the same
# version stamp, CoreDNS, and Kubernetes' own pause binary (static C).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=${SHALLOT_TOOLS:-$HOME/.cache/shallot-tools}
mkdir -p "$tools/bin"
K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.8

# Without the version stamped in (the Kubernetes build scripts do this with
# ldflags), the apiserver reports v0.0.0-master+$Format:%H$, which helm
# refuses against the chart's kubeVersion and kubectl cannot parse.
stamp_flags() {
  local v=${K8S_VERSION#v} pkg=k8s.io/component-base/version
  echo "-X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=${v%%.*} -X $pkg.gitMinor=$(echo "$v" | cut -d. -f2) -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
}

COREDNS_VERSION=v1.14.7

# kube_module DIR NAME: in DIR (holding a tools.go), a wrapper module
# requiring k8s.io/kubernetes with every staging module it replaces with
# ./staging/... replaced by its published release.
kube_module() {
  cd "$1"
  go mod init "shallot.dev/$2-wrapper" >/dev/null 2>&1
  go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
  # The staging modules k8s.io/kubernetes replaces with ./staging/... are
  # published as k8s.io/<name> v0.<minor>.<patch>.
  local gomod; gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  local staging="v0.${K8S_VERSION#v1.}"
  go mod edit -json "$gomod" | python3 -c '
import json,sys
for r in json.load(sys.stdin).get("Replace") or []:
    p=r["Old"]["Path"]
    if r["New"]["Path"].startswith("./staging"): print(p)
' | while read -r m; do go mod edit -replace="$m=$m@$staging"; done
  GOFLAGS=-mod=mod go mod tidy >/dev/null
}

build_apiserver() {
  local out="$tools/bin/kube-apiserver-$K8S_VERSION"
  # A cached binary counts only if it says its version (older caches did not).
  [ -x "$out" ] && "$out" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION" && return 0
  echo "build-kube: building kube-apiserver $K8S_VERSION (first run only)"
  local work; work=$(mktemp -d)
  cp "$here/kube-apiserver/tools.go" "$work/"
  kube_module "$work" kube-apiserver
  CGO_ENABLED=0 go build -ldflags "$(stamp_flags)" -o "$out.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$out.tmp" "$out"
  cd - >/dev/null; rm -rf "$work"
}

node_cmds=(kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
build_node() {
  local dir="$tools/bin/k8s-node-$K8S_VERSION" missing=() c
  mkdir -p "$dir"
  for c in "${node_cmds[@]}"; do [ -x "$dir/$c" ] || missing+=("$c"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "build-kube: building ${missing[*]} $K8S_VERSION (first run only)"
    local work; work=$(mktemp -d)
    cp "$here/kube-node/tools.go" "$work/"
    kube_module "$work" kube-node
    for c in "${missing[@]}"; do
      local t=$SECONDS
      CGO_ENABLED=0 go build -ldflags "$(stamp_flags) -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" \
        -o "$dir/$c.tmp" "k8s.io/kubernetes/cmd/$c"
      mv "$dir/$c.tmp" "$dir/$c"
      echo "build-kube: built $c in $((SECONDS - t))s"
    done
    cd - >/dev/null; rm -rf "$work"
  fi
  if [ ! -x "$tools/bin/coredns-$COREDNS_VERSION" ]; then
    echo "build-kube: building coredns $COREDNS_VERSION (first run only)"
    local work; work=$(mktemp -d)
    CGO_ENABLED=0 GOBIN="$work" go install "github.com/coredns/coredns@$COREDNS_VERSION"
    mv "$work/coredns" "$tools/bin/coredns-$COREDNS_VERSION"; rm -rf "$work"
  fi
  if [ ! -x "$tools/bin/pause-$K8S_VERSION" ]; then
    # The sandbox every pod starts from: Kubernetes' own pause.c, static.
    local src; src=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    gcc -Os -Wall -Werror -static -DVERSION="v3.10.2-$K8S_VERSION" -o "$tools/bin/pause.tmp" "$src/build/pause/linux/pause.c"
    strip "$tools/bin/pause.tmp"; mv "$tools/bin/pause.tmp" "$tools/bin/pause-$K8S_VERSION"
  fi
  echo "build-kube: node components ready in $dir"
}

build_etcd() {
  local out="$tools/bin/etcd-$ETCD_VERSION"
  [ -x "$out" ] && return 0
  echo "build-kube: building etcd $ETCD_VERSION (first run only)"
  local work; work=$(mktemp -d)
  cp "$here/etcd/tools.go" "$work/"
  cd "$work"
  go mod init shallot.dev/etcd-wrapper >/dev/null 2>&1
  go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  GOFLAGS=-mod=mod go mod tidy >/dev/null
  CGO_ENABLED=0 go build -o "$out.tmp" go.etcd.io/etcd/server/v3
  mv "$out.tmp" "$out"
  cd - >/dev/null; rm -rf "$work"
}

build_etcd
build_apiserver
ln -sf "kube-apiserver-$K8S_VERSION" "$tools/bin/kube-apiserver"
ln -sf "etcd-$ETCD_VERSION" "$tools/bin/etcd"
echo "build-kube: $tools/bin/kube-apiserver and $tools/bin/etcd ready"
[ "${1:-}" != node ] || build_node
