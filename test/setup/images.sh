#!/usr/bin/env bash
# Builds the Shallot container images from the top-level Dockerfile:
#
#   npm run images [-- relay directory ...]     (default: every target)
#
# Tags each target shallot-<target>:${SHALLOT_IMAGE_TAG:-dev} (podman stores
# them as localhost/shallot-<target>:dev too), ready for
# `kind load docker-image shallot-relay:dev` or `podman kube play`.
#
# Engine: $CONTAINER_ENGINE when set (docker or podman); otherwise docker when
# its daemon answers (kind's default provider), else podman. With podman the
# settings in test/setup/containers.conf are used unless CONTAINERS_CONF is
# set, and images are built in docker format so HEALTHCHECK is kept.
# Base image: $BASE_IMAGE (default node:20-bookworm-slim, the official one);
# test/setup/base-image.sh makes a local stand-in where no registry exists.
# The operator target is built only once operator/main.ts exists.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tag=${SHALLOT_IMAGE_TAG:-dev}
all=(relay directory onion-service client operator)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v podman >/dev/null 2>&1; then
    engine=podman
  else
    echo "images: no container engine: install podman or start docker (or set CONTAINER_ENGINE)" >&2
    exit 1
  fi
fi

args=()
case $(basename "$engine") in
  podman)
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
    args+=(--format docker)
    ;;
  docker) export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-1} ;;
esac
[ -z "${BASE_IMAGE:-}" ] || args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")

# Every target is built from one snapshot of the sources, so all images hold
# the same code and the compile step runs once (later targets hit the layer
# cache) even while files in the work tree keep changing.
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
for f in package.json package-lock.json tsconfig.json .dockerignore Dockerfile services operator; do
  [ ! -e "$repo/$f" ] || cp -a "$repo/$f" "$ctx/"
done

built=()
for t in "${targets[@]}"; do
  case " ${all[*]} " in *" $t "*) ;; *) echo "images: unknown target $t (${all[*]})" >&2; exit 2 ;; esac
  if [ "$t" = operator ] && [ ! -e "$repo/operator/main.ts" ]; then
    echo "images: skipping operator (operator/main.ts does not exist yet)"
    continue
  fi
  echo "images: building shallot-$t:$tag with $engine${BASE_IMAGE:+ (base $BASE_IMAGE)}"
  start=$SECONDS
  "$engine" build "${args[@]}" --target "$t" -t "shallot-$t:$tag" -f "$ctx/Dockerfile" "$ctx"
  echo "images: shallot-$t:$tag built in $((SECONDS - start))s"
  built+=("shallot-$t:$tag")
done

echo "images: sizes"
for img in "${built[@]}"; do
  size=$("$engine" image inspect --format '{{.Size}}' "$img")
  printf '  %-32s %6d MB\n' "$img" $((size / 1000000))
done
