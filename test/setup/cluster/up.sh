#!/usr/bin/env bash
# Starts a real single-node Kubernetes cluster on this host without kind
# (`npm run cluster:up`): containerd, runc and CNI plugins from Debian;
# etcd, the control plane, kubelet, kube-proxy, kubectl and CoreDNS built
# from the Go module proxy (test/setup/build-kube.sh node); a bridge CNI
# network; CoreDNS behind the kube-dns Service. kind needs cgroup v2 and a
# registry for its node image; this needs neither (cgroup v1 works).
#
# Needs root. Afterwards: export KUBECONFIG=$SHALLOT_CLUSTER_DIR/admin.kubeconfig
# (default /tmp/shallot-cluster) and PATH=<tool cache>/bin/k8s-node-<version>:$PATH
# for kubectl; `npm run cluster:down` undoes everything.
#
# Network safety comes first: before any pod can start, the Service range
# routes to the cluster's bridge and pod traffic leaving by any other
# interface is dropped, so nothing a pod sends can leave the machine.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || die "needs root (it runs containerd and the kubelet); run as root or use kind (README 'Kubernetes with kind')"
for c in containerd runc ctr iptables conntrack openssl podman; do
  command -v "$c" >/dev/null || die "$c is not installed: run bash test/setup/install-tools.sh cluster"
done
[ -x /usr/lib/cni/bridge ] || die "CNI plugins missing (/usr/lib/cni): run bash test/setup/install-tools.sh cluster"
for c in kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  [ -x "$NODE_BIN/$c" ] || die "$NODE_BIN/$c missing: run bash test/setup/build-kube.sh node"
done
for f in "$BIN/kube-apiserver" "$BIN/etcd" "$BIN/coredns-$COREDNS_VERSION" "$BIN/pause-$K8S_VERSION"; do
  [ -x "$f" ] || die "$f missing: run bash test/setup/build-kube.sh node"
done
t0=$SECONDS
mkdir -p "$K8S_DIR"/{pki,logs,pids,cni/net.d,cni/ipam,containerd,kubelet,pod-logs,etcd}
# put FILE: stdin to FILE only when it differs (kube-proxy exits when its config file changes).
put() {
  local tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

# ---- host network: safety first ----------------------------------------------
# The sysctls this script and the kubelet change, saved once for down.sh.
if [ ! -f "$K8S_DIR/sysctl.orig" ]; then
  for k in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables vm.overcommit_memory kernel.panic kernel.panic_on_oops; do
    echo "$k=$(sysctl -n "$k" 2>/dev/null || true)"
  done >"$K8S_DIR/sysctl.orig"
fi
ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
# (the address list is read whole first: grep -q closing the pipe early fails the pipeline under pipefail)
addrs=$(ip -4 addr show dev "$BRIDGE")
grep -q "inet $NODE_IP/" <<<"$addrs" || ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
ip link set "$BRIDGE" up
# A ClusterIP kube-proxy has not programmed yet must not follow the default
# route off the machine; and pods are forwarded nowhere but the bridge.
ip route replace "$SERVICE_CIDR" dev "$BRIDGE"
egress=(-s "$POD_CIDR" ! -o "$BRIDGE" -m comment --comment "$EGRESS_COMMENT" -j DROP)
iptables -C FORWARD "${egress[@]}" 2>/dev/null || iptables -I FORWARD 1 "${egress[@]}"
sysctl -qw net.ipv4.ip_forward=1
modprobe br_netfilter 2>/dev/null || true
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
log "network: bridge $BRIDGE $NODE_IP, route $SERVICE_CIDR -> $BRIDGE, FORWARD drops pod egress by other interfaces"

# ---- PKI (openssl, 30 days) ----------------------------------------------------
if [ ! -f "$PKI/ca.crt" ]; then
  openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=shallot-cluster-ca" -days 30 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/ca.crt" 2>/dev/null
fi
# cert NAME CN O EKU [SAN]
cert() {
  local n=$1 cn=$2 o=$3 eku=$4 san=${5:-}
  [ -f "$PKI/$n.crt" ] && return 0
  openssl genrsa -out "$PKI/$n.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$n.key" -subj "/CN=$cn${o:+/O=$o}" -out "$PKI/$n.csr" 2>/dev/null
  printf '%s\n' basicConstraints=CA:FALSE keyUsage=critical,digitalSignature,keyEncipherment \
    "extendedKeyUsage=$eku" ${san:+"subjectAltName=$san"} >"$PKI/$n.ext"
  openssl x509 -req -in "$PKI/$n.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$PKI/$n.ext" -out "$PKI/$n.crt" 2>/dev/null
}
cert apiserver kube-apiserver "" serverAuth \
  "IP:$NODE_IP,IP:127.0.0.1,IP:$KUBERNETES_SVC_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
cert kubelet-serving "system:node:$NODE_NAME" system:nodes serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth
cert admin kubernetes-admin system:masters clientAuth
cert controller-manager system:kube-controller-manager "" clientAuth
cert scheduler system:kube-scheduler "" clientAuth
cert kubelet "system:node:$NODE_NAME" system:nodes clientAuth
cert kube-proxy system:kube-proxy "" clientAuth
[ -f "$PKI/sa.key" ] || {
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}
chmod 600 "$PKI"/*.key
# kubeconfig NAME: a kubeconfig for the client certificate NAME.
kubeconfig() {
  local f=$K8S_DIR/$1.kubeconfig
  [ -f "$f" ] && return 0
  (
    umask 077
    cat >"$f" <<KC
apiVersion: v1
kind: Config
clusters:
- name: shallot
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$1.crt")
    client-key-data: $(base64 -w0 "$PKI/$1.key")
contexts:
- name: shallot
  context: {cluster: shallot, user: $1}
current-context: shallot
KC
  )
}
for k in admin controller-manager scheduler kubelet kube-proxy; do kubeconfig "$k"; done

# ---- containerd ----------------------------------------------------------------
# Where root lacks CAP_SYS_RESOURCE (some sandboxed VMs), runc cannot set the
# negative oom_score_adj the kubelet asks for every pod sandbox (-998) and
# every pod fails with "can't get final child's PID from pipe: EOF"; there
# runc runs through a wrapper that clamps negative values to 0.
runc_opt=""
if ! sh -c 'echo -1 >/proc/self/oom_score_adj' 2>/dev/null; then
  wrapper=$K8S_DIR/containerd/runc-oom-clamp
  cat >"$wrapper" <<'WRAP'
#!/bin/sh
# test/setup/cluster/up.sh: runc with negative oomScoreAdj clamped to 0 (no CAP_SYS_RESOURCE here).
prev=
for a in "$@"; do
  case $prev in
    --bundle | -b) [ -f "$a/config.json" ] && sed -i 's/"oomScoreAdj":-[0-9]*/"oomScoreAdj":0/' "$a/config.json" ;;
    --process | -p) [ -f "$a" ] && sed -i 's/"oomScoreAdj":-[0-9]*/"oomScoreAdj":0/' "$a" ;;
  esac
  prev=$a
done
exec runc "$@"
WRAP
  chmod 755 "$wrapper"
  runc_opt="BinaryName = \"$wrapper\""
  log "no CAP_SYS_RESOURCE: runc wrapped to clamp negative oom_score_adj"
fi
put "$K8S_DIR/containerd/config.toml" <<CFG
version = 2
root = "$K8S_DIR/containerd/root"
state = "$K8S_DIR/containerd/state"
[grpc]
  address = "$CTRD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        $runc_opt
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$K8S_DIR/cni/net.d"
CFG
put "$K8S_DIR/cni/net.d/10-shallot.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "shallot-cluster",
  "plugins": [
    { "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": "$K8S_DIR/cni/ipam",
                "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$NODE_IP" }]],
                "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "firewall", "backend": "iptables" }
  ]
}
CNI
start containerd containerd --config "$K8S_DIR/containerd/config.toml"
wait_for 60 containerd ctr --address "$CTRD_SOCK" version

# FROM-scratch images of one static binary: the pod sandbox and CoreDNS.
export CONTAINERS_CONF=${CONTAINERS_CONF:-$REPO/test/setup/containers.conf}
scratch_image() { # ref binary
  local ref=$1 bin=$2 name w
  grep -qx "$ref" <<<"$(ctr_ images ls -q)" && return 0
  name=$(basename "${ref%%:*}")
  w=$(mktemp -d)
  cp "$bin" "$w/$name"
  printf 'FROM scratch\nCOPY %s /%s\nENTRYPOINT ["/%s"]\n' "$name" "$name" "$name" >"$w/Containerfile"
  podman build -q --format docker -t "$ref" -f "$w/Containerfile" "$w" >/dev/null
  podman save -q --format docker-archive -o "$w/image.tar" "$ref" >/dev/null
  ctr_ images import "$w/image.tar" >/dev/null
  rm -rf "$w"
  log "imported $ref"
}
scratch_image "$PAUSE_IMAGE" "$BIN/pause-$K8S_VERSION"
scratch_image "$COREDNS_IMAGE" "$BIN/coredns-$COREDNS_VERSION"

# ---- etcd and the control plane -------------------------------------------------
start etcd etcd --name node --data-dir "$K8S_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "node=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" --log-level warn
wait_for 60 etcd curl -sf "http://127.0.0.1:$ETCD_CLIENT_PORT/health"
start kube-apiserver kube-apiserver \
  --advertise-address="$NODE_IP" --bind-address="$NODE_IP" --secure-port="$API_PORT" \
  --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" --service-cluster-ip-range="$SERVICE_CIDR" \
  --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction
wait_for 120 kube-apiserver kubectl get --raw /readyz
log "kube-apiserver $(kubectl version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])') ready"
start kube-controller-manager kube-controller-manager \
  --kubeconfig="$K8S_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$K8S_DIR/controller-manager.kubeconfig" --authorization-kubeconfig="$K8S_DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" --root-ca-file="$PKI/ca.crt" \
  --service-account-private-key-file="$PKI/sa.key" --service-cluster-ip-range="$SERVICE_CIDR" --cluster-cidr="$POD_CIDR"
start kube-scheduler kube-scheduler --kubeconfig="$K8S_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$K8S_DIR/scheduler.kubeconfig" --authorization-kubeconfig="$K8S_DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false

# ---- kubelet and kube-proxy ----------------------------------------------------------
# failCgroupV1: false — 1.36 refuses cgroup v1 by default; these machines have only v1.
put "$K8S_DIR/kubelet/config.yaml" <<KCFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$CTRD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: /etc/resolv.conf
podLogsDir: $K8S_DIR/pod-logs
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "200Mi", nodefs.available: "2%", imagefs.available: "2%"}
serializeImagePulls: false
KCFG
start kubelet kubelet --config="$K8S_DIR/kubelet/config.yaml" --kubeconfig="$K8S_DIR/kubelet.kubeconfig" \
  --root-dir="$K8S_DIR/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
wait_for 120 "node $NODE_NAME to register" kubectl get node "$NODE_NAME"
put "$K8S_DIR/kube-proxy.yaml" <<KP
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $K8S_DIR/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
nodePortAddresses: [$NODE_IP/32]
KP
start kube-proxy kube-proxy --config="$K8S_DIR/kube-proxy.yaml"

# ---- CoreDNS (cluster.local only: no upstream resolver to forward to) ----------------
sed -e "s#@COREDNS_IMAGE@#$COREDNS_IMAGE#" -e "s#@DNS_IP@#$DNS_IP#" "$CLUSTER_LIB_DIR/coredns.yaml" | kubectl apply -f - >/dev/null
node_ready() { [ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
wait_for 300 "node $NODE_NAME Ready" node_ready
kubectl -n kube-system rollout status deploy/coredns --timeout=300s >/dev/null
log "cluster up in $((SECONDS - t0))s: node $NODE_NAME Ready, CoreDNS ready (KUBECONFIG=$KUBECONFIG)"
