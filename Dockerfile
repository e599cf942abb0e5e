# The apilog command as an image, for the consumer (`apilog consume`) and its one-shot jobs (`apilog migrate`,
# `apilog status`). docker-compose.yml builds it; by hand:
#
#   docker build -t apilog .
#   docker run --rm apilog status --brokers kafka:9092 --clickhouse http://clickhouse:8123
#
# Our CI machines have no Docker engine: test/unit/dockerCompose.test.ts checks this file instead (lint, stages,
# non-root user, that every file the CLI imports is copied, the health check against the metrics port).

ARG NODE_IMAGE=node:20-bookworm-slim

# --- 1. Production dependencies and the build. Compilers live in this stage only: zstd-napi builds libzstd from the
# sources in its package when no prebuilt binary can be fetched. `npm install` keeps to the lock (`npm ci` refuses a
# lock that lacks other platforms' optional binaries; see .ci/run), and its `prepare` script compiles the TypeScript
# into dist/ (TypeScript is a production dependency for that reason), which is what bin/apilog.js runs.
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY cli ./cli
COPY consumer ./consumer
COPY clickhouse ./clickhouse
COPY producer ./producer
COPY runtime ./runtime
COPY schemas ./schemas
COPY stack ./stack
COPY docs/queries.sql ./docs/queries.sql
RUN npm install --omit=dev --no-audit --no-fund \
    && test -f dist/cli/main.js \
    && npm cache clean --force

# --- 2. Runtime: Node, the dependencies, the built JavaScript (and the sources it was built from, which the
# command falls back to), owned by root and read-only for the process, which runs as the image's unprivileged `node`
# user.
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY cli ./cli
COPY consumer ./consumer
COPY clickhouse ./clickhouse
COPY producer ./producer
COPY runtime ./runtime
COPY schemas ./schemas
COPY stack ./stack
COPY docs/queries.sql ./docs/queries.sql
USER node
# /metrics, /healthz, /readyz of `apilog consume` (--metrics-port; 0.0.0.0 so that Prometheus can reach it).
EXPOSE 9464
# Ready: joined to the group and no failed insert or commit in the last 5 s (consumer/healthServer.ts). The
# one-shot commands (migrate, status) serve nothing: give them `--no-healthcheck` or ignore their health.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:9464/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/apilog.js"]
CMD ["consume", "--metrics-host", "0.0.0.0", "--metrics-port", "9464"]
