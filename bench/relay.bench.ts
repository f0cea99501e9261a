// `npm run bench:relay`: relay fan-out throughput and latency against a bare `ws` broadcast, and memory per
// idle logged-in connection against bare `ws`, on loopback. Not a test.
//
// Processes (so the relay's RSS is its own and clients do not share its core time):
//   main      -- orchestrates; publishes posts (a real tRPC client) and hosts the latency probe subscriber
//   relay     -- the relay (or, for the baselines, a bare ws broadcast server), one fresh child per phase
//   clients x2 -- subscriber sockets. They speak tRPC's wire protocol directly and only count envelopes
//                 (a byte search), so they stay cheaper than the server they measure.
//
// Subscribers ask for `presence: false`: with presence, N clients logging in cost O(N^2) roster traffic
// (5,000 joins x 5,000 streams plus 5,000 snapshots of up to 5,000 users, gigabytes), which would measure
// presence fan-out, not an idle connection. The per-connection state is the same either way.
//
// The last line of output is one JSON object with every figure.
import { type ChildProcess, fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import superjson from 'superjson';
import { WebSocket, WebSocketServer } from 'ws';
import { randomSecretKey } from '../src/shared/crypto/ed25519';
import { nodeBackend } from '../src/shared/crypto/nodeBackend';
import { toB64url } from '../src/shared/encoding';
import { type Envelope, LIMITS, PROTOCOL_VERSION, parseEnvelopeBatch, type Post } from '../src/shared/protocol/relay';
import { signLogin, signPost } from '../src/shared/protocol/signed';

const SELF = fileURLToPath(import.meta.url);
/**
 * Children run this file bundled by esbuild the way scripts/build-server.mjs bundles the relay (packages
 * external), under plain node with the Dockerfile's heap flag: the relay's RSS is then what production
 * runs, without tsx's transform cache in it.
 */
const BUNDLE = fileURLToPath(new URL('../node_modules/.cache/peerchat-bench/relay.bench.mjs', import.meta.url));
const CHILD_FLAGS = ['--expose-gc', '--max-old-space-size=160', '--max-semi-space-size=4'];
// --max-semi-space-size: V8 grows the young generation up to 16 MiB x 3 under a burst of allocation (5,000
// logins) and keeps it; on a 256 MB VM that is ~9 KiB of RSS "per connection" that is no connection's. 4 MiB
// costs a few more scavenges and measured no throughput loss here. Recommended for production too.
const now = (): number => performance.timeOrigin + performance.now(); // comparable across processes
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CFG = {
  subscribers: 100,
  warmupMessages: 500,
  messages: 4000,
  latencyMessages: 400,
  latencyIntervalMs: 5,
  /** Connections opened and closed before the base memory reading (young-generation growth). */
  warmup: 1000,
  idleSmall: 1000,
  idleLarge: 5000,
  clientProcs: 2,
};

// ---------------------------------------------------------------------------------------------------------
// IPC: request/response over process.send
type Msg = { rid: number; cmd: string; [k: string]: unknown };
function serve(handlers: Record<string, (m: Msg) => Promise<unknown> | unknown>): void {
  process.on('message', async (m: Msg) => {
    try {
      const out = await handlers[m.cmd]!(m);
      process.send!({ rid: m.rid, ok: true, out });
    } catch (err) {
      process.send!({ rid: m.rid, ok: false, err: String((err as Error)?.stack ?? err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0)); // a normal exit, so --cpu-prof writes its profile
}

interface Child {
  proc: ChildProcess;
  call<T = any>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  kill(): Promise<void>;
}
function spawnChild(role: string): Promise<Child> {
  // BENCH_PROFILE=dir writes a CPU profile of each relay child there.
  const prof = process.env.BENCH_PROFILE && role === 'relay' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const proc = fork(BUNDLE, [role], { execArgv: [...CHILD_FLAGS, ...prof], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let seq = 0;
  const pending = new Map<number, { resolve: (v: any) => void; reject: (e: unknown) => void }>();
  proc.on('message', (m: { rid: number; ok: boolean; out?: unknown; err?: string }) => {
    const p = pending.get(m.rid);
    pending.delete(m.rid);
    if (m.ok) p?.resolve(m.out);
    else p?.reject(new Error(`${role}: ${m.err}`));
  });
  const child: Child = {
    proc,
    call(cmd, args = {}) {
      const rid = ++seq;
      return new Promise((resolve, reject) => {
        pending.set(rid, { resolve, reject });
        proc.send({ rid, cmd, ...args });
      });
    },
    async kill() {
      if (proc.exitCode !== null) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await done;
    },
  };
  return new Promise((resolve, reject) => {
    proc.once('message', (m: { ready?: boolean }) => (m.ready ? resolve(child) : reject(new Error('bad hello'))));
    proc.once('exit', (code) => reject(new Error(`${role} exited ${code}`)));
  });
}

async function rssAfterGc(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(50);
  }
  return process.memoryUsage().rss;
}

// ---------------------------------------------------------------------------------------------------------
// Role: relay (the real relay, generous limits: the bench measures capacity, not the rate limits)
async function relayRole(): Promise<void> {
  const { createRelay } = await import('../src/server/createRelay');
  const { silentLogger } = await import('../src/server/logger');
  const relay = await createRelay({
    secretKey: randomSecretKey(),
    logger: silentLogger,
    limits: {
      postsPerMinute: 10_000_000,
      connectionsPerIpPerMinute: 10_000_000,
      loginsPerIpPerMinute: 10_000_000,
      maxFramesPerSecond: 100_000,
      maxBufferedBytes: 64 * 1024 * 1024,
    },
    timing: { loginTimeoutMs: 120_000 },
  });
  serve({
    info: () => ({ url: relay.trpcUrl, info: relay.info }),
    mem: () => rssAfterGc(),
    cpu: () => process.cpuUsage(),
    counts: () => relay.counts(),
  });
  process.send!({ ready: true });
}

// Role: bare -- the baseline: a ws server that broadcasts every frame it receives to every other socket.
async function bareRole(): Promise<void> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, maxPayload: LIMITS.maxFrameBytes });
  await new Promise((r) => wss.once('listening', r));
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer, isBinary) => {
      // A client's handshake-like exchange (see `exchange` in clientsRole) is answered to the sender only.
      if (data.length > 0 && data[0] === 0x3f /* ? */) return ws.send(data, { binary: isBinary });
      for (const c of wss.clients) if (c !== ws && c.readyState === WebSocket.OPEN) c.send(data, { binary: isBinary });
    });
  });
  const port = (wss.address() as { port: number }).port;
  serve({
    info: () => ({ url: `ws://127.0.0.1:${port}` }),
    mem: () => rssAfterGc(),
    cpu: () => process.cpuUsage(),
    counts: () => ({ connections: wss.clients.size }),
  });
  process.send!({ ready: true });
}

// Role: clients -- subscriber sockets
const EPOCH_NEEDLE = Buffer.from('\\"epoch\\":'); // once per envelope inside an escaped `raw` batch

/** Minimal tRPC-over-ws client: challenge, login, one `events` subscription. Returns the open socket. */
async function trpcSubscriber(
  url: string,
  onFrame: (data: Buffer) => void,
  input: object,
  steps: { login: boolean; subscribe: boolean } = { login: true, subscribe: true },
): Promise<WebSocket> {
  const backend = nodeBackend();
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const replies = new Map<number, (m: any) => void>();
  const wait = (id: number) => new Promise<any>((r) => replies.set(id, r));
  let started = false;
  ws.on('message', (data: Buffer) => {
    if (started) return onFrame(data);
    const m = JSON.parse(data.toString());
    replies.get(m.id)?.(m);
  });
  const req = (id: number, method: string, path: string, body: unknown) =>
    ws.send(JSON.stringify({ id, method, params: { path, input: superjson.serialize(body) } }));
  if (!steps.login) {
    started = true;
    return ws;
  }
  const sk = randomSecretKey();
  const publicKey = toB64url(await backend.publicKeyOf(sk));
  const r1 = wait(1);
  req(1, 'mutation', 'auth.challenge', { protocol: PROTOCOL_VERSION });
  const ch = (await r1).result.data.json;
  const signature = await signLogin(backend, sk, { nonce: ch.nonce, relayKey: ch.relayKey, publicKey, name: 'bench', kind: 'virtual' });
  const r2 = wait(2);
  req(2, 'mutation', 'auth.login', { protocol: PROTOCOL_VERSION, publicKey, name: 'bench', kind: 'virtual', nonce: ch.nonce, signature });
  const login = await r2;
  if (!login.result) throw new Error(`login failed: ${JSON.stringify(login)}`);
  if (!steps.subscribe) {
    started = true;
    return ws;
  }
  const r3 = wait(3);
  req(3, 'subscription', 'events', input);
  const st = await r3;
  if (st.result?.type !== 'started') throw new Error(`subscribe failed: ${JSON.stringify(st)}`);
  started = true;
  return ws;
}

async function clientsRole(): Promise<void> {
  let sockets: WebSocket[] = [];
  let counts: number[] = [];
  let target = Infinity;
  let reached = 0;
  let onAll: ((t: number) => void) | null = null;
  const bump = (i: number, by: number) => {
    const before = counts[i]!;
    counts[i] = before + by;
    if (before < target && counts[i]! >= target && ++reached === counts.length) onAll?.(now());
  };
  serve({
    async connect(m) {
      const { url, n, kind, concurrency, steps } = m as unknown as {
        url: string;
        n: number;
        kind: 'trpc' | 'bare';
        concurrency: number;
        steps?: { login: boolean; subscribe: boolean };
      };
      const input = { channels: ['general'], presence: false };
      let next = 0;
      const worker = async () => {
        while (next < n) {
          next++;
          const i = counts.push(0) - 1; // claimed before any await: workers run concurrently
          let ws: WebSocket;
          if (kind === 'trpc') {
            ws = await trpcSubscriber(
              url,
              (data) => {
                let c = 0;
                for (let at = data.indexOf(EPOCH_NEEDLE); at >= 0; at = data.indexOf(EPOCH_NEEDLE, at + 1)) c++;
                if (c) bump(i, c);
              },
              input,
              steps,
            );
          } else {
            ws = new WebSocket(url, { perMessageDeflate: false });
            await new Promise<void>((resolve, reject) => {
              ws.once('open', () => resolve());
              ws.once('error', reject);
            });
            // Optionally the same number and size of round trips as a tRPC login + subscribe, so both sides
            // have moved data through the socket (native buffers grow on first use).
            for (let x = 0; x < (m.exchange as number | undefined ?? 0); x++) {
              const back = new Promise((r) => ws.once('message', r));
              ws.send(`?${'x'.repeat(600)}`);
              await back;
            }
            ws.on('message', () => bump(i, 1));
          }
          sockets[i] = ws;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      return sockets.length;
    },
    /** Resolves with the time at which every socket had received `target` envelopes since the last reset. */
    async waitAll(m) {
      const t = m.target as number;
      return new Promise<number>((resolve) => {
        target = t;
        reached = counts.filter((c) => c >= t).length;
        onAll = resolve;
        if (reached === counts.length) resolve(now());
      });
    },
    reset() {
      counts = counts.map(() => 0);
      target = Infinity;
      reached = 0;
      onAll = null;
    },
    async closeAll() {
      await Promise.all(
        sockets.map(
          (ws) =>
            new Promise<void>((r) => {
              if (ws.readyState === WebSocket.CLOSED) return r();
              ws.once('close', () => r());
              ws.terminate();
            }),
        ),
      );
      sockets = [];
      counts = [];
    },
  });
  process.send!({ ready: true });
}

// ---------------------------------------------------------------------------------------------------------
// main
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

async function connectAll(clients: Child[], url: string, n: number, kind: 'trpc' | 'bare'): Promise<void> {
  const per = Math.ceil(n / clients.length);
  await Promise.all(clients.map((c, i) => c.call('connect', { url, n: Math.min(per, n - i * per), kind, concurrency: 50 })));
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const { build } = await import('esbuild');
  await build({ entryPoints: [SELF], outfile: BUNDLE, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' });
  const { connectRelay } = await import('../src/shared/client/relayConnection');
  const backend = nodeBackend();
  const clients = await Promise.all(Array.from({ length: CFG.clientProcs }, () => spawnChild('clients')));
  const results: Record<string, unknown> = { subscribers: CFG.subscribers, messages: CFG.messages };

  // ---- phase 1: relay throughput and latency ----
  let envelopesForBare: string[] = [];
  {
    const relay = await spawnChild('relay');
    const { url } = await relay.call<{ url: string }>('info');
    console.log(`relay child up at ${url}; connecting ${CFG.subscribers} subscribers`);
    await connectAll(clients, url, CFG.subscribers - 1, 'trpc');
    const sk = randomSecretKey();
    const pub = await connectRelay({ url, secretKey: sk, name: 'publisher', kind: 'virtual', backend, WebSocket });
    const probe = await connectRelay({ url, secretKey: randomSecretKey(), name: 'probe', kind: 'virtual', backend, WebSocket });
    const arrivals = new Map<string, number>();
    const received: Envelope[] = [];
    const sub = probe.client.events.subscribe(
      { channels: ['general'], presence: false },
      {
        onData(ev) {
          if (ev.t !== 'msgs') return;
          const t = performance.now();
          for (const e of parseEnvelopeBatch(ev.raw) ?? []) {
            arrivals.set(e.post.clientId, t);
            if (received.length < CFG.messages) received.push(e);
          }
        },
      },
    );
    await sleep(200);
    const author = pub.publicKey;
    const text = 'x'.repeat(100);
    const makePosts = (n: number, tag: string): Promise<Post[]> =>
      Promise.all(
        Array.from({ length: n }, (_, i) =>
          signPost(backend, sk, { channel: 'general', clientId: `${tag}${i}`.padEnd(8, '_'), text, attachments: [], replyTo: null, author }),
        ),
      );
    const probeCount = () => received.length;

    /** Fires `posts` in 100-post frames without waiting for replies; resolves when all 100 subscribers have them. */
    const blast = async (posts: Post[]): Promise<number> => {
      await Promise.all(clients.map((c) => c.call('reset')));
      const doneAt = Promise.all(clients.map((c) => c.call<number>('waitAll', { target: posts.length })));
      const base = probeCount();
      const start = now();
      const replies: Promise<unknown>[] = [];
      for (let i = 0; i < posts.length; i += 100) {
        for (const p of posts.slice(i, i + 100)) replies.push(pub.client.chat.post.mutate(p));
        await new Promise((r) => setImmediate(r));
      }
      await Promise.all(replies);
      const ends = await doneAt;
      while (probeCount() - base < posts.length && received.length < CFG.messages) await sleep(5);
      return Math.max(...ends) - start;
    };

    console.log('warming up');
    await blast(await makePosts(CFG.warmupMessages, 'w'));
    received.length = 0;
    const posts = await makePosts(CFG.messages, 'm');
    const cpu0 = await relay.call<NodeJS.CpuUsage>('cpu');
    const ms = await blast(posts);
    const cpu1 = await relay.call<NodeJS.CpuUsage>('cpu');
    results.relayCpuUsPerDelivery = round((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (CFG.messages * CFG.subscribers), 2);
    results.relayMsgsPerSec = round((CFG.messages / ms) * 1000, 0);
    results.relayDeliveriesPerSec = round((CFG.messages * CFG.subscribers * 1000) / ms, 0);
    envelopesForBare = received.map((e) => JSON.stringify(e));
    console.log(
      `relay: ${CFG.messages} msgs to ${CFG.subscribers} subscribers in ${round(ms)} ms = ${results.relayMsgsPerSec} msgs/s ` +
        `(${results.relayCpuUsPerDelivery} us relay CPU per delivery, signing and verifying included)`,
    );

    // Latency: paced posts while the 100 subscribers are connected.
    const lat = await makePosts(CFG.latencyMessages, 'l');
    const sentAt = new Map<string, number>();
    for (const p of lat) {
      sentAt.set(p.clientId, performance.now());
      void pub.client.chat.post.mutate(p);
      await sleep(CFG.latencyIntervalMs);
    }
    while ([...sentAt.keys()].some((k) => !arrivals.has(k))) await sleep(10);
    const latencies = [...sentAt].map(([k, t]) => arrivals.get(k)! - t);
    results.latencyP50Ms = round(pct(latencies, 50), 2);
    results.latencyP99Ms = round(pct(latencies, 99), 2);
    console.log(`relay: post-to-delivery latency p50 ${results.latencyP50Ms} ms, p99 ${results.latencyP99Ms} ms (${CFG.latencyMessages} posts, every ${CFG.latencyIntervalMs} ms)`);
    sub.unsubscribe();
    await pub.close();
    await probe.close();
    await Promise.all(clients.map((c) => c.call('closeAll')));
    await relay.kill();
  }

  // ---- phase 2: bare ws broadcast of the same bytes ----
  {
    const bare = await spawnChild('bare');
    const { url } = await bare.call<{ url: string }>('info');
    await connectAll(clients, url, CFG.subscribers, 'bare');
    const pub = new WebSocket(url, { perMessageDeflate: false });
    await new Promise((r) => pub.once('open', r));
    const blast = async (frames: string[]): Promise<number> => {
      await Promise.all(clients.map((c) => c.call('reset')));
      const doneAt = Promise.all(clients.map((c) => c.call<number>('waitAll', { target: frames.length })));
      const start = now();
      for (const f of frames) pub.send(f);
      return Math.max(...(await doneAt)) - start;
    };
    await blast(envelopesForBare.slice(0, CFG.warmupMessages));
    const cpu0 = await bare.call<NodeJS.CpuUsage>('cpu');
    const ms = await blast(envelopesForBare);
    const cpu1 = await bare.call<NodeJS.CpuUsage>('cpu');
    results.bareCpuUsPerDelivery = round((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (CFG.messages * CFG.subscribers), 2);
    results.bareMsgsPerSec = round((CFG.messages / ms) * 1000, 0);
    results.throughputRatio = round((results.relayMsgsPerSec as number) / (results.bareMsgsPerSec as number), 2);
    console.log(
      `bare ws: ${CFG.messages} msgs to ${CFG.subscribers} subscribers in ${round(ms)} ms = ${results.bareMsgsPerSec} msgs/s ` +
        `(${results.bareCpuUsPerDelivery} us server CPU per delivery, one frame per message); relay/bare = ${results.throughputRatio}`,
    );
    pub.close();
    await Promise.all(clients.map((c) => c.call('closeAll')));
    await bare.kill();
  }

  // ---- phase 3: memory per idle logged-in connection (with its events stream) ----
  {
    const relay = await spawnChild('relay');
    const { url } = await relay.call<{ url: string }>('info');
    // Warm up before the base reading: the first burst of logins grows V8's young generation once (a fixed
    // cost of a few MB); without this it lands in the first 1,000 connections and inflates their share.
    await connectAll(clients, url, CFG.warmup, 'trpc');
    await Promise.all(clients.map((c) => c.call('closeAll')));
    const base = await relay.call<number>('mem');
    await connectAll(clients, url, CFG.idleSmall, 'trpc');
    const counts = await relay.call('counts');
    const at1k = await relay.call<number>('mem');
    await connectAll(clients, url, CFG.idleLarge - CFG.idleSmall, 'trpc');
    const at5k = await relay.call<number>('mem');
    const counts5k = await relay.call('counts');
    results.relayBytesPerIdleConn = Math.round((at1k - base) / CFG.idleSmall);
    results.relayRssAt5kMB = round(at5k / 2 ** 20);
    results.relayBytesPerConnSlope = Math.round((at5k - at1k) / (CFG.idleLarge - CFG.idleSmall));
    results.relayBaseRssMB = round(base / 2 ** 20);
    console.log(`relay: RSS ${round(base / 2 ** 20)} MB idle, ${round(at1k / 2 ** 20)} MB with ${CFG.idleSmall} logged-in clients (${JSON.stringify(counts)})`);
    console.log(
      `relay: ${round((results.relayBytesPerIdleConn as number) / 1024)} KiB per idle connection at ${CFG.idleSmall}, ` +
        `${round((results.relayBytesPerConnSlope as number) / 1024)} KiB each from ${CFG.idleSmall} to ${CFG.idleLarge}; ` +
        `RSS ${results.relayRssAt5kMB} MB with ${CFG.idleLarge} (${JSON.stringify(counts5k)})`,
    );
    await Promise.all(clients.map((c) => c.call('closeAll')));
    await relay.kill();

    // Bare ws, idle (never spoke) and after 3 round trips of ~600 bytes per socket (what a login and a
    // subscribe move through a socket). Also measured at 5,000: the slope 1k -> 5k is less noisy than 1k alone.
    for (const exchange of [0, 3]) {
      const bare = await spawnChild('bare');
      const b = await bare.call<{ url: string }>('info');
      const connectBare = (n: number) =>
        Promise.all(clients.map((c) => c.call('connect', { url: b.url, n: n / clients.length, kind: 'bare', concurrency: 50, exchange })));
      // The same warm-up as the relay's, so both baselines are taken alike.
      await connectBare(CFG.warmup);
      await Promise.all(clients.map((c) => c.call('closeAll')));
      const bBaseWarm = await bare.call<number>('mem');
      await connectBare(CFG.idleSmall);
      const b1k = await bare.call<number>('mem');
      await connectBare(CFG.idleLarge - CFG.idleSmall);
      const b5k = await bare.call<number>('mem');
      const tag = exchange ? 'AfterExchange' : 'Idle';
      results[`bareBytesPerConn${tag}`] = Math.round((b1k - bBaseWarm) / CFG.idleSmall);
      results[`bareBytesPerConn${tag}Slope`] = Math.round((b5k - b1k) / (CFG.idleLarge - CFG.idleSmall));
      console.log(
        `bare ws${exchange ? ' after 3 round trips' : ', idle'}: ${round((b1k - bBaseWarm) / CFG.idleSmall / 1024)} KiB per connection at ${CFG.idleSmall}, ` +
          `${round((b5k - b1k) / (CFG.idleLarge - CFG.idleSmall) / 1024)} KiB each from ${CFG.idleSmall} to ${CFG.idleLarge}`,
      );
      await Promise.all(clients.map((c) => c.call('closeAll')));
      await bare.kill();
    }
    results.memoryRatio = round((results.relayBytesPerIdleConn as number) / (results.bareBytesPerConnIdle as number), 2);
    results.memoryRatioSlope = round((results.relayBytesPerConnSlope as number) / (results.bareBytesPerConnIdleSlope as number), 2);
    results.memoryRatioVsExchangedSlope = round((results.relayBytesPerConnSlope as number) / (results.bareBytesPerConnAfterExchangeSlope as number), 2);
    console.log(`memory per connection, relay/bare: ${results.memoryRatio} at ${CFG.idleSmall}; slopes ${results.memoryRatioSlope} (idle bare), ${results.memoryRatioVsExchangedSlope} (bare after round trips)`);
  }

  // ---- phase 4: where a connection's memory goes (socket only / + login / + events stream) ----
  {
    const n = 2000;
    const breakdown: Record<string, number> = {};
    for (const [name, steps] of [
      ['socket', { login: false, subscribe: false }],
      ['login', { login: true, subscribe: false }],
      ['stream', { login: true, subscribe: true }],
    ] as const) {
      const relay = await spawnChild('relay');
      const { url } = await relay.call<{ url: string }>('info');
      const base = await relay.call<number>('mem');
      await Promise.all(clients.map((c) => c.call('connect', { url, n: n / clients.length, kind: 'trpc', concurrency: 50, steps })));
      breakdown[name] = Math.round(((await relay.call<number>('mem')) - base) / n);
      await Promise.all(clients.map((c) => c.call('closeAll')));
      await relay.kill();
    }
    results.relayBytesPerConnBreakdown = breakdown;
    console.log(
      `relay memory per connection (${n} each): tRPC socket ${round(breakdown.socket! / 1024)} KiB, logged in ` +
        `${round(breakdown.login! / 1024)} KiB, with its events stream ${round(breakdown.stream! / 1024)} KiB`,
    );
  }

  await Promise.all(clients.map((c) => c.kill()));
  results.targets = {
    throughputRatioMin: 0.6,
    memoryRatioMax: 2,
    rssAt5kMaxMB: 200,
    throughputMet: (results.throughputRatio as number) >= 0.6,
    memoryMet: (results.memoryRatio as number) <= 2,
    rss5kMet: (results.relayRssAt5kMB as number) < 200,
  };
  results.childNodeFlags = CHILD_FLAGS.filter((f) => f !== '--expose-gc');
  results.runtimeS = round((Date.now() - t0) / 1000);
  console.log(JSON.stringify(results));
}

const role = process.argv[2];
const run = role === 'relay' ? relayRole : role === 'bare' ? bareRole : role === 'clients' ? clientsRole : main;
run().catch((err) => {
  console.error(err);
  process.exit(1);
});
