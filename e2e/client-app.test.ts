// The built app as people get it: a fresh clone, `npm start` (build + relay serving the app), real
// Chromium. First visit makes an identity, a post is confirmed by the relay, a reload shows it from
// IndexedDB; with the relay stopped, a reload still opens the app from the service worker's shell and
// shows the history (SPEC.md UI2, UI10).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from './fixtures/chromium';

const repo = new URL('..', import.meta.url).pathname;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const exited = (p: ChildProcess): Promise<unknown> =>
  p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r));

describe('UI10 npm start from a fresh clone, in Chromium', () => {
  let dir: string;
  let browser: Browser;
  let relay: ChildProcess | null = null;
  let output = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'peerchat-clone-'));
    const clone = spawnSync('git', ['clone', '--quiet', '--no-hardlinks', repo, join(dir, 'app')], { encoding: 'utf8' });
    assert.equal(clone.status, 0, clone.stderr);
    // Dependencies: the checkout's own (npm ci would need the registry); the clone builds with them.
    symlinkSync(join(repo, 'node_modules'), join(dir, 'app', 'node_modules'));
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    if (relay && relay.exitCode === null) {
      relay.kill('SIGTERM');
      await exited(relay);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('UI10 creates an identity, posts, reloads and still sees the message; with the relay down the app and history still open', async () => {
    const port = await freePort();
    relay = spawn('npm', ['start'], {
      cwd: join(dir, 'app'),
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', PEERCHAT_DATA_DIR: join(dir, 'data') },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    relay.stdout!.on('data', (d) => (output += d));
    relay.stderr!.on('data', (d) => (output += d));
    const url = `http://localhost:${port}`;
    // Build then listen: wait for health, as long as the build takes on this machine.
    for (let ok = false; !ok; ) {
      if (relay.exitCode !== null) assert.fail(`npm start exited: ${output}`);
      ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
      if (!ok) await new Promise((r) => setTimeout(r, 250));
    }

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    await page.fill('[data-testid=display-name]', 'clone tester');
    await page.click('[data-testid=create-identity]');
    await page.waitForURL(/\/c\/general$/, { timeout: 30_000 });
    await page.waitForSelector('[data-testid=connection][data-state=online]', { timeout: 30_000 });
    await page.fill('[data-testid=composer]', 'hello from a fresh clone');
    await page.press('[data-testid=composer]', 'Enter');
    await page.waitForSelector('[data-testid=message][data-state=confirmed] >> text=hello from a fresh clone', { timeout: 30_000 });

    await page.reload();
    await page.waitForSelector('[data-testid=message] >> text=hello from a fresh clone', { timeout: 30_000 });
    // The service worker controls the page by now (it claims clients on activation).
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: 30_000 });

    // Relay down: stop the whole `npm start` process group.
    process.kill(-relay.pid!, 'SIGTERM');
    await exited(relay);
    await page.reload();
    await page.waitForSelector('[data-testid=message] >> text=hello from a fresh clone', { timeout: 30_000 });
    const state = await page.locator('[data-testid=connection]').getAttribute('data-state');
    assert.notEqual(state, 'online');
    assert.deepEqual(errors, []);
    await ctx.close();
  });
});
