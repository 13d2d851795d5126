#!/usr/bin/env bash
# Installs what the full test suite needs beyond npm packages. Idempotent:
# Debian packages only when missing, Go tools cached under $SHALLOT_TOOLS
# (default ~/.cache/shallot-tools) so only the first run pays for builds.
set -euo pipefail

need_apt=()
# torsocks and a headless Chromium run README's real-client lines (test/slow/torsocks-chromium.test.ts).
# tor and tor-gencert run the C tor testnet (test/setup/ctor-testnet.ts, test/slow/ctor-*.test.ts).
for pair in "curl:curl" "prometheus:prometheus" "torsocks:torsocks" "chromium-headless-shell:chromium-headless-shell" "tor:tor" "tor-gencert:tor"; do
  bin=${pair%%:*} pkg=${pair##*:}
  command -v "$bin" >/dev/null 2>&1 || need_apt+=("$pkg")
done
{ command -v podman && command -v runc && command -v iptables; } >/dev/null 2>&1 || need_apt+=(podman runc netavark aardvark-dns iptables) # images suite
# The cluster suite (test/cluster): containerd, CNI plugins and conntrack for
# the node; openssl for its certificates; a static libc for the pause binary.
for pair in "containerd:containerd" "conntrack:conntrack" "openssl:openssl" "gcc:gcc"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair##*:}")
done
[ -x /usr/lib/cni/bridge ] || need_apt+=(containernetworking-plugins)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/aarch64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-tools: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# kube-apiserver + etcd for the operator suite (test/slow/operator*.test.ts),
# and the node components for the cluster suite (test/cluster); cached
# under $SHALLOT_TOOLS after the first build.
bash "$(dirname "$0")/build-kube.sh" node

# helm and kubeconform for the chart suite (test/slow/chart*.test.ts), from
# the Go module proxy, cached under $SHALLOT_TOOLS/bin. helm gets the
# ldflags its Makefile sets, so offline `helm template`/`lint` assume
# Kubernetes 1.36 (client-go v0.36) rather than the built-in 1.20.
shallot_tools=${SHALLOT_TOOLS:-$HOME/.cache/shallot-tools}
mkdir -p "$shallot_tools/bin"
if [ ! -x "$shallot_tools/bin/helm" ]; then
  echo "install-tools: go install helm v3.21.4"
  h=helm.sh/helm/v3
  GOBIN="$shallot_tools/bin" go install -ldflags "-X $h/internal/version.version=v3.21.4 \
    -X $h/pkg/lint/rules.k8sVersionMajor=1 -X $h/pkg/lint/rules.k8sVersionMinor=36 \
    -X $h/pkg/chartutil.k8sVersionMajor=1 -X $h/pkg/chartutil.k8sVersionMinor=36" "$h/cmd/helm@v3.21.4"
fi
if [ ! -x "$shallot_tools/bin/kubeconform" ]; then
  echo "install-tools: go install kubeconform v0.7.0"
  GOBIN="$shallot_tools/bin" go install github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0
fi
# hey, the load tool README's "Using real clients" drives through the HTTP
# CONNECT tunnel (test/slow/hey-http-tunnel.test.ts).
if [ ! -x "$shallot_tools/bin/hey" ]; then
  echo "install-tools: go install hey v0.1.5"
  GOBIN="$shallot_tools/bin" go install github.com/rakyll/hey@v0.1.5
fi
