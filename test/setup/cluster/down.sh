#!/usr/bin/env bash
# Stops the cluster up.sh started and undoes every host change
# (`npm run cluster:down`): pods through the kubelet (so CNI releases their
# networks), then each process by its pid file, kube-proxy's, kubelet's and
# CNI's iptables rules, the egress drop rule, the Service route, the bridge,
# mounts under the cluster directory, the sysctls (back to their saved
# values) and the directory itself (KEEP=1 keeps it, for its logs).
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || die "needs root"
[ -d "$K8S_DIR" ] || {
  log "nothing to stop ($K8S_DIR does not exist)"
  exit 0
}
stop() {
  local name=$1 pid
  running "$name" || {
    rm -f "$K8S_DIR/pids/$name"
    return 0
  }
  pid=$(cat "$K8S_DIR/pids/$name")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$K8S_DIR/pids/$name"
  log "stopped $name (pid $pid)"
}
# 1. No new pods; the kubelet removes the running ones (CNI DEL included).
stop kube-controller-manager
stop kube-scheduler
if running kube-apiserver && running kubelet; then
  kubectl delete pods --all -A --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do
    [ -z "$(ctr_ tasks ls -q 2>/dev/null)" ] && break
    sleep 1
  done
fi
stop kubelet
stop kube-proxy
[ -x "$NODE_BIN/kube-proxy" ] && "$NODE_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
stop kube-apiserver
stop etcd
# 2. Containers the kubelet did not get to, then containerd and its shims.
if running containerd; then
  for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
  sleep 1
  for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks rm -f "$t" >/dev/null 2>&1 || true; done
  for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers rm "$c" >/dev/null 2>&1 || true; done
fi
stop containerd
# Shims of this containerd only (their -address is this cluster's socket).
for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $CTRD_SOCK" || true); do kill -KILL "$p" 2>/dev/null || true; done
# 3. Network. Pod namespaces left behind: only those with an address in the pod range.
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do
  ip -n "$ns" -4 addr show 2>/dev/null | grep -q "inet ${POD_CIDR%.*}\." && ip netns del "$ns" 2>/dev/null || true
done
ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null || true
iptables -D FORWARD -s "$POD_CIDR" ! -o "$BRIDGE" -m comment --comment "$EGRESS_COMMENT" -j DROP 2>/dev/null || true
ip link del "$BRIDGE" 2>/dev/null || true
# CNI's rules for this network (bridge ipMasq, firewall plugin) if a DEL was missed.
for table in nat filter; do
  iptables -t "$table" -S 2>/dev/null | grep -E '^-A ' | grep -E "shallot-cluster|${POD_CIDR%.*}\." | sed 's/^-A/-D/' |
    while read -r rule; do eval iptables -t "$table" "$rule" 2>/dev/null || true; done || true
done
for chain in $(iptables -t nat -S 2>/dev/null | awk '/^-N CNI-/ {print $2}'); do
  [ -z "$(iptables -t nat -S "$chain" | grep '^-A' || true)" ] && iptables -t nat -X "$chain" 2>/dev/null || true
done
# The kubelet's chains (kube-proxy --cleanup leaves them) and the firewall plugin's once empty.
for ipt in iptables ip6tables; do
  $ipt -D INPUT -j KUBE-FIREWALL 2>/dev/null || true
  $ipt -D OUTPUT -j KUBE-FIREWALL 2>/dev/null || true
  $ipt -F KUBE-FIREWALL 2>/dev/null || true
  $ipt -X KUBE-FIREWALL 2>/dev/null || true
  for t in filter nat mangle; do
    $ipt -t "$t" -X KUBE-KUBELET-CANARY 2>/dev/null || true
    $ipt -t "$t" -X KUBE-IPTABLES-HINT 2>/dev/null || true
  done
done
if [ -z "$(iptables -S CNI-ADMIN 2>/dev/null | grep '^-A' || true)" ] &&
  [ "$(iptables -S CNI-FORWARD 2>/dev/null | grep -c '^-A' || true)" -le 1 ]; then
  iptables -D FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD 2>/dev/null || true
  iptables -F CNI-FORWARD 2>/dev/null || true
  iptables -X CNI-FORWARD 2>/dev/null || true
  iptables -X CNI-ADMIN 2>/dev/null || true
fi
# 4. Mounts under the cluster directory (secrets, emptyDirs, rootfs, shm), deepest first.
awk -v d="$K8S_DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done || true
# 5. sysctls back to what up.sh found.
if [ -f "$K8S_DIR/sysctl.orig" ]; then
  while IFS== read -r k v; do [ -z "$v" ] || sysctl -qw "$k=$v" 2>/dev/null || true; done <"$K8S_DIR/sysctl.orig"
fi
if [ "${KEEP:-0}" = 1 ]; then log "kept $K8S_DIR"; else
  rm -rf "$K8S_DIR"
  log "removed $K8S_DIR"
fi
