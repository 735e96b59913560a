# Build stage: compile the TypeScript and the spec validator, then keep production dependencies only.
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /build
COPY package.json package-lock.json tsconfig.json tsconfig.build.json spec.json ./
COPY src ./src
COPY scripts/compile-validator.mjs ./scripts/compile-validator.mjs
RUN npm ci --no-audit --no-fund && npx tsc -p tsconfig.build.json && node scripts/compile-validator.mjs && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: the compiled connector, its production dependencies and spec.json, run as the unprivileged node user.
FROM node:24.21.0-bookworm-slim
WORKDIR /airbyte/integration_code
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist/src ./dist/src
COPY package.json spec.json docker-entrypoint.sh ./
RUN chmod 0755 docker-entrypoint.sh
USER node

ENV AIRBYTE_ENTRYPOINT="/airbyte/integration_code/docker-entrypoint.sh"
ENTRYPOINT ["/airbyte/integration_code/docker-entrypoint.sh"]

LABEL io.airbyte.name=airbyte/destination-mqtt
LABEL io.airbyte.version=1.0.0
