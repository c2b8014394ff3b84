# syntax=docker/dockerfile:1
# The originguard image: one binary, `originguard operator` and `originguard sidecar`.
#
#   docker build -t ghcr.io/originguard/originguard:0.1.0 .
#
# The build stage installs every dependency and bundles the CLI with esbuild
# (hack/build.ts) into dist/: one ESM file plus one chunk per subcommand, with
# all runtime dependencies inside. The final stage therefore carries only Node,
# bin/, dist/ and package.json: no node_modules, no npm, no dev dependencies, no
# TypeScript sources. test/network/production-install.test.ts checks that the
# bundle runs with no node_modules next to it, and that `npm pack` + a
# production-only install of the tarball works too.
#
# Base images pinned by version (Node 24 LTS, the version package.json's "node"
# devDependency pins). Pin by digest as well in a release pipeline:
#   FROM node:24.21.0-bookworm-slim@sha256:...
# NODE_IMAGE is a build argument so that machines that cannot pull images build
# on a stand-in with the same Node (npm run image: hack/image-base.sh).
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV NODE_ENV=development \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
COPY package.json package-lock.json ./
# Exactly the locked versions. --ignore-scripts: the image's own Node builds (the
# "node" devDependency would download a second one), and `prepare` runs
# explicitly below. The npm cache survives between builds (BuildKit, Podman).
# Behind a TLS-inspecting proxy, pass its CA as a build secret
# (`--secret id=build-ca,src=/path/to/ca.pem`): npm trusts it for this step only,
# and it is in no layer.
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    --mount=type=secret,id=build-ca,required=false \
    if [ -s /run/secrets/build-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/build-ca; fi \
 && npm ci --ignore-scripts
COPY tsconfig.json ./
COPY hack/build.ts hack/build.ts
COPY bin bin
COPY src src
RUN node hack/build.ts \
 && node bin/originguard.js --help >/dev/null \
 && rm -f dist/*.map dist/chunks/*.map

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="originguard" \
      org.opencontainers.image.description="Kubernetes operator and edge sidecar that answers 531/536 with the precise reason an origin cannot be reached" \
      org.opencontainers.image.source="https://github.com/originguard/originguard" \
      org.opencontainers.image.licenses="Apache-2.0"
# NODE_COMPILE_CACHE: src/main.ts turns on V8's compile cache; with a read-only
# root filesystem it points at /tmp (an emptyDir in the pod, or nothing: if the
# directory cannot be created or written, Node leaves the cache off and the
# process runs normally, only ~50 ms slower to start).
ENV NODE_ENV=production \
    NODE_COMPILE_CACHE=/tmp/originguard-compile-cache
WORKDIR /app
# No node_modules: every runtime dependency is inside the bundle (hack/build.ts).
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
# `originguard` on PATH, exec form below: node is PID 1 and gets SIGTERM itself
# (no shell, no npm in between); both subcommands drain and exit 0 on SIGTERM.
# The image's npm and corepack are removed: nothing runs them at runtime and
# they are the bulk of the base image's CVE surface.
RUN ln -s /app/bin/originguard.js /usr/local/bin/originguard \
 && chmod 0555 /app/bin/originguard.js \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
# The distroless "nonroot" uid; the chart and the injected sidecar set
# runAsNonRoot, readOnlyRootFilesystem and drop all capabilities.
USER 65532:65532
# Sidecar: edge listener (per Origin, e.g. 8080) and admin 9901; operator:
# metrics 8080, probes 8081, webhook 9443.
EXPOSE 8080 8081 9443 9901
ENTRYPOINT ["originguard"]
CMD ["--help"]
