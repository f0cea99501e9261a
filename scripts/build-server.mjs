#!/usr/bin/env node
// Bundles the relay (and the virtual client it can start) into dist/server with esbuild. npm packages
// stay external: the production image installs them with `npm ci --omit=dev`, so native ones
// (@roamhq/wrtc) keep their prebuilt binaries.
import { existsSync } from 'node:fs';
import { build } from 'esbuild';

const entries = { 'server/main': 'src/server/main.ts', 'virtual/main': 'src/virtual/main.ts' };
for (const [k, v] of Object.entries(entries)) if (!existsSync(v)) delete entries[k];

await build({
  entryPoints: entries,
  // Tests build into their own folder so a running relay never serves a half-written dist/.
  outdir: process.env.PEERCHAT_BUILD_OUT ?? 'dist',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
}).catch(() => process.exit(1));
