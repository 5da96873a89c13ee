# syntax=docker/dockerfile:1
# quantum-bot: one peer per container. docs/deploy.md explains every choice made here.
#
#   docker build -t quantum-bot .
#   docker run -d --init --restart unless-stopped -p 9000:9000 -v qb-data:/data quantum-bot
#
# Both stages use the same image: the native addon of better-sqlite3 built in the first stage must
# match the Node ABI and the glibc of the second. Node 24 is the active LTS line (Node 20 reached its
# end of life in April 2026), the one CI tests (`engines` says >=24). Pin a digest (node:24-bookworm-slim@sha256:...)
# for reproducible builds.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------------------------------
# build: every dependency (dev included), the native module, the TypeScript build; then production only
FROM ${NODE_IMAGE} AS build
# better-sqlite3 compiles its addon from source when no prebuilt binary can be downloaded.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# node-gyp takes the headers shipped in the image instead of downloading them from nodejs.org.
ENV npm_config_nodedir=/usr/local
WORKDIR /app

# Dependencies first, so this layer is reused until the lockfile changes. --ignore-scripts skips the
# `prepare` script (there is no source to build yet); the one install script we need runs by name.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Build, drop the dev dependencies, and drop better-sqlite3's sources and object files (about 25 MB):
# only build/Release/better_sqlite3.node is loaded at run time. The last line proves it still loads.
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && cd node_modules/better-sqlite3 \
 && rm -rf deps src build/deps build/Release/obj build/Release/obj.target build/Release/.deps \
      build/Release/test_extension.node build/Release/*.a \
 && cd /app \
 && node -e "new (require('better-sqlite3'))(':memory:').close()"

# ---------------------------------------------------------------------------------------------------
# run: production dependencies, the built program, the dashboard's static files; no compiler, no source
FROM ${NODE_IMAGE} AS run
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=9000 \
    DATA_DIR=/data \
    LOG_DIR=/logs \
    CONTINUOUS_MODE=false
# CONTINUOUS_MODE=false: the container runtime (restart policy, compose, Kubernetes) is the supervisor;
# a crash ends the container and the runtime restarts it (see docs/deploy.md). Run the image without
# a restart policy? Pass -e CONTINUOUS_MODE=true and the built-in process supervisor respawns the worker.

WORKDIR /app
# The program files belong to root and are read-only for the user the peer runs as.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The dashboard is served from <app>/src/http/dashboard (src/http/routes/dashboard.ts).
COPY src/http/dashboard ./src/http/dashboard
COPY bot.js ./bot.js
COPY scripts/healthcheck.mjs ./scripts/healthcheck.mjs

# The official image's unprivileged user `node` (uid 1000) owns the two writable directories; a new
# volume mounted there starts with that ownership (a bind mount must be chown'ed to 1000 by hand).
RUN mkdir -p /data /logs && chown node:node /data /logs
USER node
VOLUME ["/data", "/logs"]
EXPOSE 9000

# /health answers 200 while the process lives (liveness). node, not curl: the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/scripts/healthcheck.mjs"]

# Exec form: node itself gets SIGTERM from `docker stop` (no shell in between to swallow it), stops
# gracefully within 8 s and exits 0. Run with an init (`--init`, or `init: true` in compose) so that
# node is not PID 1: the init reaps zombies and forwards signals.
STOPSIGNAL SIGTERM
CMD ["node", "bot.js"]
