#!/usr/bin/env node
// `npm run dev`: the relay (restarted on change by tsx watch) on :8080 and Vite's dev server with hot
// reload on :5173, which proxies /trpc, /peerjs and /.well-known to the relay. One command; Ctrl+C ends both.
import { spawn } from 'node:child_process';

const relayPort = process.env.PORT ?? '8080';
const children = [
  spawn(process.execPath, ['node_modules/tsx/dist/cli.mjs', 'watch', 'src/server/main.ts'], {
    stdio: 'inherit',
    env: { ...process.env, PORT: relayPort },
  }),
  spawn(process.execPath, ['node_modules/vite/bin/vite.js'], { stdio: 'inherit', env: { ...process.env, PEERCHAT_RELAY_PORT: relayPort } }),
];
let ending = false;
const end = (code) => {
  if (ending) return;
  ending = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  setTimeout(() => process.exit(code), 500).unref();
};
for (const c of children) c.on('exit', (code) => end(code ?? 0));
process.on('SIGINT', () => end(0));
process.on('SIGTERM', () => end(0));
