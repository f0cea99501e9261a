// The virtual-client CLI and the relay's child process (SPEC.md VC6-VC9), run as real processes the way
// a user or the relay runs them.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { eventually } from '../src/server/testKit';
import { startRelayWithSignalling } from './fixtures/relayWithSignalling';

const cli = fileURLToPath(new URL('../src/virtual/main.ts', import.meta.url));
const relayMain = fileURLToPath(new URL('../src/server/main.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');
const dir = mkdtempSync(join(tmpdir(), 'peerchat-vcli-'));
const procs: ChildProcess[] = [];
const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const c of cleanup.reverse()) await c().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

/** For runs that need no relay in this process (spawnSync blocks this process's event loop). */
function runCli(args: string[]) {
  return spawnSync(process.execPath, ['--import', tsx, cli, ...args], { encoding: 'utf8', timeout: 30_000 });
}

/** A started process whose stdout lines are collected. */
function start(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const p = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  const lines: string[] = [];
  let buf = '';
  p.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  let stderr = '';
  p.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
  return { p, lines, exited, stderr: () => stderr };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('virtual client CLI', () => {
  it('VC8 an unreachable relay is one clear error naming it, and a non-zero exit', { timeout: 40_000 }, async () => {
    const port = await freePort();
    const r = runCli(['--relay', `http://127.0.0.1:${port}`, '--key-dir', join(dir, 'unreachable')]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim(), `peerchat-virtual: cannot reach relay at http://127.0.0.1:${port}: ECONNREFUSED`);
  });

  it('VC8 a relay that refuses the login: its reason code, and a non-zero exit', { timeout: 40_000 }, async () => {
    // One login attempt per minute: the challenge takes it, the login is refused RATE_LIMITED.
    const relay = await startRelayWithSignalling({ limits: { loginsPerIpPerMinute: 1 } });
    cleanup.push(() => relay.close());
    // Not spawnSync: the relay runs in this process and must keep answering.
    const r = start(['--import', tsx, cli, '--relay', relay.url, '--key-dir', join(dir, 'refused')]);
    assert.deepEqual(await r.exited, { code: 1, signal: null });
    assert.match(r.stderr(), new RegExp(`^peerchat-virtual: relay at ${relay.url} refused the login: RATE_LIMITED`));
    await eventually(() => relay.counts().connections === 0, 'the refused client left');
  });

  it('VC8 --help explains the options; a bad option is a usage error', { timeout: 40_000 }, () => {
    const help = runCli(['--help']);
    assert.equal(help.status, 0);
    for (const opt of ['--relay', '--count', '--key-dir', '--max-age', '--max-bytes', '--status-every']) assert.ok(help.stdout.includes(opt), opt);
    const bad = runCli(['--count', 'many']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--count: expected a whole number/);
  });

  it('VC6 VC7 VC8 ten clients in one process: status lines, then SIGTERM ends them all and the process exits 0', { timeout: 40_000 }, async () => {
    const relay = await startRelayWithSignalling();
    cleanup.push(() => relay.close());
    const keyDir = join(dir, 'ten');
    const run = start(['--import', tsx, cli, '--relay', relay.url, '--count', '10', '--key-dir', keyDir, '--status-every', '100ms', '--json']);
    const status = () => run.lines.map((l) => JSON.parse(l) as { who: string; event: string; online?: boolean; peers?: number });
    await eventually(() => relay.counts().sessions === 10 && relay.signalling.stats().sockets === 10, 'ten sessions and Peers');
    // Every client reports itself online and sees the nine others.
    await eventually(() => new Set(status().filter((s) => s.event === 'status' && s.online && s.peers === 9).map((s) => s.who)).size === 10, 'ten online status lines');
    const keys = new Map(status().filter((s) => s.event === 'started').map((s) => [s.who, (s as unknown as { publicKey: string }).publicKey]));
    assert.equal(keys.size, 10);
    for (let i = 1; i <= 10; i++) assert.equal(statSync(join(keyDir, `virtual-${i}.key`)).mode & 0o777, 0o600);
    run.p.kill('SIGTERM');
    assert.deepEqual(await run.exited, { code: 0, signal: null }, run.stderr());
    // Each client's own count of what it still held (links, Peer, transport, sockets, timers).
    assert.deepEqual(status().filter((s) => s.event === 'stopped').map((s) => (s as unknown as { leftBehind: number }).leftBehind), [0]);
    await eventually(() => relay.counts().connections === 0 && relay.counts().sessions === 0 && relay.signalling.stats().sockets === 0, 'the relay is empty');

    // VC6: the same key files are used again, never rewritten.
    const again = start(['--import', tsx, cli, '--relay', relay.url, '--count', '2', '--key-dir', keyDir, '--status-every', '0', '--json']);
    await eventually(() => again.lines.filter((l) => l.includes('"event":"started"')).length === 2, 'two started');
    for (const line of again.lines.filter((l) => l.includes('"event":"started"'))) {
      const s = JSON.parse(line) as { who: string; publicKey: string; created: boolean };
      assert.equal(s.created, false);
      assert.equal(s.publicKey, keys.get(s.who));
    }
    again.p.kill('SIGINT');
    assert.deepEqual(await again.exited, { code: 0, signal: null }, again.stderr());
  });

  it('VC9 the relay runs its virtual clients as a child process, restarts it when it dies, and stops it on shutdown', { timeout: 40_000 }, async () => {
    const dataDir = join(dir, 'relay-data');
    const relay = start(['--import', tsx, relayMain], {
      PATH: process.env.PATH,
      PORT: '0',
      HOST: '127.0.0.1',
      PEERCHAT_DATA_DIR: dataDir,
      PEERCHAT_VIRTUAL_CLIENTS: '1',
    });
    const events = () => relay.lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
    await eventually(() => events().some((e) => e.event === 'relay_started'), 'the relay to start');
    const port = events().find((e) => e.event === 'relay_started')!.port as number;
    const health = async () => (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { sessions: number };
    await eventually(async () => (await health()).sessions === 1, 'the virtual client to log in');
    const first = events().find((e) => e.event === 'virtual_started')!.pid as number;

    // A crash of the child (as a wrtc segfault would be) leaves the relay up; the child comes back.
    process.kill(first, 'SIGKILL');
    await eventually(() => events().some((e) => e.event === 'virtual_exited' && e.signal === 'SIGKILL'), 'the relay to notice');
    await eventually(() => events().filter((e) => e.event === 'virtual_started').length === 2, 'a restart');
    await eventually(async () => (await health()).sessions === 1, 'the virtual client back online');
    const second = events().filter((e) => e.event === 'virtual_started')[1]!.pid as number;

    relay.p.kill('SIGTERM');
    assert.deepEqual(await relay.exited, { code: 0, signal: null }, relay.stderr());
    assert.throws(() => process.kill(second, 0), 'the virtual child is gone');
    assert.equal(statSync(join(dataDir, 'virtual', 'virtual-1.key')).mode & 0o777, 0o600);
  });
});
