// R12/R13: the production build, with production dependencies only, started exactly as the Dockerfile
// starts it (same command, same environment, same Node major as its FROM line). No Docker engine runs here,
// so this is what we can test. The rest of the suite runs on the machine's Node; only this relay process
// runs under the image's major (installed from the registry into a cache, scripts/dockerNode.mjs).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomSecretKey } from '../src/shared/crypto/ed25519';
import { nodeBackend } from '../src/shared/crypto/nodeBackend';
import { toB64url } from '../src/shared/encoding';
import { WebSocket } from 'ws';
import { connectRelay } from '../src/shared/client/relayConnection';
// @ts-expect-error -- a plain .mjs helper shared with bench:relay, without type declarations
import { dockerNodeMajor, dockerRuntime, majorOf, nodeForMajor } from '../scripts/dockerNode.mjs';

const repo = new URL('..', import.meta.url).pathname;


async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The image's Node: a binary of the Dockerfile's major, installed once if this machine runs another. */
const major: number = dockerNodeMajor(repo);
let nodeBin = '';

function start(dir: string, env: Record<string, string>): { proc: ChildProcess; output: () => string } {
  const { cmd } = dockerRuntime(repo);
  assert.equal(cmd[0], 'node', 'the image starts the relay with `node`');
  let out = '';
  const proc = spawn(nodeBin, cmd.slice(1), {
    cwd: dir,
    // The image's node first on PATH too, as in the image.
    env: { PATH: `${join(nodeBin, '..')}:${process.env.PATH!}`, HOME: dir, ...env },
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
    nodeBin = nodeForMajor(major);
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

  it('R13 the Dockerfile runs an LTS Node that engines allows, and the relay runs under that major', async () => {
    // Even majors become LTS; engines must admit the image's major.
    assert.equal(major % 2, 0, `node:${major} is not an LTS line`);
    const engines = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).engines.node as string;
    const ranges = engines.split('||').map((r) => r.trim());
    assert.ok(ranges.some((r) => r === `^${major}` || r.startsWith(`^${major}.`)), `engines.node (${engines}) admits ${major}`);
    assert.equal(majorOf(nodeBin), major);
    const { env } = dockerRuntime(repo);
    const port = await freePort();
    const { proc, output } = start(dir, { ...env, PORT: String(port), PEERCHAT_RELAY_KEY: toB64url(randomSecretKey()), PEERCHAT_PUBLIC_ORIGIN: 'https://chat.example' });
    try {
      await waitHealthy(port, proc);
      // The running relay process is that binary (Linux: /proc/<pid>/exe).
      assert.equal(realpathSync(readlinkSync(`/proc/${proc.pid}/exe`)), realpathSync(nodeBin), output());
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited(proc), 0, output());
  });

  it('R12 refuses to start in production without the relay key, and says why', async () => {
    const { env } = dockerRuntime(repo);
    const { proc, output } = start(dir, { ...env, PORT: String(await freePort()) });
    const code = await exited(proc);
    assert.notEqual(code, 0);
    assert.match(output(), /PEERCHAT_RELAY_KEY/);
  });

  it('R13 serves health, relay info, the web app and a login; stops cleanly on SIGTERM', async () => {
    const { env } = dockerRuntime(repo);
    const backend = nodeBackend();
    const relaySecret = randomSecretKey();
    const relayKey = toB64url(await backend.publicKeyOf(relaySecret));
    const port = await freePort();
    // Production needs its public origin (SPEC.md L9); this login dials loopback, which the relay also takes.
    const { proc, output } = start(dir, { ...env, PORT: String(port), PEERCHAT_RELAY_KEY: toB64url(relaySecret), PEERCHAT_PUBLIC_ORIGIN: 'https://chat.example' });
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
