// What every end-to-end scenario needs (issue 10): the production bundle built into the scenario's own
// folder, the relay started from it as `npm start` starts it (on an ephemeral port, killable and
// restartable with the same key), virtual clients started as the README says, and people, each in their
// own Chromium process, driven by what they see. A failing scenario keeps screenshots, console logs and
// the relay's log in a folder under test-results/ and prints its path.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Envelope } from '../../src/shared/protocol/relay';
import { launchChromium } from '../fixtures/chromium';
import { sineWav } from '../fixtures/media';

const repo = new URL('../..', import.meta.url).pathname;
/** Generous: the machine is shared, the scenario's own bound is the test runner's timeout. */
export const WAIT = 45_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const exited = (p: ChildProcess): Promise<unknown> =>
  p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r));

export async function until(what: string, check: () => Promise<boolean> | boolean, ms = WAIT): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let built: string | null = null;
/**
 * The production bundle as `npm start` builds it, once per test file (each file is its own process) into
 * its own folder: scenarios in one file share it, and it goes when the process ends.
 */
function sharedBuild(): string {
  if (built) return built;
  const out = join(repo, 'test-results', `build-${process.pid}`);
  const vite = spawnSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--logLevel', 'warn', '--outDir', join(out, 'client'), '--emptyOutDir'], { cwd: repo, encoding: 'utf8' });
  assert.equal(vite.status, 0, vite.stderr);
  const server = spawnSync(process.execPath, ['scripts/build-server.mjs'], { cwd: repo, encoding: 'utf8', env: { ...process.env, PEERCHAT_BUILD_OUT: out } });
  assert.equal(server.status, 0, server.stderr);
  process.once('exit', () => rmSync(out, { recursive: true, force: true }));
  built = out;
  return out;
}

export class Stage {
  readonly dir: string;
  readonly build: string;
  private readonly procs = new Set<ChildProcess>();
  private readonly people: Actor[] = [];

  constructor(name: string) {
    // The runner says it made a loopback-only namespace: hold it to that, or the claim is untested.
    // (loopback and the runner's dead-end link, see scripts/test.mjs).
    if (process.env.PEERCHAT_E2E_NETNS) {
      const link = process.env.PEERCHAT_E2E_NETNS_LINK ?? 'e2e0';
      const others = Object.keys(networkInterfaces()).filter((i) => i !== 'lo' && i !== link && i !== `${link}p`);
      assert.deepEqual(others, [], `namespace ${process.env.PEERCHAT_E2E_NETNS} holds no other interface`);
    }
    this.dir = join(repo, 'test-results', `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
    mkdirSync(this.dir, { recursive: true });
    this.build = sharedBuild();
  }

  log(file: string, line: string): void {
    appendFileSync(join(this.dir, file), line.endsWith('\n') ? line : `${line}\n`);
  }

  spawnLogged(file: string, args: string[], env: Record<string, string>): ChildProcess {
    const p = spawn(process.execPath, args, { cwd: repo, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.on('data', (d) => this.log(file, String(d)));
    p.stderr!.on('data', (d) => this.log(file, String(d)));
    this.procs.add(p);
    p.once('exit', () => this.procs.delete(p));
    return p;
  }

  /**
   * `env`: extra relay settings, e.g. `{ PEERCHAT_MAX_ATTACHMENT_BYTES: '1048576' }`. `counted`: everyone
   * reaches the relay through a TCP proxy that counts the bytes both ways (`relay.bytes()`): what crossed
   * the relay, HTTP, tRPC and signalling alike, measured at the socket, not by the relay's own say.
   */
  async relay(env: Record<string, string> = {}, opts: { counted?: boolean } = {}): Promise<Relay> {
    const r = new Relay(this, await freePort(), env, opts.counted ? await freePort() : null);
    await r.start();
    return r;
  }

  /** `npm run virtual -- --relay URL --count N`, from the production bundle. */
  virtual(relay: Relay, count = 1): VirtualClients {
    const p = this.spawnLogged('virtual.log', [join(this.build, 'virtual/main.js'), '--relay', relay.url, '--count', String(count), '--key-dir', join(this.dir, 'virtual-keys'), '--json', '--status-every', '1s'], {});
    return new VirtualClients(p);
  }

  /** `tone`: this person's fake microphone plays a sine of that many Hz (voice scenarios). */
  async person(name: string, relay: Relay, viewport = { width: 1280, height: 800 }, opts: { tone?: number } = {}): Promise<Person> {
    const args: string[] = [];
    if (opts.tone) {
      const wav = join(this.dir, `${name}-${opts.tone}hz.wav`);
      writeFileSync(wav, sineWav(opts.tone));
      args.push('--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`, '--autoplay-policy=no-user-gesture-required');
    }
    const p = new Person(this, name, relay, await launchChromium(args), viewport);
    this.people.push(p);
    await p.open();
    return p;
  }

  /** Someone driven by another driver (e2e/scenarios/firefoxPerson.ts): screenshotted and closed with the rest. */
  own<A extends Actor>(a: A): A {
    this.people.push(a);
    return a;
  }

  async screenshots(tag: string): Promise<void> {
    for (const p of this.people) await p.screenshot(tag).catch(() => {});
  }

  private readonly closers: (() => Promise<void>)[] = [];
  onClose(f: () => Promise<void>): void {
    this.closers.push(f);
  }

  async close(keep: boolean): Promise<void> {
    for (const p of this.people) await p.close();
    for (const f of this.closers) await f().catch(() => {});
    for (const p of [...this.procs]) {
      p.kill('SIGTERM');
      await exited(p);
    }
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One scenario: its own stage; on failure the artifacts stay and their folder is printed. */
export function scenario(name: string, title: string, body: (s: Stage) => Promise<void>): void {
  it(title, async () => {
    const s = new Stage(name);
    let failed = true;
    try {
      await body(s);
      failed = false;
    } catch (err) {
      await s.screenshots('failure');
      console.error(`\n[e2e] ${title} failed: screenshots, console logs and relay log in ${s.dir}\n`);
      throw err;
    } finally {
      await s.close(failed || process.env.PEERCHAT_E2E_KEEP === '1');
    }
  });
}

export class Relay {
  private proc: ChildProcess | null = null;
  private proxy: Server | null = null;
  private counted = 0;
  readonly url: string;
  constructor(
    private readonly stage: Stage,
    readonly port: number,
    private readonly env: Record<string, string> = {},
    private readonly proxyPort: number | null = null,
  ) {
    this.url = `http://localhost:${proxyPort ?? port}`;
  }

  /** Bytes through the counting proxy so far, both directions (0 without `counted`). */
  bytes(): number {
    return this.counted;
  }

  /**
   * The relay's own counters (GET /metrics: peerchat_bytes_in_total + peerchat_bytes_out_total, payload
   * bytes on /trpc), summed; read from the relay's port directly, so the read is not counted itself.
   */
  async counterBytes(): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
    let sum = 0;
    for (const m of text.matchAll(/^peerchat_bytes_(?:in|out)_total(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+?\d+)?)$/gm)) sum += Number(m[1]);
    return sum;
  }

  private startProxy(): Promise<void> {
    if (this.proxyPort === null || this.proxy) return Promise.resolve();
    this.proxy = createServer((client) => {
      const upstream = connect(this.port, '127.0.0.1');
      client.on('data', (d) => (this.counted += d.length));
      upstream.on('data', (d) => (this.counted += d.length));
      client.pipe(upstream).pipe(client);
      // Either side ending or failing ends both; an error here must not reach the test process.
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    this.stage.onClose(() => new Promise<void>((r) => this.proxy!.close(() => r())));
    return new Promise((resolve) => this.proxy!.listen(this.proxyPort!, '127.0.0.1', () => resolve()));
  }

  /** As `npm start` runs it: the bundled relay serving the built app. Same data dir = same relay key. */
  async start(): Promise<void> {
    this.stage.log('relay.log', `--- relay start ${new Date().toISOString()}`);
    const p = this.stage.spawnLogged('relay.log', [join(this.stage.build, 'server/main.js')], {
      PORT: String(this.port),
      HOST: '127.0.0.1',
      PEERCHAT_DATA_DIR: join(this.stage.dir, 'relay-data'),
      PEERCHAT_STATIC_DIR: join(this.stage.build, 'client'),
      PEERCHAT_CHANNELS: 'general,random',
      PEERCHAT_NAME: 'e2e relay',
      // Behind the proxy the relay's origin is the proxy's (logins sign the origin they connect to, L9).
      ...(this.proxyPort !== null ? { PEERCHAT_PUBLIC_ORIGIN: this.url } : {}),
      ...this.env,
    });
    await this.startProxy();
    this.proc = p;
    await until('relay health', async () => {
      if (p.exitCode !== null) assert.fail('relay exited at start (see relay.log)');
      // A bounded fetch: one stuck connection must not outlive the wait it is part of.
      return fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.ok, () => false);
    });
  }

  /** Killed, not stopped: no graceful goodbye to the clients. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill('SIGKILL');
    await exited(p);
    this.proc = null;
    this.stage.log('relay.log', `--- relay killed ${new Date().toISOString()}`);
  }
}

export class VirtualClients {
  private out = '';
  constructor(readonly proc: ChildProcess) {
    proc.stdout!.on('data', (d) => (this.out += String(d)));
  }
  /** The newest status line's cached message count (the CLI's own report). */
  messages(): number {
    const all = [...this.out.matchAll(/"messages":(\d+)/g)];
    return all.length ? Number(all[all.length - 1]![1]) : 0;
  }
  /** The newest status line's count of attachments held with their bytes (0 if the CLI reports none). */
  attachments(): number {
    const all = [...this.out.matchAll(/"attachments":(\d+)/g)];
    return all.length ? Number(all[all.length - 1]![1]) : 0;
  }
  async stop(): Promise<void> {
    this.proc.kill('SIGTERM');
    await exited(this.proc);
  }
}

/** What the stage needs of anyone it closes: a screenshot for a failure, and an end. */
export interface Actor {
  readonly name: string;
  screenshot(tag: string): Promise<string>;
  close(): Promise<void>;
}

/** A message's visible text, e.g. "general 3 from alice": the tests post such unique lines. */
export const LINE = /[a-z]+ \d+ from [a-z]+/;

/** In the page: each shown message's unique line and state (the last such line in a row is its own text;
 * an earlier one is the quote of what it replies to). */
export function readLines(els: Element[], src: string): { text: string; state: string }[] {
  const re = new RegExp(src, 'g');
  return els.map((e) => ({ text: [...(e as HTMLElement).innerText.matchAll(re)].pop()?.[0] ?? '', state: e.getAttribute('data-state') ?? '' }));
}

/** What a page holds in its history database (src/shared/store/DexieStore.ts), read with plain IndexedDB. */
export interface Stored {
  /** `env` is the stored envelope itself, for checks such as verifyEnvelope in Node. */
  messages: { id: string; channel: string; text: string; author: string; env: Envelope }[];
  /** Every attachment record; `held` when its bytes are there, with their SHA-256 as computed in the page. */
  attachments: { id: string; name: string; sha256: string; held: boolean; heldSha256: string | null }[];
}

/** In the page (serialized: no closures, no helpers from outside). */
export async function readStored(dbName: string): Promise<Stored> {
  const db: IDBDatabase = await new Promise((resolve, reject) => {
    const req = indexedDB.open(dbName);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const all = (store: string): Promise<any[]> =>
    db.objectStoreNames.contains(store)
      ? new Promise((resolve, reject) => {
          const req = db.transaction(store).objectStore(store).getAll();
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(req.error);
        })
      : Promise.resolve([]);
  const [messages, attachments, bytes, chunks] = await Promise.all(['messages', 'attachments', 'attachmentBytes', 'attachmentChunks'].map(all));
  db.close();
  const b64url = (buf: ArrayBuffer) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const out: Stored = { messages: messages!.map((r) => ({ id: r.id, channel: r.channel, text: r.env.post.text, author: r.env.post.author, env: r.env })), attachments: [] };
  for (const a of attachments!) {
    const row = bytes!.find((b) => b.id === a.id);
    let content: Uint8Array | null = row?.bytes ?? null;
    if (row && !content) {
      const parts = chunks!.filter((c) => c.id === a.id).sort((x, y) => x.index - y.index);
      content = new Uint8Array(parts.reduce((n, c) => n + c.bytes.length, 0));
      let at = 0;
      for (const c of parts) content.set(c.bytes, (at += c.bytes.length) - c.bytes.length);
    }
    const heldSha256 = content ? b64url(await crypto.subtle.digest('SHA-256', content as Uint8Array<ArrayBuffer>)) : null;
    out.attachments.push({ id: a.id, name: a.meta.meta.name, sha256: a.meta.meta.sha256, held: !!row, heldSha256 });
  }
  return out;
}

/**
 * tsx compiles with esbuild's keepNames, which wraps named inner functions in `__name(...)`: a function
 * sent to a page (readStored) would throw there without this stand-in.
 */
export const KEEP_NAMES_SHIM = 'globalThis.__name = (f) => f;';

/**
 * Keeps every remote audio track a page's RTCPeerConnections receive (window.__remoteAudio), so a voice
 * scenario can tell by frequency whose tone arrives, without knowing how the app plays it.
 */
export const REMOTE_AUDIO_PROBE = `(() => {
  const Orig = window.RTCPeerConnection;
  if (!Orig) return;
  window.__remoteAudio = [];
  window.RTCPeerConnection = class extends Orig {
    constructor(...a) {
      super(...a);
      this.addEventListener('track', (e) => { if (e.track.kind === 'audio') window.__remoteAudio.push(e.track); });
    }
  };
})();`;

/** The history database's name (src/client/history/historyDb.ts). */
export const HISTORY_DB = 'peerchat-history';

export const MESSAGES = '[data-testid=message], [data-testid=own-pending]';

/** Waits until the open channel shows exactly `expected` (as a set), every one confirmed; returns the order. */
export async function seesConfirmed(who: { name: string; lines(): Promise<{ text: string; state: string }[]> }, expected: string[]): Promise<string[]> {
  let last: { text: string; state: string }[] = [];
  await until(`${who.name} to see ${expected.length} confirmed messages`, async () => {
    last = await who.lines();
    return last.length === expected.length && last.every((l) => l.state === 'confirmed') && expected.every((e) => last.some((l) => l.text === e));
  }).catch((err) => {
    throw new Error(`${(err as Error).message}; ${who.name} sees ${JSON.stringify(last)}`);
  });
  return last.map((l) => l.text);
}

export class Person implements Actor {
  page!: Page;
  errors: string[] = [];
  private closed = false;
  constructor(
    private readonly stage: Stage,
    readonly name: string,
    readonly relay: Relay,
    private readonly browser: Browser,
    private readonly viewport: { width: number; height: number },
  ) {}

  async open(): Promise<void> {
    const ctx = await this.browser.newContext({ viewport: this.viewport });
    // Every implicit wait (click, fill, waitFor, waitForURL without their own timeout) gets the scenario's
    // generous deadline, not Playwright's 30 s: the machine is shared, and a loaded one is no failure.
    ctx.setDefaultTimeout(WAIT);
    ctx.setDefaultNavigationTimeout(WAIT);
    this.page = await ctx.newPage();
    await this.page.addInitScript(KEEP_NAMES_SHIM);
    await this.page.addInitScript(REMOTE_AUDIO_PROBE);
    this.stage.log(`${this.name}-console.log`, `--- ${this.name} opens ${this.relay.url} at ${this.viewport.width}x${this.viewport.height}`);
    this.page.on('console', (m) => this.stage.log(`${this.name}-console.log`, `[${m.type()}] ${m.text()}`));
    this.page.on('pageerror', (e) => {
      this.errors.push(String(e));
      this.stage.log(`${this.name}-console.log`, `[pageerror] ${String(e)}`);
    });
    await this.page.goto(this.relay.url);
  }

  /** First visit: a display name (by default the person's), "Start chatting", then the app online in #general. */
  async createIdentity(displayName = this.name): Promise<void> {
    await this.page.getByLabel('What should people call you?').fill(displayName);
    await this.page.getByRole('button', { name: 'Start chatting' }).click();
    await this.page.waitForURL(/\/c\/general$/, { timeout: WAIT });
    await this.online();
  }

  async online(): Promise<void> {
    await this.page.getByTestId('connection').getByText('Online', { exact: true }).waitFor({ timeout: WAIT });
  }

  async openChannel(id: string): Promise<void> {
    const link = this.page.getByRole('navigation', { name: 'Channels' }).getByRole('link', { name: new RegExp(`^#?\\s*${id}`) });
    if (!(await link.isVisible())) await this.page.getByRole('button', { name: 'Channels' }).click();
    await link.click();
    await this.page.waitForURL(new RegExp(`/c/${id}$`), { timeout: WAIT });
  }

  async send(text: string): Promise<void> {
    const box = this.page.getByRole('textbox', { name: /^Message #/ });
    await box.fill(text);
    await box.press('Enter');
  }

  /** Names in the member list's "Online" section (people, not virtual clients). */
  async peopleOnline(): Promise<number> {
    return this.page.locator('[data-testid=member][data-kind=browser]').count();
  }

  /** The unique lines of the messages shown in the open channel, top to bottom, and their states. */
  async lines(): Promise<{ text: string; state: string }[]> {
    return this.page.locator(MESSAGES).evaluateAll(readLines, LINE.source);
  }

  seesConfirmed(expected: string[]): Promise<string[]> {
    return seesConfirmed(this, expected);
  }

  /** UI contract: an image attachment is a button "Open photo <name>" around its img. */
  photo(name: string) {
    return this.page.getByRole('button', { name: `Open photo ${name}` });
  }

  /** Waits until the photo shows at full size (data-full="true": the bytes are here and verified). */
  async seesFullPhoto(name: string): Promise<void> {
    await this.photo(name).locator('img[data-full="true"]').waitFor({ timeout: WAIT });
  }

  /**
   * The loudest frequency (Hz, to the FFT bin) of each live remote audio track, with its level in dB;
   * -Infinity level for silence. Tracks are measured at once for ~0.5 s.
   */
  remoteTones(): Promise<{ hz: number; db: number }[]> {
    return this.page.evaluate(async () => {
      const w = window as unknown as { __remoteAudio?: MediaStreamTrack[] };
      const tracks = (w.__remoteAudio ?? []).filter((t) => t.readyState === 'live');
      const ctx = new AudioContext();
      await ctx.resume();
      const nodes = tracks.map((t) => {
        // Chromium only feeds WebAudio from a remote stream that also plays in a media element.
        const stream = new MediaStream([t]);
        const el = new Audio();
        el.srcObject = stream;
        el.muted = true;
        void el.play().catch(() => {});
        const an = ctx.createAnalyser();
        an.fftSize = 8192;
        ctx.createMediaStreamSource(stream).connect(an);
        return { an, el };
      });
      await new Promise((r) => setTimeout(r, 600));
      const out = nodes.map(({ an, el }) => {
        const bins = new Float32Array(an.frequencyBinCount);
        an.getFloatFrequencyData(bins);
        let best = 0;
        for (let i = 1; i < bins.length; i++) if (bins[i]! > bins[best]!) best = i;
        el.srcObject = null;
        return { hz: Math.round((best * ctx.sampleRate) / an.fftSize), db: bins[best]! };
      });
      await ctx.close();
      return out;
    });
  }

  /** The composer form (UI contract: refusals are a role="alert" inside it). */
  composer() {
    return this.page.getByRole('form', { name: 'Send a message' });
  }

  /** UI contract: "Attach files" opens the hidden input with data-testid="attach-input". */
  async attach(files: { name: string; mimeType: string; buffer: Buffer }[]): Promise<void> {
    await this.page.getByRole('button', { name: 'Attach files' }).waitFor({ timeout: WAIT });
    await this.page.getByTestId('attach-input').setInputFiles(files);
  }

  stored(): Promise<Stored> {
    return this.page.evaluate(readStored, HISTORY_DB);
  }

  async unread(channel: string): Promise<number> {
    // One read that does not wait: count() then innerText() raced the badge leaving as the channel was
    // read, and innerText() then waited its whole deadline for a badge that was gone.
    const [text] = await this.page.getByRole('navigation', { name: 'Channels' }).getByTestId(`unread-${channel}`).allInnerTexts();
    return text === undefined ? 0 : Number(text);
  }

  async screenshot(tag: string): Promise<string> {
    const path = join(this.stage.dir, `${this.name}-${tag}.png`);
    await this.page.screenshot({ path });
    return path;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.browser.close().catch(() => {});
  }
}
