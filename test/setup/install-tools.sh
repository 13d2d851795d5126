#!/usr/bin/env bash
# Installs what the full test suite needs beyond npm packages. Idempotent:
# Debian packages only when missing, Go tools cached under $SHALLOT_TOOLS
# (default ~/.cache/shallot-tools) so only the first run pays for builds.
set -euo pipefail

need_apt=()
for pair in "curl:curl" "prometheus:prometheus"; do
  bin=${pair%%:*} pkg=${pair##*:}
  command -v "$bin" >/dev/null 2>&1 || need_apt+=("$pkg")
done
{ command -v podman && command -v runc && command -v iptables; } >/dev/null 2>&1 || need_apt+=(podman runc netavark aardvark-dns iptables) # images suite
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-tools: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# kube-apiserver + etcd for the operator suite (test/slow/operator*.test.ts);
# cached under $SHALLOT_TOOLS after the first build.
bash "$(dirname "$0")/build-kube.sh"
