#!/usr/bin/env bash
# Makes a local stand-in for the official node:20-bookworm-slim image from
# this machine's own Node runtime, for machines with no container registry
# (tests and CI here). Real users keep the real base image.
#
#   test/setup/base-image.sh [TAG]        (default localhost/node:20-slim)
#
# The rootfs holds the host's node and npm, the libraries `ldd node` lists
# and the dynamic loader, a /bin/sh (busybox when the host has it, else
# dash) and /usr/bin/env (npm's .bin shims start with `#!/usr/bin/env node`),
# /etc/passwd and /etc/group with root and node (1000) like the official
# image, and the host's CA bundle plus NODE_EXTRA_CA_CERTS so `npm ci` in a
# build stage trusts the same registry path the host does. Built FROM scratch
# in a few seconds; rebuilt only when the host's node changes (a label holds
# its version and binary checksum).
set -euo pipefail

tag=${1:-localhost/node:20-slim}
engine=${CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}
[ -n "$engine" ] || { echo "base-image: neither podman nor docker found" >&2; exit 1; }
case $(basename "$engine") in
  podman) export CONTAINERS_CONF=${CONTAINERS_CONF:-$(cd "$(dirname "$0")" && pwd)/containers.conf} ;;
esac

node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(readlink -f "$(dirname "$(readlink -f "$(command -v npm)")")/..")
stamp="$("$node_bin" --version)-$(sha256sum "$node_bin" | cut -c1-16)-v1"

if [ "$("$engine" image inspect --format '{{ index .Config.Labels "shallot.base-stamp" }}' "$tag" 2>/dev/null || true)" = "$stamp" ]; then
  echo "base-image: $tag is current ($stamp)"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,usr/bin,usr/lib/node_modules,etc/ssl/certs,tmp,root,home/node,var/lib}
chmod 1777 "$root/tmp"

# Copies a file and every shared library it needs, at the same paths.
copy_with_libs() {
  local f=$1
  mkdir -p "$root$(dirname "$f")"
  cp -L "$f" "$root$f"
  ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

copy_with_libs "$node_bin"
[ "$node_bin" = /usr/bin/node ] || ln -s "$node_bin" "$root/usr/bin/node"
copy_with_libs /usr/bin/env
if command -v busybox >/dev/null 2>&1; then
  copy_with_libs "$(readlink -f "$(command -v busybox)")"
  ln -sf "$(readlink -f "$(command -v busybox)")" "$root/bin/sh"
else
  copy_with_libs "$(readlink -f /bin/sh)"
  [ -e "$root/bin/sh" ] || ln -s "$(readlink -f /bin/sh)" "$root/bin/sh"
fi
cp -a "$npm_dir" "$root/usr/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/bin/npx"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' >"$root/etc/group"
chown 1000:1000 "$root/home/node"

cat >"$work/Containerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin NODE_VERSION=$("$node_bin" --version | cut -c2-) \\
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \\
    npm_config_cafile=/etc/ssl/certs/ca-certificates.crt \\
    npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
LABEL shallot.base-stamp="$stamp"
CMD ["node"]
EOF
"$engine" build -q -t "$tag" -f "$work/Containerfile" "$work" >/dev/null
echo "base-image: built $tag from $node_bin ($stamp)"
