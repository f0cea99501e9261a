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
# MALLOC_ARENA_MAX=2: glibc gives each thread that mallocs (V8's GC and compiler workers) its own arena, and
# after a login storm each kept 1-3 MB of freed fragments (bench:relay, /proc smaps: four arenas +7.6 MB at
# 1,000 clients); two arenas cap that. No throughput cost measured (bench:relay, CPU per delivery).
ENV NODE_ENV=production PEERCHAT_ENV=production PORT=8080 MALLOC_ARENA_MAX=2
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8080
# Keep the heap small enough for a 256 MB VM; the relay holds no history. The young generation is two
# semi-spaces that grow to --max-semi-space-size (MiB) under allocation and never shrink back: 4 made it
# 8 MB, 2 makes it 4 MB (~4 MB less resident at any client count, bench:relay), at no CPU cost measured
# per delivery; 1 cost ~10% CPU per delivery (more scavenges). The default (16+) was ~220 MB resident at
# 5,000 idle clients against ~146 MB with 4. 1 was measured again with the relay's later code (bench:relay
# throughput, load 7-9, alternating runs): 3.40-3.60 us of relay CPU per delivery against 3.08-3.28 with 2, so 2
# stays. --minor-ms (a paged young generation, half the reservation) left 118-122 MB resident at 2,000
# clients against 104-109 MB without it.
# The relay itself (src/server/main.ts) calls glibc's malloc_trim through Node 26's node:ffi after major GCs
# and keeps 32 idle HTTP parsers instead of 1,000 (SPEC.md R18): node:ffi prints one ExperimentalWarning at start.
# --no-sparkplug: V8's baseline compiler put the login path's baseline code in code space after a storm
# (+1.0-1.5 MB at 1,000 clients, against +0.3-0.8 without it; RSS at 2,000 clients 101-103 MB against
# 103-106, bench:relay, three alternating runs each); hot code still gets Maglev and TurboFan, and the CPU per
# delivery stayed where it was (ratio to the minimal signing relay 0.85-0.92 without Sparkplug, 0.87-0.96 with,
# alternating runs at load 3-6).
# --expose-gc: the relay runs one major GC when it goes idle after a storm (src/server/idleGc.ts, SPEC.md R18):
# the storm's garbage was ~4 KiB per client of RSS that V8 left in place (bench:relay).
CMD ["node", "--max-old-space-size=160", "--max-semi-space-size=2", "--no-sparkplug", "--expose-gc", "dist/server/main.js"]
