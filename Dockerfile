# syntax=docker/dockerfile:1
#
# pod-rebalancer container image.
#
#   docker build -t pod-rebalancer:0.1.0 .
#
# Three stages so that the runtime image holds the compiled JavaScript and the production
# dependencies only: no TypeScript, no jest, no npm, no shell.
# Node.js 24 is the supported LTS (package.json "engines"; Node 20 reached end of life on
# 2026-04-30). The build stages pin the exact release; keep the build and the runtime on the same
# Node major (test/deploy/dockerfile.test.ts checks it). Pin the images by digest (e.g. with
# Renovate) for reproducible builds.

# --- build: all dependencies (dev included) to compile src/ to dist/ -----------------------------
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /app
# Manifests first so the dependency layer is cached until the lockfile changes.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- prod-deps: production dependencies only, installed from the same lockfile -------------------
# A separate stage because the distroless runtime has no npm; it never sees the build stage's
# node_modules, so no dev dependency can leak into the image. No production dependency needs an
# install script, so scripts are not run.
FROM node:24.21.0-bookworm-slim AS prod-deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime: distroless Node 24 (LTS), no shell, non-root ----------------------------------------
# Distroless publishes one tag per Node major (nodejs24-debian12), patched in place: pin it by digest
# in your registry mirror (or with Renovate) for a byte-for-byte reproducible image.
FROM gcr.io/distroless/nodejs24-debian12:nonroot AS runtime
WORKDIR /app
ENV NODE_ENV=production
# package.json is needed at run time: its "type": "module" makes Node load dist/*.js as ESM.
# Files stay owned by root, so the service user cannot modify its own code.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# 65532 is distroless' "nonroot". Numeric, so the kubelet can verify runAsNonRoot from the image.
USER 65532:65532
EXPOSE 8080
# The distroless entrypoint is /nodejs/bin/node, so node itself is PID 1 (exec form, no shell in
# between). PID 1 gets no default signal handlers from the kernel, but the service installs its own
# SIGTERM handler (drain in-flight requests, then exit), which is all Kubernetes sends before
# SIGKILL. node spawns no child processes, so there are no zombies to reap and tini is not needed.
CMD ["--enable-source-maps", "dist/cli.js", "serve"]
