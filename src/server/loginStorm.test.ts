// SPEC.md R19: what a relay restart's login storm meets before any relay code runs -- the kernel's accept
// queue.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Relay } from './createRelay';
import { startTestRelay } from './testKit';

let relay: Relay;
let dir: string;

before(async () => {
  relay = await startTestRelay();
  dir = mkdtempSync(join(tmpdir(), 'peerchat-storm-'));
});
after(async () => {
  await relay.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Opens `n` TCP connections to `port` at once from another process and reports how many completed their
 * handshake within `withinMs`, then closes them. Another process, so its connects proceed while this one
 * is blocked.
 */
const CONNECTOR = `
const net = require('node:net');
const { port, n, withinMs } = JSON.parse(process.argv[2]);
process.send('go');
const sockets = [];
let connected = 0;
const start = Date.now();
for (let i = 0; i < n; i++) {
  const s = net.connect({ port, host: '127.0.0.1' });
  s.on('connect', () => { if (Date.now() - start <= withinMs) connected++; });
  s.on('error', () => {});
  sockets.push(s);
}
setTimeout(() => {
  for (const s of sockets) s.destroy();
  process.send({ connected });
}, withinMs);
`;

describe('login storm', () => {
  it('R19 a burst of connections beyond Node\'s default backlog (511) completes its TCP handshakes while the relay accepts none', async () => {
    // The queue is capped by net.core.somaxconn: the burst is as large as the host allows, up to 1,000.
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    const n = Math.min(1000, somaxconn);
    const file = join(dir, 'connector.cjs');
    writeFileSync(file, CONNECTOR);
    // A dropped SYN is retried after 1 s: within 500 ms, only queued connections complete.
    const withinMs = 500;
    const child = fork(file, [JSON.stringify({ port: relay.port, n, withinMs })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const result = new Promise<{ connected: number }>((resolve, reject) => {
      child.on('message', (m) => {
        if (m === 'go') {
          // Blocks this process (the relay's) while the burst arrives: nothing is accepted, so every
          // connection must wait in the kernel's queue.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, withinMs + 300);
          return;
        }
        resolve(m as { connected: number });
      });
      child.once('exit', (code) => reject(new Error(`connector exited ${code}`)));
    });
    const { connected } = await result;
    child.kill();
    assert.equal(connected, n, `${n - connected} of ${n} connections were dropped by a full accept queue`);
  });
});
