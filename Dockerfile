# Shallot container images: the TypeScript is built once (stage `build`) and
# every service is a target of its own on a shared runtime stage.
#
#   npm run images                              # all of them, tagged shallot-<name>:dev
#   docker build --target relay -t shallot-relay:dev .
#   docker build --build-arg BASE_IMAGE=my/node:20 --target client .
#
# Targets: relay, directory, onion-service, client (also runs the load
# generator), operator. Every image runs as uid 1000, works with a read-only
# root filesystem (writable state only under the VOLUME /var/lib/shallot),
# takes its configuration from SHALLOT_* environment variables (each maps to
# the entry's command-line flag; extra flags may be passed as arguments),
# serves /healthz, /readyz and /metrics on SHALLOT_OPS_PORT (9100), and
# stops cleanly on SIGTERM: node is PID 1 and the entries handle SIGTERM
# themselves (services/runtime/cli.ts onShutdown), so no init is needed.
# No `# syntax=` line and no RUN in the runtime targets: builds offline with
# a local base image and with any builder (BuildKit, buildah).

ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
# Dependencies first: this layer is reused until the lockfile changes.
# --ignore-scripts: `prepare` would build before the sources are copied.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# Compile (services/ and operator/ when present; tests are not in the
# context) and drop dev dependencies. Then a second, slimmer dependency tree
# for the service images without OPERATOR_ONLY_DEPS (the Kubernetes client
# is ~50 MB and no service imports it). The state directory is made here
# with node so the runtime stages need no shell or coreutils.
ARG OPERATOR_ONLY_DEPS="@kubernetes/client-node"
RUN node node_modules/typescript/bin/tsc -p tsconfig.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && node -e " \
      const fs = require('fs'); \
      fs.mkdirSync('/state/shallot', { recursive: true }); \
      fs.cpSync('node_modules', '/slim/node_modules', { recursive: true, verbatimSymlinks: true }); \
      fs.copyFileSync('package-lock.json', '/slim/package-lock.json'); \
      const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')); \
      for (const d of process.argv.slice(1)) delete (pkg.dependencies ?? {})[d]; \
      fs.writeFileSync('/slim/package.json', JSON.stringify(pkg, null, 2));" ${OPERATOR_ONLY_DEPS} \
 && cd /slim && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# What every image shares: user, state volume, ops port, probe, signals.
# MALLOC_ARENA_MAX=2 as the `shallot` command runs node
# (services/runtime/heap-flags.ts NODE_PROCESS_ENV): glibc's per-thread
# malloc arenas fragment the heap of a process with worker threads, as a
# relay pool (relaysPerPod > 1) is.
FROM ${BASE_IMAGE} AS runtime-base
WORKDIR /app
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    SHALLOT_OPS_HOST=0.0.0.0 \
    SHALLOT_OPS_PORT=9100 \
    SHALLOT_LOG_LEVEL=info
COPY --from=build --chown=1000:1000 /state/shallot /var/lib/shallot
USER 1000:1000
VOLUME ["/var/lib/shallot"]
EXPOSE 9100
STOPSIGNAL SIGTERM
# Probe for docker/podman (Kubernetes uses its own httpGet probes on 9100).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.SHALLOT_OPS_PORT+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# The services' runtime: production dependencies without the operator's.
FROM runtime-base AS runtime
COPY --from=build /slim/package.json ./package.json
COPY --from=build /slim/node_modules ./node_modules
COPY --from=build /src/dist ./dist

# A relay. SHALLOT_HOST is the address it listens on AND advertises in its
# descriptor: set it to the pod/container IP (Kubernetes: status.podIP).
# Also SHALLOT_AUTHORITIES (required), SHALLOT_NICKNAME, SHALLOT_EXIT=1, ...
FROM runtime AS relay
ENV SHALLOT_KEY_FILE=/var/lib/shallot/relay.key \
    SHALLOT_PORT=9001
EXPOSE 9001
ENTRYPOINT ["node", "/app/dist/services/relay/main.js"]

# A directory authority (plain HTTP on SHALLOT_PORT). SHALLOT_AUTHORITIES
# lists every authority including this one; print this one's identity with
# `--print-identity` against the same key file.
FROM runtime AS directory
ENV SHALLOT_KEY_FILE=/var/lib/shallot/authority.key \
    SHALLOT_HOST=0.0.0.0 \
    SHALLOT_PORT=7000
EXPOSE 7000
ENTRYPOINT ["node", "/app/dist/services/directory/main.js"]

# One onion-service instance with its embedded client. Instances sharing a
# key file meet in SHALLOT_DATA_DIR. SHALLOT_BACKEND: builtin or host:port.
FROM runtime AS onion-service
ENV SHALLOT_KEY_FILE=/var/lib/shallot/hs_identity.key \
    SHALLOT_DATA_DIR=/var/lib/shallot
ENTRYPOINT ["node", "/app/dist/services/onion-service/main.js"]

# A client: SOCKS5 on SHALLOT_SOCKS_PORT for other containers. The load
# generator is in the same image:
#   --entrypoint node shallot-client:dev /app/dist/services/loadgen/main.js load <target> --socks H:P
# (Kubernetes: command: [node, /app/dist/services/loadgen/main.js, load]).
FROM runtime AS client
ENV SHALLOT_DATA_DIR=/var/lib/shallot \
    SHALLOT_SOCKS_HOST=0.0.0.0 \
    SHALLOT_SOCKS_PORT=9050
EXPOSE 9050
ENTRYPOINT ["node", "/app/dist/services/client/main.js"]

# The Kubernetes operator (dist/operator/main.js), with every production
# dependency.
FROM runtime-base AS operator
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
ENTRYPOINT ["node", "/app/dist/operator/main.js"]
