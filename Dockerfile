# Build stage: compile the TypeScript and the spec validator, bundle the connector with its V8 code cache
# (scripts/bundle.mjs), then keep production dependencies only. The cache is made by this stage's Node.js, which is
# the runtime stage's too: V8 rejects a cache made by any other build.
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /build
COPY package.json package-lock.json tsconfig.json tsconfig.build.json spec.json ./
COPY src ./src
COPY scripts/compile-validator.mjs scripts/bundle.mjs scripts/bundle-options.mjs ./scripts/
RUN npm ci --no-audit --no-fund && npx tsc -p tsconfig.build.json && node scripts/compile-validator.mjs && node scripts/bundle.mjs && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: the bundled connector (dist/bundle/main, see src/launcher.ts), its production dependencies and
# spec.json, run as the unprivileged node user.
FROM node:24.21.0-bookworm-slim
WORKDIR /airbyte/integration_code
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist/bundle/main ./dist/bundle/main
COPY package.json spec.json docker-entrypoint.sh ./
RUN chmod 0755 docker-entrypoint.sh
USER node

ENV AIRBYTE_ENTRYPOINT="/airbyte/integration_code/docker-entrypoint.sh"
ENTRYPOINT ["/airbyte/integration_code/docker-entrypoint.sh"]

LABEL io.airbyte.name=airbyte/destination-mqtt
LABEL io.airbyte.version=1.0.0
