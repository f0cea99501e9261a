// SPEC.md R10, R11: sockets that never read their replies cannot make the relay queue them without bound.
// The attack as it was observed: sockets that never log in send frames holding a batch of 1,000 `info`
// queries at 40 frames/s and never read. The relay runs in its own process with the Dockerfile's Node flags
// (production mode, production limits), so its RSS is the relay's alone and an out-of-memory crash shows.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import superjson from 'superjson';
import { WebSocket } from 'ws';
import { randomSecretKey } from '../src/shared/crypto/ed25519';
import { toB64url } from '../src/shared/encoding';
import type { AppRouter } from '../src/server/router';

const repo = new URL('..', import.meta.url).pathname;
/** The bound: four never-reading sockets from four addresses, together. */
const MAX_GROWTH_BYTES = 64 * 1024 * 1024;
const ATTACKERS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const ATTACK_MS = 6_000;
const FRAMES_PER_SECOND = 40; // under the production flood budget (50), as in the report
const BATCH = JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ id: i, method: 'query', params: { path: 'info', input: {} } })));

/** The Node flags of the Dockerfile's runtime CMD (heap limits), read from it so the test cannot drift. */
function dockerNodeFlags(): string[] {
  const text = readFileSync(join(repo, 'Dockerfile'), 'utf8');
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  const cmd = JSON.parse(/^CMD\s+(\[.*\])\s*$/m.exec(runtime)![1]!) as string[];
  return cmd.slice(1).filter((a) => a.startsWith('--'));
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function rss(port: number): Promise<number> {
  let text: string;
  try {
    text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch (err) {
    throw new Error(`the relay stopped answering /metrics (crashed or saturated): ${String(err)}`);
  }
  return Number(/^peerchat_process_resident_memory_bytes (\d+)/m.exec(text)![1]);
}

/**
 * One attacker: a raw socket from `address` that never reads and sends a 1,000-request batch every 25 ms;
 * when the relay cuts it, it connects again (production allows 120 connections a minute per address).
 */
function attack(url: string, address: string, until: number, stats: { connections: number }): Promise<void> {
  return new Promise((done) => {
    const connect = (): void => {
      if (Date.now() >= until) return done();
      stats.connections++;
      const ws = new WebSocket(url, { localAddress: address });
      let timer: NodeJS.Timeout | null = null;
      ws.on('error', () => {}); // the relay cutting us shows up as errors on our writes
      ws.on('open', () => {
        (ws as unknown as { _socket: { pause(): void } })._socket.pause();
        timer = setInterval(() => {
          if (Date.now() >= until) ws.terminate();
          else if (ws.readyState === WebSocket.OPEN) ws.send(BATCH);
        }, 1000 / FRAMES_PER_SECOND);
      });
      ws.on('close', () => {
        if (timer) clearInterval(timer);
        setTimeout(connect, 50);
      });
    };
    connect();
  });
}

describe('R10 R11 never-reading sockets against the production relay', () => {
  let relay: ChildProcess;
  let port: number;
  let output = '';

  before(async () => {
    port = await freePort();
    relay = spawn(process.execPath, [...dockerNodeFlags(), '--import', 'tsx', join(repo, 'src/server/main.ts')], {
      cwd: repo,
      env: {
        PATH: process.env.PATH!,
        PEERCHAT_ENV: 'production',
        PEERCHAT_RELAY_KEY: toB64url(randomSecretKey()),
        PORT: String(port),
        PEERCHAT_PUBLIC_ORIGIN: `http://127.0.0.1:${port}`, // required in production (L9)
        HOST: '127.0.0.1',
        PEERCHAT_LOG_LEVEL: 'error',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    relay.stdout!.on('data', (d) => (output += d));
    relay.stderr!.on('data', (d) => (output += d));
    for (let i = 0; ; i++) {
      assert.equal(relay.exitCode, null, `relay exited: ${output}`);
      assert.ok(i < 300, `relay never became healthy: ${output}`);
      try {
        if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    if (relay.exitCode === null) {
      relay.kill('SIGTERM');
      await new Promise((r) => relay.once('exit', r));
    }
  });

  it('R10 four never-reading sockets from four addresses grow the RSS by < 64 MiB; the relay stays up and answers others', async () => {
    const url = `ws://127.0.0.1:${port}/trpc`;
    const wsClient = createWSClient({ url, WebSocket: WebSocket as never, retryDelayMs: () => 100 });
    const honest = createTRPCClient<AppRouter>({ links: [wsLink({ client: wsClient, transformer: superjson })] });
    try {
      // Warm: the honest client's connection and the code paths a query takes exist before the baseline.
      for (let i = 0; i < 5; i++) await honest.info.query();
      const baseline = await rss(port);
      let peak = baseline;
      const until = Date.now() + ATTACK_MS;
      const stats = { connections: 0 };
      const attackers = Promise.all(ATTACKERS.map((a) => attack(url, a, until, stats)));
      let answered = 0;
      while (Date.now() < until) {
        assert.equal(relay.exitCode, null, `relay died: ${output}`);
        peak = Math.max(peak, await rss(port));
        // The honest client keeps being served (one query at a time, well within its own budget).
        await honest.info.query();
        answered++;
        await new Promise((r) => setTimeout(r, 100));
      }
      await attackers;
      peak = Math.max(peak, await rss(port));
      assert.equal(relay.exitCode, null, `relay died: ${output}`);
      assert.ok(answered > 0);
      assert.ok(stats.connections >= ATTACKERS.length);
      const growth = peak - baseline;
      assert.ok(growth < MAX_GROWTH_BYTES, `RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB (baseline ${(baseline / 2 ** 20).toFixed(1)} MiB)`);
      // Still serving once the attack is over.
      assert.equal(typeof (await honest.info.query()).publicKey, 'string');
      process.stdout.write(`# never-reading attack: RSS ${(baseline / 2 ** 20).toFixed(1)} -> peak ${(peak / 2 ** 20).toFixed(1)} MiB, ${stats.connections} attacker connections, ${answered} honest queries answered\n`);
    } finally {
      await wsClient.close();
    }
  });
});
