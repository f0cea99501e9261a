# syntax=docker/dockerfile:1
# Multi-stage: build with dev dependencies, run with production dependencies only, as a non-root user.
# Node 26 is the Active LTS (Node 20 reached end of life on 2026-04-30). Both stages name the same major:
# e2e/prodBuild.test.ts reads it from these FROM lines and runs the production bundle under it.

FROM node:26-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build

FROM node:26-trixie-slim AS runtime
ENV NODE_ENV=production PEERCHAT_ENV=production PORT=8080
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8080
# Keep the heap small enough for a 256 MB VM; the relay holds no history. A small young generation
# (--max-semi-space-size=4, in MiB) stops a burst of logins from growing it for good: measured by
# bench:relay, 5,000 idle clients went from ~220 MB to ~146 MB resident.
CMD ["node", "--max-old-space-size=160", "--max-semi-space-size=4", "dist/server/main.js"]
