#!/usr/bin/env bash
# Settings and helpers shared by the single-node cluster scripts (up.sh,
# down.sh) and kind.sh's containerd path. Everything the cluster writes
# lives under $SHALLOT_CLUSTER_DIR; binaries come from
# test/setup/build-kube.sh's cache ($SHALLOT_TOOLS/bin).
set -euo pipefail
CLUSTER_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$CLUSTER_LIB_DIR/../../.." && pwd)
K8S_DIR=${SHALLOT_CLUSTER_DIR:-/tmp/shallot-cluster}
TOOLS=${SHALLOT_TOOLS:-$HOME/.cache/shallot-tools}
BIN=$TOOLS/bin
K8S_VERSION=$(sed -n 's/^K8S_VERSION=//p' "$REPO/test/setup/build-kube.sh")
COREDNS_VERSION=$(sed -n 's/^COREDNS_VERSION=//p' "$REPO/test/setup/build-kube.sh")
NODE_BIN=$BIN/k8s-node-$K8S_VERSION
# containerd's sandbox image: Kubernetes' pause, built locally (no registry).
PAUSE_IMAGE=registry.k8s.io/pause:3.10.2
COREDNS_IMAGE=localhost/coredns:$COREDNS_VERSION
NODE_NAME=shallot-node
BRIDGE=shallotbr0
POD_CIDR=10.244.0.0/24
# The bridge's address is the API server's, the kubelet's and the node's IP.
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
DNS_IP=10.96.0.10
API_PORT=6443
ETCD_CLIENT_PORT=12379
ETCD_PEER_PORT=12380
PKI=$K8S_DIR/pki
CTRD_SOCK=$K8S_DIR/containerd/containerd.sock
EGRESS_COMMENT="shallot-cluster: pods reach only the node and each other"
export KUBECONFIG=$K8S_DIR/admin.kubeconfig
export PATH="$NODE_BIN:$BIN:$PATH"

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() {
  log "ERROR: $*" >&2
  exit 1
}
ctr_() { ctr --address "$CTRD_SOCK" -n k8s.io "$@"; }
# start NAME CMD...: CMD in its own session, log in logs/NAME.log, pid in pids/NAME.
start() {
  local name=$1
  shift
  mkdir -p "$K8S_DIR/logs" "$K8S_DIR/pids"
  if running "$name"; then
    log "$name already running (pid $(cat "$K8S_DIR/pids/$name"))"
    return 0
  fi
  setsid "$@" >>"$K8S_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$K8S_DIR/pids/$name"
  log "started $name (pid $!)"
}
running() { [ -f "$K8S_DIR/pids/$1" ] && kill -0 "$(cat "$K8S_DIR/pids/$1")" 2>/dev/null; }
# wait_for SECONDS WHAT CMD...: polls CMD once a second; on timeout shows WHAT and fails.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || die "timed out after ${secs}s waiting for $what"
    sleep 1
  done
}
