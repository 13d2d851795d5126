#!/usr/bin/env bash
# The kind workflow behind the npm scripts (README "Kubernetes with kind"):
#
#   npm run kind:up        create the cluster (test/setup/kind/cluster.yaml)
#   npm run images         build the images (test/setup/images.sh)
#   npm run images:load    load them into the cluster's nodes
#   npm run deploy         install/upgrade the chart, wait for the example network
#   npm run loadtest       run a LoadTest against the example onion service, print its summary
#   npm run kind:down      delete the cluster
#
# Where kind cannot run (cgroup v1, no registry for its node image),
# `npm run cluster:up` / `cluster:down` (test/setup/cluster/) make a real
# single-node cluster instead; images:load then imports into its containerd
# and every other step is the same.
#
# Settings (environment): KIND_CLUSTER (shallot), SHALLOT_NAMESPACE
# (shallot), SHALLOT_RELEASE (shallot), SHALLOT_IMAGE_TAG (dev),
# CONTAINER_ENGINE (docker or podman; default: docker when it answers);
# loadtest: LOADTEST_NAME (load-<time>), LOADTEST_CLIENTS (2),
# LOADTEST_CONCURRENCY (4), LOADTEST_RATE (unpaced), LOADTEST_DURATION (60),
# LOADTEST_COUNT (unbounded: the duration ends the run), LOADTEST_NEW_CIRCUIT
# (false; true: a fresh circuit, and so a fresh rendezvous, per request),
# LOADTEST_SIZE (50k), LOADTEST_NETWORK (demo), LOADTEST_TARGET (demo-web).
# `kind.sh loadtest-manifest` prints the LoadTest without applying it (the
# chart test validates it against the CRD).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cluster=${KIND_CLUSTER:-shallot}
ns=${SHALLOT_NAMESPACE:-shallot}
release=${SHALLOT_RELEASE:-shallot}
tag=${SHALLOT_IMAGE_TAG:-dev}
images=(relay directory onion-service client operator)
# helm (and the single-node cluster's kubectl) from the tool cache, when not installed otherwise.
tools=${SHALLOT_TOOLS:-$HOME/.cache/shallot-tools}
PATH="$PATH:$tools/bin:$(ls -d "$tools"/bin/k8s-node-* 2>/dev/null | tail -1)"
node_sock=${SHALLOT_CLUSTER_DIR:-/tmp/shallot-cluster}/containerd/containerd.sock

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "kind.sh: $1 is not installed ($2)" >&2
    exit 1
  }
}

up() {
  need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
    echo "kind cluster $cluster exists"
  else
    kind create cluster --name "$cluster" --config "$here/cluster.yaml"
  fi
  kubectl cluster-info --context "kind-$cluster"
}

load() {
  if ! command -v kind >/dev/null 2>&1 && [ -S "$node_sock" ]; then
    load_node
    return
  fi
  need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation (or npm run cluster:up)"
  local engine=${CONTAINER_ENGINE:-}
  if [ -z "$engine" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker; else engine=podman; fi
  fi
  for name in "${images[@]}"; do
    local image="shallot-$name:$tag"
    echo "loading $image into kind cluster $cluster"
    if [ "$(basename "$engine")" = docker ]; then
      kind load docker-image "$image" --name "$cluster"
    else
      # kind reads images from docker only; podman hands it an archive,
      # tagged as the docker.io/library/ name the pods' "shallot-x:dev" means.
      local tar
      tar=$(mktemp --suffix=.tar)
      "$engine" tag "$image" "docker.io/library/$image"
      "$engine" save --format docker-archive -o "$tar" "docker.io/library/$image"
      kind load image-archive "$tar" --name "$cluster"
      rm -f "$tar"
    fi
  done
}

# The single-node cluster (npm run cluster:up): its containerd imports the
# images under the docker.io/library/ names the pods' "shallot-x:dev" mean.
load_node() {
  local engine=${CONTAINER_ENGINE:-podman}
  for name in "${images[@]}"; do
    local image="shallot-$name:$tag" tar
    echo "loading $image into the single-node cluster's containerd"
    tar=$(mktemp --suffix=.tar)
    if [ "$(basename "$engine")" = docker ]; then
      docker save -o "$tar" "$image"
    else
      "$engine" tag "$image" "docker.io/library/$image"
      "$engine" save --format docker-archive -o "$tar" "docker.io/library/$image"
    fi
    ctr --address "$node_sock" -n k8s.io images import "$tar" >/dev/null
    rm -f "$tar"
  done
}

deploy() {
  need helm "bash test/setup/install-tools.sh puts it in ~/.cache/shallot-tools/bin"
  need kubectl "https://kubernetes.io/docs/tasks/tools/"
  # The chart packages its own copy of dashboards/ (Helm reads files inside the chart only).
  rm -f "$repo/charts/shallot/dashboards/"*.json
  cp "$repo/dashboards/"*.json "$repo/charts/shallot/dashboards/"
  local extra=()
  if kubectl get crd servicemonitors.monitoring.coreos.com >/dev/null 2>&1; then
    echo "prometheus-operator found: enabling ServiceMonitors, PodMonitor and PrometheusRule"
    extra+=(-f "$here/shallot-monitoring-values.yaml")
  fi
  helm upgrade --install "$release" "$repo/charts/shallot" --namespace "$ns" --create-namespace \
    -f "$here/shallot-values.yaml" "${extra[@]}" --set "image.tag=$tag" --wait --timeout 10m "$@"
  echo "waiting for the example network and onion service to be Ready"
  kubectl -n "$ns" wait --for=condition=Ready onionnetwork --all --timeout=10m
  kubectl -n "$ns" wait --for=condition=Ready onionservice --all --timeout=10m
  kubectl -n "$ns" get onionnetworks,onionservices
}

loadtest_manifest() {
  local name=${LOADTEST_NAME:-load-$(date +%Y%m%d-%H%M%S)}
  local rate="" count=""
  [ -z "${LOADTEST_RATE:-}" ] || rate="  rate: $LOADTEST_RATE"
  [ -z "${LOADTEST_COUNT:-}" ] || count="  count: $LOADTEST_COUNT"
  cat <<EOF
apiVersion: shallot.dev/v1alpha1
kind: LoadTest
metadata:
  name: $name
  namespace: $ns
spec:
  network: ${LOADTEST_NETWORK:-demo}
  target:
    onionService: ${LOADTEST_TARGET:-demo-web}
  clients: ${LOADTEST_CLIENTS:-2}
  concurrency: ${LOADTEST_CONCURRENCY:-4}
$rate
  durationSeconds: ${LOADTEST_DURATION:-60}
$count
  newCircuit: ${LOADTEST_NEW_CIRCUIT:-false}
  payloadSize: "${LOADTEST_SIZE:-50k}"
EOF
}

loadtest() {
  need kubectl "https://kubernetes.io/docs/tasks/tools/"
  local manifest name
  manifest=$(loadtest_manifest)
  name=$(sed -n 's/^  name: //p' <<<"$manifest" | head -1)
  kubectl apply -f - <<<"$manifest"
  local wait=$((${LOADTEST_DURATION:-60} + 600))
  echo "waiting up to ${wait}s for loadtest/$name (kubectl -n $ns get loadtest $name -w)"
  local phase=""
  for _ in $(seq 1 "$wait"); do
    phase=$(kubectl -n "$ns" get loadtest "$name" -o jsonpath='{.status.phase}')
    case $phase in Succeeded | Failed) break ;; esac
    sleep 1
  done
  kubectl -n "$ns" get loadtest "$name"
  kubectl -n "$ns" get loadtest "$name" -o jsonpath='{.status.summary}' | node -e \
    'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(s?JSON.stringify(JSON.parse(s),null,2):"(no summary)"))'
  [ "$phase" = Succeeded ]
}

down() {
  need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  kind delete cluster --name "$cluster"
}

cmd=${1:-}
shift || true
case $cmd in
  up) up ;;
  load) load ;;
  deploy) deploy "$@" ;;
  loadtest) loadtest ;;
  loadtest-manifest) loadtest_manifest ;;
  down) down ;;
  *)
    echo "usage: $0 up|load|deploy|loadtest|loadtest-manifest|down" >&2
    exit 2
    ;;
esac
