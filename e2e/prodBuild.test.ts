// R12/R13: the production build, with production dependencies only, started exactly as the Dockerfile
// starts it (same command, same environment). No Docker engine runs here, so this is what we can test.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomSecretKey } from '../src/shared/crypto/ed25519';
import { nodeBackend } from '../src/shared/crypto/nodeBackend';
import { toB64url } from '../src/shared/encoding';
import { WebSocket } from 'ws';
import { connectRelay } from '../src/shared/client/relayConnection';

const repo = new URL('..', import.meta.url).pathname;

/** The runtime stage's ENV and CMD, read from the Dockerfile itself so the test cannot drift from it. */
function dockerRuntime(): { env: Record<string, string>; cmd: string[] } {
  const text = readFileSync(join(repo, 'Dockerfile'), 'utf8');
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const m of runtime.matchAll(/^ENV\s+(.+)$/gm)) {
    for (const pair of m[1]!.trim().split(/\s+/)) {
      const [k, v] = pair.split('=');
      env[k!] = v!;
    }
  }
  const cmd = JSON.parse(/^CMD\s+(\[.*\])\s*$/m.exec(runtime)![1]!) as string[];
  return { env, cmd };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function start(dir: string, env: Record<string, string>): { proc: ChildProcess; output: () => string } {
  const { cmd } = dockerRuntime();
  let out = '';
  const proc = spawn(cmd[0]!, cmd.slice(1), {
    cwd: dir,
    env: { PATH: process.env.PATH!, HOME: dir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  return { proc, output: () => out };
}

async function waitHealthy(port: number, proc: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`relay exited with ${proc.exitCode}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('relay never became healthy');
}

const exited = (p: ChildProcess): Promise<number | null> =>
  p.exitCode !== null ? Promise.resolve(p.exitCode) : new Promise((r) => p.once('exit', (code) => r(code)));

describe('R13 production build started as the Dockerfile starts it', () => {
  let dir: string;

  before(() => {
    const build = spawnSync('npm', ['run', 'build'], { cwd: repo, encoding: 'utf8' });
    assert.equal(build.status, 0, build.stdout + build.stderr);
    dir = mkdtempSync(join(tmpdir(), 'peerchat-prod-'));
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(repo, f), join(dir, f));
    cpSync(join(repo, 'dist'), join(dir, 'dist'), { recursive: true });
    const ci = spawnSync('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: dir,
      encoding: 'utf8',
    });
    assert.equal(ci.status, 0, ci.stdout + ci.stderr);
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('R12 refuses to start in production without the relay key, and says why', async () => {
    const { env } = dockerRuntime();
    const { proc, output } = start(dir, { ...env, PORT: String(await freePort()) });
    const code = await exited(proc);
    assert.notEqual(code, 0);
    assert.match(output(), /PEERCHAT_RELAY_KEY/);
  });

  it('R13 serves health, relay info, the web app and a login; stops cleanly on SIGTERM', async () => {
    const { env } = dockerRuntime();
    const backend = nodeBackend();
    const relaySecret = randomSecretKey();
    const relayKey = toB64url(await backend.publicKeyOf(relaySecret));
    const port = await freePort();
    const { proc, output } = start(dir, { ...env, PORT: String(port), PEERCHAT_RELAY_KEY: toB64url(relaySecret) });
    try {
      await waitHealthy(port, proc);
      const info = await (await fetch(`http://127.0.0.1:${port}/.well-known/peerchat.json`)).json();
      assert.equal(info.publicKey, relayKey);
      const page = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<div id="root">/);

      const conn = await connectRelay({
        url: `ws://127.0.0.1:${port}/trpc`,
        secretKey: randomSecretKey(),
        name: 'prod-check',
        kind: 'browser',
        backend,
        WebSocket,
      });
      assert.equal(conn.login.info.publicKey, relayKey);
      conn.close();
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited(proc), 0, output());
  });
});
