// `npm run bench:relay`: relay fan-out throughput against three baselines, a presence login storm, and
// memory per client as users meet it, on loopback. Not a test.
//
// Processes (so the relay's RSS is its own and clients do not share its core time):
//   main       -- orchestrates; publishes posts (the frames wsLink sends, pre-built: rawPublisher; the app's
//                 own client for the latency phase) and hosts the latency probe subscriber
//   relay      -- the production bundle (dist/server/main.js) started with the Dockerfile's command, flags and
//                 environment (PeerJS endpoint and default metrics included), under the Dockerfile's Node
//                 major (scripts/dockerNode.mjs); plus `--expose-gc --import bench/gcOnSignal.mjs` so the bench
//                 can force a GC (SIGUSR2). CPU and RSS are read from /proc.
//   baselines  -- one fresh child each, under the same Node: `bare` (broadcasts every frame it receives: one
//                 frame per message), `batch` (a bare ws server that coalesces the frames of one tick into one
//                 frame, serialized once, as the relay does), `minimal` (a minimal signing relay: the same
//                 coalescing, verifies the author's signature, countersigns with a `prev` chain, answers the
//                 poster)
//   clients x2 -- subscriber sockets. They speak tRPC's wire protocol directly and only count envelopes and
//                 roster entries (byte searches), so they stay cheaper than the server they measure.
//
// The throughput phase lifts the relay's rate limits (one publisher posts 4,000 messages; PEERCHAT_CONFIG);
// its subscribers ask for `presence: false`, so it measures message fan-out. The storm and memory phases keep
// the production limits and spread clients over loopback addresses (127.1.x.y), at most
// CLIENTS_PER_ADDRESS per address, as many users would arrive; every client there has presence on and also
// holds its PeerJS signalling open as the app does: a `signal.connect` stream on its tRPC socket (SPEC.md
// W11). BENCH_SIGNALLING=socket gives each a `/peerjs` socket instead (stock PeerJS, protocol 3's way).
//
// The last line of output is one JSON object with every figure.
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import superjson from 'superjson';
import { WebSocket, WebSocketServer } from 'ws';
import { type Ed25519Backend, randomSecretKey } from '../src/shared/crypto/ed25519';
import { nodeBackend } from '../src/shared/crypto/nodeBackend';
import { toB64url } from '../src/shared/encoding';
import { type Envelope, LIMITS, POST_TIME_WINDOW_MS, PROTOCOL_VERSION, parseEnvelopeBatch, type Post } from '../src/shared/protocol/relay';
import { envelopeHash, relayOrigin, signEnvelope, signLogin, signPost, verifyPostSignature } from '../src/shared/protocol/signed';
// @ts-expect-error -- a plain .mjs helper shared with e2e/prodBuild.test.ts, without type declarations
import { dockerNodeMajor, dockerRuntime, nodeForMajor } from '../scripts/dockerNode.mjs';
import { cpuProfileBreakdown } from './cpuProfileBreakdown';
import { LeanWebSocket } from './LeanWebSocket';

const SELF = fileURLToPath(import.meta.url);
/**
 * One relay identity for the relay under test and the minimal signing relay: posts are signed for a relay
 * (SPEC M6), so both must be the same relay for the same posts to be valid at both.
 */
const BENCH_RELAY_SEED = new Uint8Array(32).fill(7);
const REPO = fileURLToPath(new URL('..', import.meta.url));
/**
 * Baseline and client children run this file bundled by esbuild (packages external), under plain node.
 * Named after the checkout: worktrees that share one node_modules (a symlink) must not run each other's
 * bundle or limits file when their benches overlap.
 */
const CACHE = join(REPO, 'node_modules/.cache/peerchat-bench');
const CHECKOUT = createHash('sha256').update(REPO).digest('hex').slice(0, 8);
const BUNDLE = join(CACHE, `relay.bench.${CHECKOUT}.mjs`);
const GC_HOOK = join(REPO, 'bench/gcOnSignal.mjs');
const now = (): number => performance.timeOrigin + performance.now(); // comparable across processes
/** The monotonic clock in µs, the one V8's CPU profiles stamp their samples with (the relay's profile windows). */
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const QUICK = process.env.BENCH_QUICK === '1'; // a smoke run of every phase, figures meaningless
const CFG = {
  subscribers: QUICK ? 20 : 100,
  warmupMessages: QUICK ? 100 : 500,
  messages: QUICK ? 400 : 4000,
  /** Posts per publisher frame: wsLink sends the calls of one turn as one frame; kept well under batch caps. */
  postsPerFrame: LIMITS.maxRequestsPerFrame, // the relay refuses more requests per frame (SPEC R10)
  latencyMessages: QUICK ? 40 : 400,
  latencyIntervalMs: 5,
  stormClients: QUICK ? 200 : 1000,
  /**
   * The second memory reading (BENCH_MEMORY_CLIENTS=5000 for the 5,000 figure). Before lazy presence (SPEC
   * P9) 5,000 with presence on was ~25M roster entries (~5.6 GB) and its clients fell behind and were cut;
   * now each client gets a page, a sample and the counts.
   */
  memoryClients: Number(process.env.BENCH_MEMORY_CLIENTS) || (QUICK ? 400 : 2000),
  /** Production limits: 120 connections and 120 login points (challenge + login = 2) per address and minute. */
  clientsPerAddress: 40,
  clientProcs: 2,
  /** Relay and minimal signing relay back to back, this many times (phase 2b). */
  pairedRounds: Number(process.env.BENCH_PAIRED_ROUNDS ?? (QUICK ? 1 : 3)),
};

// ---------------------------------------------------------------------------------------------------------
// The relay as the Dockerfile runs it


async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const CLK_TCK = 100; // Linux USER_HZ
/** user + system CPU of a process, in microseconds (/proc/<pid>/stat). */
function procCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK;
}
/**
 * Resident memory by kind of mapping (/proc/<pid>/smaps), MB: `brk` is glibc's main malloc heap (C++ objects,
 * socket buffers), `anon` the anonymous mappings (V8's heap pages, thread arenas, stacks), `file` the binary
 * and libraries. What V8's heap spaces do not explain lives in `brk`.
 */
function rssByMapping(pid: number): { brk: number; anon: number; file: number } {
  const out = { brk: 0, anon: 0, file: 0 };
  let kind: keyof typeof out = 'anon';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) kind = head[1] === '[heap]' ? 'brk' : head[1] === '' || head[1]!.startsWith('[') ? 'anon' : 'file';
    else if (line.startsWith('Rss:')) out[kind] += Number(/(\d+)/.exec(line)![1]) * 1024;
  }
  return out;
}
function procRss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

interface RelayProc {
  url: string;
  /** With BENCH_PROFILE: the CPU profile this relay writes when it exits. */
  profilePath: string | null;
  trpcUrl: string;
  port: number;
  pid: number;
  cpuUs(): number;
  /** Resident memory as it is, after a settle pause (no forced GC). */
  rss(): Promise<number>;
  /** Resident memory after three forced full GCs. */
  rssAfterGc(): Promise<number>;
  healthz(): Promise<Record<string, unknown>>;
  /** With BENCH_HEAP_SNAPSHOT=dir: a heap snapshot of the relay, written there. */
  heapSnapshot(): Promise<void>;
  kill(): Promise<void>;
}

let nodeBin = process.execPath;

/** One counter or gauge without labels from the relay's /metrics. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
}

/** V8 heap space sizes (reserved bytes) by space, from the relay's prom-client default metrics. */
async function heapSpaces(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^peerchat_nodejs_heap_space_size_total_bytes\{space="([a-z_]+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

async function startRelay(limits: 'production' | 'lifted'): Promise<RelayProc> {
  const { env: dockerEnv, cmd } = dockerRuntime(REPO);
  if (cmd[0] !== 'node') throw new Error('the Dockerfile CMD does not start node');
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH!,
    ...dockerEnv,
    PORT: String(port),
    HOST: '127.0.0.1',
    PEERCHAT_RELAY_KEY: toB64url(BENCH_RELAY_SEED),
    PEERCHAT_PUBLIC_ORIGIN: `http://127.0.0.1:${port}`,
    PEERCHAT_LOG_LEVEL: 'error',
    // BENCH_RELAY_ENV="MALLOC_TRIM_THRESHOLD_=... K=V" adds to (or overrides) the Dockerfile's environment,
    // for trying allocator settings before they go into the Dockerfile.
    ...Object.fromEntries((process.env.BENCH_RELAY_ENV ?? '').split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
  };
  if (limits === 'lifted') {
    const file = join(CACHE, `lifted-limits.${CHECKOUT}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        limits: { postsPerMinute: 1e7, connectionsPerIpPerMinute: 1e7, loginsPerIpPerMinute: 1e7, maxFramesPerSecond: 1e5, maxBufferedBytes: 64 * 2 ** 20 },
      }),
    );
    env.PEERCHAT_CONFIG = file;
  }
  // BENCH_PROFILE=dir writes a CPU profile of each relay process there (and of each baseline: spawnChild).
  const prof = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  // BENCH_HEAP_SNAPSHOT=dir writes a heap snapshot of the storm relay there before the storm and after it.
  const snap = process.env.BENCH_HEAP_SNAPSHOT ? ['--heapsnapshot-signal=SIGUSR1', `--diagnostic-dir=${process.env.BENCH_HEAP_SNAPSHOT}`] : [];
  // BENCH_RELAY_FLAGS="--trace-gc-nvp ..." adds Node flags before the Dockerfile's (GC traces, heap sampling hooks).
  const extra = process.env.BENCH_RELAY_FLAGS?.split(' ').filter(Boolean) ?? [];
  // BENCH_RELAY_FLAGS_OVER="--max-semi-space-size=1": after the Dockerfile's flags, so they override them
  // (V8 takes the last of a flag), to compare a flag with the shipped one in the same bench.
  const over = process.env.BENCH_RELAY_FLAGS_OVER?.split(' ').filter(Boolean) ?? [];
  const script = cmd.slice(-1);
  const proc = spawn(nodeBin, [...extra, '--expose-gc', `--import=${GC_HOOK}`, ...prof, ...snap, ...cmd.slice(1, -1), ...over, ...script], {
    cwd: REPO,
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  // A bench that throws must not leave its relay running (and loading the shared machine).
  process.once('exit', () => proc.kill());
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`relay exited ${proc.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  const pid = proc.pid!;
  return {
    url,
    // Node names the file CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; found after the relay exits.
    get profilePath() {
      const dir = process.env.BENCH_PROFILE;
      const f = dir ? readdirSync(dir).find((name) => name.includes(`.${pid}.`) && name.endsWith('.cpuprofile')) : undefined;
      return f ? join(dir!, f) : null;
    },
    trpcUrl: `ws://127.0.0.1:${port}/trpc`,
    port,
    pid,
    cpuUs: () => procCpuUs(pid),
    async rss() {
      await sleep(500);
      return procRss(pid);
    },
    async rssAfterGc() {
      for (let i = 0; i < 3; i++) {
        proc.kill('SIGUSR2');
        await sleep(150);
      }
      return procRss(pid);
    },
    healthz: async () => (await fetch(`${url}/healthz`)).json() as Promise<Record<string, unknown>>,
    async heapSnapshot() {
      const dir = process.env.BENCH_HEAP_SNAPSHOT;
      if (!dir) return;
      const before = new Set(readdirSync(dir));
      proc.kill('SIGUSR1');
      // Written synchronously by the relay; done once /healthz answers again and the file stopped growing.
      for (;;) {
        await sleep(500);
        const fresh = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
        if (fresh.length > 0 && (await fetch(`${url}/healthz`).then((r) => r.ok, () => false))) {
          console.log(`heap snapshot: ${join(dir, fresh[0]!)}`);
          return;
        }
      }
    },
    async kill() {
      if (proc.exitCode !== null) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await done;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// IPC: request/response over process.send (baselines and clients)
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
  process.on('SIGTERM', () => process.exit(0));
}

interface Child {
  proc: ChildProcess;
  /** With BENCH_PROFILE (and BENCH_PROFILE_CLIENTS for clients): the CPU profile it writes as it exits. */
  profilePath: string | null;
  call<T = any>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  kill(): Promise<void>;
}
let children = 0;
/** Longest a child may take to answer one call: the memory phase's 4,000 logins at load 20 take < 1 min. */
const CALL_TIMEOUT_MS = 5 * 60_000;
function spawnChild(role: string, execPath: string): Promise<Child> {
  // BENCH_PROFILE=dir: the baselines are profiled as the relay is; the clients too with BENCH_PROFILE_CLIENTS=1
  // (what the bench spends of the shared cores on itself).
  const profileName = `${role}.${Date.now()}.${++children}.cpuprofile`;
  const prof = process.env.BENCH_PROFILE && (role !== 'clients' || process.env.BENCH_PROFILE_CLIENTS === '1') ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`, `--cpu-prof-name=${profileName}`] : [];
  const proc = fork(BUNDLE, [role], { execPath, execArgv: ['--expose-gc', ...prof], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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
    profilePath: prof.length > 0 ? join(process.env.BENCH_PROFILE!, profileName) : null,
    call(cmd, args = {}) {
      const rid = ++seq;
      return new Promise((resolve, reject) => {
        // A child that stopped answering (a deadlock, a lost socket) fails the run instead of hanging it.
        const timer = setTimeout(() => {
          pending.delete(rid);
          reject(new Error(`${role} (pid ${proc.pid}): ${cmd} did not answer within ${CALL_TIMEOUT_MS / 1000} s`));
        }, CALL_TIMEOUT_MS);
        timer.unref();
        pending.set(rid, {
          resolve: (v) => (clearTimeout(timer), resolve(v)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
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

function serveBaseline(wss: WebSocketServer): void {
  const port = (wss.address() as { port: number }).port;
  serve({
    info: () => ({ url: `ws://127.0.0.1:${port}` }),
    cpu: () => {
      const c = process.cpuUsage();
      return c.user + c.system;
    },
  });
  process.send!({ ready: true });
}

async function listen(): Promise<WebSocketServer> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, maxPayload: LIMITS.maxFrameBytes });
  await new Promise((r) => wss.once('listening', r));
  return wss;
}

/**
 * The relay's flush threshold for one `msgs` batch (EventHub's `maxBatchChars` default; SPEC.md R10: a batch
 * is at most ~192 KiB, so a frame stays under the clients' 256 KiB `maxFrameBytes`). Without it a baseline
 * that fell behind its publisher sent all 4,000 messages in 2-3 frames of over a megabyte, which no
 * peerchat client accepts and the relay may not send.
 */
const MAX_BATCH_CHARS = 192 * 1024;

/**
 * Coalesces JSON texts published in one turn into one `msgs` frame, escaped and encoded once for all; a
 * batch that reaches MAX_BATCH_CHARS goes out at once, as the relay's does.
 */
function coalescer(subscribers: Set<WebSocket>): (json: string) => void {
  let pending: string[] = [];
  let chars = 0;
  let scheduled: NodeJS.Immediate | null = null;
  const flush = () => {
    if (scheduled) clearImmediate(scheduled);
    scheduled = null;
    const frame = Buffer.from(JSON.stringify({ t: 'msgs', raw: `[${pending.join(',')}]` }));
    pending = [];
    chars = 0;
    for (const s of subscribers) if (s.readyState === WebSocket.OPEN) s.send(frame, { binary: false });
  };
  return (json) => {
    pending.push(json);
    chars += json.length;
    if (chars >= MAX_BATCH_CHARS) flush();
    else scheduled ??= setImmediate(flush);
  };
}

// Role: bare -- a ws server that broadcasts every frame it receives to every other socket.
async function bareRole(): Promise<void> {
  const wss = await listen();
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer, isBinary) => {
      for (const c of wss.clients) if (c !== ws && c.readyState === WebSocket.OPEN) c.send(data, { binary: isBinary });
    });
  });
  serveBaseline(wss);
}

// Role: batch -- a bare ws server that coalesces per tick the way the relay does (one frame per turn).
async function batchRole(): Promise<void> {
  const wss = await listen();
  const subscribers = new Set<WebSocket>();
  const publish = coalescer(subscribers);
  wss.on('connection', (ws, req) => {
    if (req.url === '/pub') ws.on('message', (data: Buffer) => publish(data.toString()));
    else {
      subscribers.add(ws);
      ws.on('close', () => subscribers.delete(ws));
    }
  });
  serveBaseline(wss);
}

// Role: minimal -- a minimal signing relay: verify the author's signature, mint and countersign an envelope
// (id, epoch, `prev` chain), answer the poster, coalesce per tick. What the relay must do per post, no more.
async function minimalRole(): Promise<void> {
  const { createIdMinter } = await import('../src/server/EnvelopeMinter');
  const backend = nodeBackend({ maxCachedKeys: 256 });
  const secretKey = BENCH_RELAY_SEED;
  const relay = toB64url(await backend.publicKeyOf(secretKey));
  const mintId = createIdMinter();
  const epoch = mintId().id;
  let prev: { id: string; hash: string } | null = null;
  let chain: Promise<unknown> = Promise.resolve();
  const wss = await listen();
  const subscribers = new Set<WebSocket>();
  const publish = coalescer(subscribers);
  wss.on('connection', (ws, req) => {
    if (req.url !== '/pub') {
      subscribers.add(ws);
      ws.on('close', () => subscribers.delete(ws));
      return;
    }
    ws.on('message', (data: Buffer) => {
      const posts = JSON.parse(data.toString()) as { id: number; post: Post }[];
      chain = chain.then(async () => {
        const replies: unknown[] = [];
        for (const { id, post } of posts) {
          if (!(await verifyPostSignature(backend, post)).ok) {
            replies.push({ id, error: 'BAD_SIGNATURE' });
            continue;
          }
          // The relay's post binding (SPEC M6), so both do the same checks.
          if (post.relay !== relay || Math.abs(post.sentAt - Date.now()) > POST_TIME_WINDOW_MS) {
            replies.push({ id, error: 'STALE_POST' });
            continue;
          }
          const m = mintId();
          const env = await signEnvelope(backend, secretKey, { id: m.id, ts: m.ts, epoch, prev, post, relay });
          prev = { id: env.id, hash: envelopeHash(env) };
          publish(JSON.stringify(env));
          replies.push({ id, result: env });
        }
        ws.send(JSON.stringify(replies));
      });
    });
  });
  serveBaseline(wss);
}

// Role: clients -- subscriber sockets
const EPOCH_NEEDLE = Buffer.from('\\"epoch\\":'); // once per envelope inside an escaped `raw` batch
const PRESENCE_NEEDLE = Buffer.from('"t":"presence"');
const RESULT_NEEDLE = Buffer.from('"result":'); // once per answer of the minimal relay (and of the relay)
const ERROR_NEEDLE = Buffer.from('"error":');

const count = (data: Buffer, needle: Buffer): number => {
  let c = 0;
  for (let at = data.indexOf(needle); at >= 0; at = data.indexOf(needle, at + needle.length)) c++;
  return c;
};

/**
 * A subscriber's socket, `onMessage` listening from its first frame. `lean`: LeanWebSocket, for the storm
 * and memory phases, where the clients' own connect cost shares the cores with the relay being measured.
 * Otherwise `ws`, as the baselines' subscribers use: in the throughput phase the relay's and the baselines'
 * subscribers receive through the same code (LeanWebSocket's receive path is not `ws`'s, and the
 * subscribers' CPU is on the same two cores as the server whose rate is measured).
 */
function subscriberSocket(url: string, localAddress: string | undefined, onMessage: (data: Buffer) => void, lean: boolean): Promise<WebSocket | LeanWebSocket> {
  if (lean) return LeanWebSocket.connect(url, localAddress, onMessage);
  const ws = new WebSocket(url, { perMessageDeflate: false, localAddress });
  ws.on('message', onMessage); // from construction: a frame in the same read as the 101 is not missed
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function openSocket(url: string, localAddress: string | undefined): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false, localAddress });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/**
 * A user's key, made before the user logs in: the secret, its public key (b64url), and a backend that signs
 * with its KeyObject. nodeBackend keeps only 16 private KeyObjects, and creating one costs ~0.7 ms under
 * Node 20: more than the relay spends on a whole login.
 */
interface UserKey {
  sk: Uint8Array;
  publicKey: string;
  backend: Ed25519Backend;
}

/**
 * Minimal tRPC-over-ws client: challenge, login with `key` (a fresh signature over this relay's challenge;
 * a user who logs in again after a relay restart has had the key all along), one `events` subscription;
 * then its signalling: a `signal.connect` stream on the same socket (the app's way), or a `/peerjs` socket.
 */
async function trpcClient(
  base: string,
  onFrame: (data: Buffer) => void,
  input: object,
  opts: { localAddress?: string; signalling: Signalling; key: UserKey; lean: boolean },
): Promise<(WebSocket | LeanWebSocket)[]> {
  const { key } = opts;
  const backend = key.backend;
  const replies = new Map<number, { resolve: (m: any) => void; reject: (e: Error) => void }>();
  const wait = (id: number) => new Promise<any>((resolve, reject) => replies.set(id, { resolve, reject }));
  // As the app's client (wsLink) opens a socket after a restart: the `events` subscription it resends and
  // the challenge in one frame (the stream starts at login, SPEC.md R7), then the login.
  const EVENTS = 1;
  const CHALLENGE = 2;
  const LOGIN = 3;
  const SIGNAL = 4;
  let started = false;
  let setUp = false;
  /** Waiting for the signal.connect stream's OPEN (its first data frame). */
  let signalOpen: ((frame: string) => void) | null = null;
  const ws = await subscriberSocket(`${base.replace('http', 'ws')}/trpc`, opts.localAddress, (data: Buffer) => {
    if (signalOpen && data.subarray(0, 16).toString().startsWith(`{"id":${SIGNAL},`)) {
      const text = data.toString();
      // 'started' first, then OPEN; an error (refused) ends the wait with its text.
      if (text.includes('"started"')) return;
      signalOpen(text);
      signalOpen = null;
      return;
    }
    if (setUp) return onFrame(data);
    const m = JSON.parse(data.toString());
    if (m.id === EVENTS && m.result?.type === 'started') started = true;
    // Switched here, not after the await: the first event can arrive in the same read as the login's answer.
    if (m.id === LOGIN && started) setUp = true;
    replies.get(m.id)?.resolve(m);
    replies.delete(m.id);
  }, opts.lean);
  // Closed before it was set up (a login timeout on an overloaded machine): fail the run, do not hang it.
  ws.once('close', (code, reason) => {
    for (const r of replies.values()) r.reject(new Error(`closed ${code} ${reason} during setup`));
    replies.clear();
  });
  // The frames wsLink sends: its key order, the input in superjson's form (`{json}`: these inputs are
  // plain JSON, for which superjson adds no meta).
  const request = (id: number, method: string, path: string, body: unknown) => ({ id, method, params: { input: { json: body }, path } });
  const { sk, publicKey } = key;
  const st = wait(EVENTS);
  const r1 = wait(CHALLENGE);
  ws.send(JSON.stringify([request(EVENTS, 'subscription', 'events', input), request(CHALLENGE, 'mutation', 'auth.challenge', { protocol: PROTOCOL_VERSION })]));
  const c1 = await r1;
  if (!c1.result) throw new Error(`challenge failed: ${JSON.stringify(c1)}`);
  const ch = c1.result.data.json;
  const origin = relayOrigin(base)!;
  const signature = await signLogin(backend, sk, { nonce: ch.nonce, relayKey: ch.relayKey, origin, publicKey, name: 'bench', kind: 'virtual' });
  const r2 = wait(LOGIN);
  ws.send(JSON.stringify(request(LOGIN, 'mutation', 'auth.login', { protocol: PROTOCOL_VERSION, publicKey, name: 'bench', kind: 'virtual', nonce: ch.nonce, origin, signature })));
  const started1 = await st;
  if (started1.result?.type !== 'started') throw new Error(`subscribe failed: ${JSON.stringify(started1)}`);
  const login = await r2;
  if (!login.result) throw new Error(`login failed: ${JSON.stringify(login)}`);
  if (opts.signalling === 'none') return [ws];
  const me = login.result.data.json as { self: { peerId: string }; peerToken: string; info: { peerjs: { path: string; key: string } } };
  if (opts.signalling === 'stream') {
    const opened = new Promise<string>((resolve) => (signalOpen = resolve));
    ws.send(JSON.stringify(request(SIGNAL, 'subscription', 'signal.connect', { peerId: me.self.peerId })));
    const text = await opened;
    if (!text.includes('OPEN')) throw new Error(`signalling refused: ${text}`);
    return [ws];
  }
  const path = me.info.peerjs.path.endsWith('/') ? me.info.peerjs.path : `${me.info.peerjs.path}/`;
  let opened: (first: string) => void = () => {};
  const first = new Promise<string>((resolve) => (opened = resolve));
  // Listening from the start: the OPEN frame can arrive in the same read as the upgrade response.
  const sig = await subscriberSocket(
    `${base.replace('http', 'ws')}${path}peerjs?key=${me.info.peerjs.key}&id=${me.self.peerId}&token=${me.peerToken}&version=1.5.5`,
    opts.localAddress,
    (d: Buffer) => opened(d.toString()),
    opts.lean,
  );
  const text = await Promise.race([
    first,
    new Promise<never>((_, reject) => {
      sig.once('error', reject);
      // Closed before its OPEN (refused, or cut): fail the run with the reason instead of hanging it.
      sig.once('close', (code, reason) => reject(new Error(`signalling socket closed ${code} ${reason} before OPEN`)));
    }),
  ]);
  if (!text.includes('OPEN')) throw new Error(`signalling refused: ${text}`);
  return [ws, sig];
}

/**
 * The throughput phase's publisher: logs in as `sk` over tRPC's wire protocol, then sends each slice of posts
 * as the very frame wsLink would send for them (one frame per turn, `JSON.stringify` of the requests in
 * wsLink's key order, inputs through superjson) and counts the answers without parsing them. The minimal
 * signing relay's publisher is as cheap; a full tRPC client here cost the main process ~10x the CPU of that
 * one (~1 s per 4,000 posts, plus the probe's envelope parsing) on the same two cores the relays run on.
 */
async function rawPublisher(base: string, sk: Uint8Array): Promise<{ send(posts: Post[]): void; answered(): number; refused(): string | null; close(): void }> {
  const backend = nodeBackend();
  const ws = await openSocket(`${base.replace('http', 'ws')}/trpc`, undefined);
  const call = (id: number, path: string, body: unknown) =>
    new Promise<any>((resolve) => {
      ws.once('message', (d: Buffer) => resolve(JSON.parse(d.toString())));
      ws.send(JSON.stringify({ id, method: 'mutation', params: { input: superjson.serialize(body), path } }));
    });
  const c = await call(1, 'auth.challenge', { protocol: PROTOCOL_VERSION });
  if (!c.result) throw new Error(`challenge failed: ${JSON.stringify(c)}`);
  const ch = c.result.data.json;
  const publicKey = toB64url(await backend.publicKeyOf(sk));
  const origin = relayOrigin(base)!;
  const signature = await signLogin(backend, sk, { nonce: ch.nonce, relayKey: ch.relayKey, origin, publicKey, name: 'publisher', kind: 'virtual' });
  const login = await call(2, 'auth.login', { protocol: PROTOCOL_VERSION, publicKey, name: 'publisher', kind: 'virtual', nonce: ch.nonce, origin, signature });
  if (!login.result) throw new Error(`login failed: ${JSON.stringify(login)}`);
  let answered = 0;
  let refused: string | null = null;
  ws.on('message', (d: Buffer) => {
    answered += count(d, RESULT_NEEDLE) + count(d, ERROR_NEEDLE);
    if (refused === null && d.includes(ERROR_NEEDLE)) refused = d.toString().slice(0, 300);
  });
  let id = 10;
  return {
    close: () => ws.close(),
    send: (posts) => ws.send(JSON.stringify(posts.map((p) => ({ id: id++, method: 'mutation', params: { input: superjson.serialize(p), path: 'chat.post', lastEventId: undefined } })))),
    answered: () => answered,
    refused: () => refused,
  };
}

/** PKCS #8 DER of an Ed25519 seed: this prefix, then the 32 bytes. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * A new user's key (a login then only signs). Not generateKeyPairSync: under Node 20 its key-generation job,
 * freed by a GC that a JWK export set off, deadlocked a client process on a mutex that export held (gdb:
 * ~KeyGenJob in a weak callback under ExportJWK); the bench then hung for good.
 */
function makeUserKey(): UserKey {
  const sk = randomSecretKey();
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, sk]), format: 'der', type: 'pkcs8' });
  // SPKI DER of an Ed25519 key ends with the 32 raw bytes.
  const raw = new Uint8Array(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-32));
  const backend: Ed25519Backend = {
    name: 'node:crypto, one held key',
    sign: async (_sk, message) => new Uint8Array(cryptoSign(null, message, privateKey)),
    publicKeyOf: async () => raw,
    verifyRaw: async () => false, // a client here verifies nothing
  };
  return { sk, publicKey: toB64url(raw), backend };
}

/** Users a client process holds keys for at most (a storm's share is 500). */
const MAX_USER_KEYS = 4096;

async function clientsRole(): Promise<void> {
  /** Keys made ahead (`prepare`), each used by one login; a login without one makes its own. */
  let keys: UserKey[] = [];
  let sockets: (WebSocket | LeanWebSocket)[] = [];
  let counts: number[] = [];
  /** `msgs` frames received since the last reset, all clients together (envelopes per frame = batching). */
  let msgFrames = 0;
  /** Per client, what presence shows it (SPEC.md P9): the members page and the online count. */
  let pages: Set<string>[] = [];
  let onlines: number[] = [];
  let presenceBytes = 0;
  let presenceFrames = 0;
  /** Presence frames by op (snapshot, page, counts, peers, watched). */
  let presenceOps: Record<string, number> = {};
  let target = Infinity;
  let rosterTarget = Infinity;
  let reached = 0;
  let rosterReached = 0;
  let onAll: ((t: number) => void) | null = null;
  let onRosters: ((t: number) => void) | null = null;
  const bump = (i: number, by: number) => {
    msgFrames++;
    const before = counts[i]!;
    counts[i] = before + by;
    if (before < target && counts[i]! >= target && ++reached === counts.length) onAll?.(now());
  };
  /** Complete: the count says everyone, and the page is full (min(page size, everyone)). */
  const complete = (i: number) => onlines[i]! >= rosterTarget && pages[i]!.size >= Math.min(LIMITS.presencePageSize, rosterTarget);
  const onPresence = (i: number, data: Buffer) => {
    if (!pages[i]) return; // a frame still arriving on a socket closeAll() just dropped
    const before = complete(i);
    const ev = JSON.parse(data.toString())?.result?.data?.json;
    if (ev?.op === 'snapshot' || ev?.op === 'page') {
      const page = pages[i]!;
      if (ev.op === 'snapshot' || ev.reset) page.clear();
      for (const id of ev.left ?? []) page.delete(id);
      for (const u of ev.users) page.add(u.sessionId);
    }
    if (typeof ev?.op === 'string') presenceOps[ev.op] = (presenceOps[ev.op] ?? 0) + 1;
    if (ev?.op === 'snapshot' || ev?.op === 'counts') onlines[i] = ev.online.browser + ev.online.virtual;
    if (!before && complete(i) && ++rosterReached === pages.length) onRosters?.(now());
  };
  serve({
    /** Makes the keys of the next `n` logins: users have their keys before the storm. */
    async prepare(m) {
      keys = Array.from({ length: Math.min(m.n as number, MAX_USER_KEYS) }, makeUserKey);
      return keys.length;
    },
    async connect(m) {
      const { url, n, kind, concurrency, presence, signalling, lean, addressBase, perAddress } = m as unknown as {
        url: string;
        n: number;
        kind: 'trpc' | 'bare' | 'batch';
        concurrency: number;
        presence?: boolean;
        signalling?: Signalling;
        /** Storm and memory phases: LeanWebSocket (see subscriberSocket). */
        lean?: boolean;
        /** Client k of this call connects from 127.1.x.y, address number addressBase + floor(k / perAddress). */
        addressBase?: number;
        perAddress?: number;
      };
      const input = { channels: ['general'], presence: presence ?? false };
      let next = 0;
      const worker = async () => {
        while (next < n) {
          const k = next++;
          const i = counts.push(0) - 1; // claimed before any await: workers run concurrently
          pages.push(new Set());
          onlines.push(0);
          const a = addressBase === undefined ? undefined : addressBase + Math.floor(k / perAddress!);
          const localAddress = a === undefined ? undefined : `127.1.${a >> 8}.${a & 255}`;
          if (kind === 'trpc') {
            const onFrame = (data: Buffer) => {
              const c = count(data, EPOCH_NEEDLE);
              if (c) return bump(i, c);
              if (data.subarray(0, 80).indexOf(PRESENCE_NEEDLE) >= 0) {
                presenceBytes += data.length;
                presenceFrames++;
                onPresence(i, data);
              }
            };
            const key = keys.pop() ?? makeUserKey();
            sockets.push(...(await trpcClient(url, onFrame, input, { localAddress, signalling: signalling ?? 'none', key, lean: lean ?? false })));
          } else {
            const ws = await openSocket(url, localAddress);
            ws.on('message', kind === 'bare' ? () => bump(i, 1) : (data: Buffer) => bump(i, count(data, EPOCH_NEEDLE)));
            sockets.push(ws);
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      return counts.length;
    },
    /** Resolves with the time at which every client had received `target` envelopes since the last reset. */
    async waitAll(m) {
      const t = m.target as number;
      return new Promise<number>((resolve) => {
        target = t;
        reached = counts.filter((c) => c >= t).length;
        onAll = resolve;
        if (reached === counts.length) resolve(now());
      });
    },
    /**
     * Resolves with the time at which every client's presence was complete for `target` online: the count
     * says `target` and the members page is full (SPEC.md P9).
     */
    async waitRosters(m) {
      const t = m.target as number;
      return new Promise<number>((resolve) => {
        rosterTarget = t;
        rosterReached = pages.filter((_, i) => complete(i)).length;
        onRosters = resolve;
        if (rosterReached === pages.length) resolve(now());
      });
    },
    presence: () => ({ bytes: presenceBytes, frames: presenceFrames, ops: presenceOps }),
    msgFrames: () => ({ frames: msgFrames, clients: counts.length }),
    reset() {
      msgFrames = 0;
      counts = counts.map(() => 0);
      target = Infinity;
      reached = 0;
      onAll = null;
      presenceBytes = 0;
      presenceFrames = 0;
      presenceOps = {};
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
      pages = [];
      onlines = [];
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
const MB = (b: number) => round(b / 2 ** 20);
const KiB = (b: number) => round(b / 1024, 1);

/** `msgs` frames each subscriber got since the last reset: 4,000 messages in fewer frames = bigger batches. */
async function framesPerSubscriber(clients: Child[]): Promise<number> {
  const all = await Promise.all(clients.map((c) => c.call<{ frames: number; clients: number }>('msgFrames')));
  return round(all.reduce((a, b) => a + b.frames, 0) / Math.max(1, all.reduce((a, b) => a + b.clients, 0)), 1);
}

/** How a client's PeerJS signalling is held: a stream on its tRPC socket (the app), a `/peerjs` socket, none. */
type Signalling = 'stream' | 'socket' | 'none';
/** The storm's and memory phase's (BENCH_SIGNALLING=socket|stream, default stream: as the app signals, W11). */
const STORM_SIGNALLING: Signalling = process.env.BENCH_SIGNALLING === 'socket' ? 'socket' : 'stream';
const SIGNALLING_LABEL = STORM_SIGNALLING === 'socket' ? '/peerjs socket each' : 'signal.connect stream each';
/** How long after the storm the settled reading waits (BENCH_SETTLE_S, default 20 s). */
const SETTLE_MS = (Number(process.env.BENCH_SETTLE_S) || 20) * 1000;

/** Logins in flight at once per client process in the storm and memory phases. */
const STORM_CONCURRENCY = Number(process.env.BENCH_STORM_CONCURRENCY) || 500;

async function connectAll(clients: Child[], args: { url: string; n: number; kind: 'trpc' | 'bare' | 'batch'; concurrency?: number; [k: string]: unknown }): Promise<void> {
  const per = Math.ceil(args.n / clients.length);
  await Promise.all(
    clients.map((c, i) => {
      const n = Math.min(per, args.n - i * per);
      // Each client process gets its own addresses.
      const addressBase = args.addressBase === undefined ? undefined : (args.addressBase as number) + i * Math.ceil(per / CFG.clientsPerAddress);
      return c.call('connect', { concurrency: 50, ...args, n, addressBase, perAddress: CFG.clientsPerAddress });
    }),
  );
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const { build } = await import('esbuild');
  mkdirSync(CACHE, { recursive: true });
  await build({ entryPoints: [SELF], outfile: BUNDLE, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' });
  const built = spawnSync(process.execPath, ['scripts/build-server.mjs'], { cwd: REPO, stdio: 'inherit' });
  if (built.status !== 0) throw new Error('build:server failed');
  const major = dockerNodeMajor(REPO) as number;
  nodeBin = nodeForMajor(major) as string;
  const { connectRelay } = await import('../src/shared/client/relayConnection');
  const backend = nodeBackend();
  const clients = await Promise.all(Array.from({ length: CFG.clientProcs }, () => spawnChild('clients', process.execPath)));
  const results: Record<string, unknown> = { subscribers: CFG.subscribers, messages: CFG.messages, relayNode: `v${major} (${nodeBin === process.execPath ? 'this' : 'registry'} binary)` };
  console.log(`relay and baselines under Node ${major} (${nodeBin}); clients under ${process.version}`);

  const text = 'x'.repeat(100);
  const sk = randomSecretKey();
  const author = toB64url(await backend.publicKeyOf(sk));
  const relayKey = toB64url(await backend.publicKeyOf(BENCH_RELAY_SEED));
  const makePosts = (n: number, tag: string): Promise<Post[]> =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        signPost(backend, sk, { channel: 'general', clientId: `${tag}${i}`.padEnd(8, '_'), text, attachments: [], replyTo: null, author, relay: relayKey, sentAt: Date.now() }),
      ),
    );
  // Re-signed for each paired round (below): a post older than POST_TIME_WINDOW_MS is refused (SPEC M6).
  let warmPosts = await makePosts(CFG.warmupMessages, 'w');
  let mainPosts = await makePosts(CFG.messages, 'm');

  // BENCH_ONLY=throughput|storm runs one part (profiling, debugging); the JSON then lacks the other's figures.
  const only = process.env.BENCH_ONLY;
  // ---- phase 1: relay throughput and latency ----
  let envelopesForBare: string[] = [];
  /** One relay process: warm-up, the timed blast, and (first run only) latency and the envelopes for the baselines. */
  const relayThroughput = async (first: boolean): Promise<{ msgsPerSec: number; cpuUsPerDelivery: number; frames: number }> => {
    const relay = await startRelay('lifted');
    console.log(`relay up at ${relay.url}; connecting ${CFG.subscribers} subscribers`);
    await connectAll(clients, { url: relay.url, n: CFG.subscribers - 1, kind: 'trpc' });
    const pub = await rawPublisher(relay.url, sk);
    const probe = await connectRelay({ url: relay.trpcUrl, secretKey: randomSecretKey(), name: 'probe', kind: 'virtual', backend, WebSocket });
    // The probe keeps each batch's text and its arrival time, and parses them only after the timed blast:
    // it shares the main process (and the machine's two cores) with the publisher.
    let batches: { t: number; raw: string }[] = [];
    let probeCount = 0;
    const sub = probe.client.events.subscribe(
      { channels: ['general'], presence: false },
      {
        onData(ev) {
          if (ev.t !== 'msgs') return;
          batches.push({ t: performance.now(), raw: ev.raw });
          for (let at = ev.raw.indexOf('"epoch":'); at >= 0; at = ev.raw.indexOf('"epoch":', at + 8)) probeCount++;
        },
      },
    );
    const envelopesOf = (): { t: number; env: Envelope }[] => batches.flatMap(({ t, raw }) => (parseEnvelopeBatch(raw) ?? []).map((env) => ({ t, env })));
    await sleep(200);

    /** Fires `posts` in frames of postsPerFrame without waiting for replies; resolves when all subscribers have them. */
    const blast = async (posts: Post[]): Promise<number> => {
      await Promise.all(clients.map((c) => c.call('reset')));
      const doneAt = Promise.all(clients.map((c) => c.call<number>('waitAll', { target: posts.length })));
      const base = probeCount;
      const until = pub.answered() + posts.length;
      const start = now();
      for (let i = 0; i < posts.length; i += CFG.postsPerFrame) {
        pub.send(posts.slice(i, i + CFG.postsPerFrame));
        // The pace of wsLink, which sends the calls of one turn as one frame (flushed on a setTimeout(0));
        // the minimal relay is fed at the same pace.
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setTimeout(r, 0));
      }
      while (pub.answered() < until) await sleep(2);
      if (pub.refused()) throw new Error(`the relay refused a post: ${pub.refused()}`);
      const ends = await doneAt;
      while (probeCount - base < posts.length) await sleep(5);
      return Math.max(...ends) - start;
    };

    console.log('warming up');
    await blast(warmPosts);
    batches = [];
    const cpu0 = relay.cpuUs();
    const ms = await blast(mainPosts);
    const cpu1 = relay.cpuUs();
    const out = { msgsPerSec: round((CFG.messages / ms) * 1000, 0), cpuUsPerDelivery: round((cpu1 - cpu0) / (CFG.messages * CFG.subscribers), 2), frames: await framesPerSubscriber(clients) };
    console.log(
      `relay: ${CFG.messages} msgs to ${CFG.subscribers} subscribers in ${round(ms)} ms = ${out.msgsPerSec} msgs/s ` +
        `(${out.cpuUsPerDelivery} us relay CPU per delivery, signing and verifying included; ${out.frames} frames per subscriber)`,
    );
    if (first) {
      results.relayCpuUsPerDelivery = out.cpuUsPerDelivery;
      results.relayMsgsPerSec = out.msgsPerSec;
      results.relayFramesPerSubscriber = out.frames;
      envelopesForBare = envelopesOf()
        .slice(0, CFG.messages)
        .map(({ env }) => JSON.stringify(env));

      // Latency as a user meets it: posts from the app's own client (wsLink), one at a time.
      const lat = await makePosts(CFG.latencyMessages, 'l');
      const poster = await connectRelay({ url: relay.trpcUrl, secretKey: sk, name: 'publisher', kind: 'virtual', backend, WebSocket });
      batches = [];
      const sentAt = new Map<string, number>();
      for (const p of lat) {
        sentAt.set(p.clientId, performance.now());
        void poster.client.chat.post.mutate(p);
        await sleep(CFG.latencyIntervalMs);
      }
      const arrivals = new Map<string, number>();
      for (;;) {
        for (const { t, env } of envelopesOf()) if (!arrivals.has(env.post.clientId)) arrivals.set(env.post.clientId, t);
        batches = [];
        if ([...sentAt.keys()].every((k) => arrivals.has(k))) break;
        await sleep(10);
      }
      const latencies = [...sentAt].map(([k, t]) => arrivals.get(k)! - t);
      results.latencyP50Ms = round(pct(latencies, 50), 2);
      results.latencyP99Ms = round(pct(latencies, 99), 2);
      console.log(`relay: post-to-delivery latency p50 ${results.latencyP50Ms} ms, p99 ${results.latencyP99Ms} ms (${CFG.latencyMessages} posts, every ${CFG.latencyIntervalMs} ms)`);
      await poster.close();
    }
    sub.unsubscribe();
    pub.close();
    await probe.close();
    await Promise.all(clients.map((c) => c.call('closeAll')));
    await relay.kill();
    return out;
  };
  if (only !== 'storm') await relayThroughput(true);

  // ---- phase 2: the three baselines, same messages, same subscriber count ----
  const baseline = async (role: 'bare' | 'batch' | 'minimal'): Promise<{ msgsPerSec: number; cpuUsPerDelivery: number; frames: number }> => {
    const server = await spawnChild(role, nodeBin);
    const { url } = await server.call<{ url: string }>('info');
    await connectAll(clients, { url: `${url}/sub`, n: CFG.subscribers, kind: role === 'bare' ? 'bare' : 'batch' });
    const pub = await openSocket(`${url}/pub`, undefined);
    let answered = 0;
    pub.on('message', (d: Buffer) => (answered += count(d, RESULT_NEEDLE)));
    const blast = async (items: string[] | Post[]): Promise<number> => {
      await Promise.all(clients.map((c) => c.call('reset')));
      const doneAt = Promise.all(clients.map((c) => c.call<number>('waitAll', { target: items.length })));
      const start = now();
      if (role === 'minimal') {
        const posts = items as Post[];
        const until = answered + posts.length;
        for (let i = 0; i < posts.length; i += CFG.postsPerFrame) {
          pub.send(JSON.stringify(posts.slice(i, i + CFG.postsPerFrame).map((post, j) => ({ id: i + j, post }))));
          await new Promise((r) => setImmediate(r)); // the relay's publisher pace (see above)
          await new Promise((r) => setTimeout(r, 0));
        }
        while (answered < until) await sleep(2);
      } else {
        for (const f of items as string[]) pub.send(f);
      }
      return Math.max(...(await doneAt)) - start;
    };
    await blast(role === 'minimal' ? warmPosts : envelopesForBare.slice(0, CFG.warmupMessages));
    const cpu0 = await server.call<number>('cpu');
    const ms = await blast(role === 'minimal' ? mainPosts : envelopesForBare);
    const cpu1 = await server.call<number>('cpu');
    const frames = await framesPerSubscriber(clients);
    pub.close();
    await Promise.all(clients.map((c) => c.call('closeAll')));
    await server.kill();
    return { msgsPerSec: round((CFG.messages / ms) * 1000, 0), cpuUsPerDelivery: round((cpu1 - cpu0) / (CFG.messages * CFG.subscribers), 2), frames };
  };
  const relayRate = results.relayMsgsPerSec as number;
  if (only !== 'storm') for (const [role, label, key] of [
    ['bare', 'bare ws broadcast, one frame per message', 'bare'],
    ['batch', 'bare ws coalescing per tick', 'coalescingWs'],
    ['minimal', 'minimal signing relay (coalescing, verify, countersign, answer)', 'minimalSigningRelay'],
  ] as const) {
    const b = await baseline(role);
    results[`${key}MsgsPerSec`] = b.msgsPerSec;
    results[`${key}CpuUsPerDelivery`] = b.cpuUsPerDelivery;
    results[`${key}FramesPerSubscriber`] = b.frames;
    results[`ratioVs_${key}`] = round(relayRate / b.msgsPerSec, 2);
    console.log(`${label}: ${b.msgsPerSec} msgs/s (${b.cpuUsPerDelivery} us server CPU per delivery, ${b.frames} frames per subscriber); relay/this = ${results[`ratioVs_${key}`]}`);
  }

  // ---- phase 2b: the relay and the minimal signing relay in alternating rounds ----
  // The phases above run one after another while the shared machine's load comes and goes, so their rate
  // ratio says more about the load than about the relays (0.49-1.27 over runs of the same code). Here each
  // round runs the relay and then the minimal signing relay back to back, fresh posts each, and the figure
  // is the median of the rounds' ratios: neighbours in time share most of the load.
  if (only !== 'storm' && CFG.pairedRounds > 0) {
    const ratios: number[] = [];
    const cpuRatios: number[] = [];
    for (let r = 0; r < CFG.pairedRounds; r++) {
      warmPosts = await makePosts(CFG.warmupMessages, `w${r}_`);
      mainPosts = await makePosts(CFG.messages, `m${r}_`);
      const a = await relayThroughput(false);
      const b = await baseline('minimal');
      ratios.push(round(a.msgsPerSec / b.msgsPerSec, 2));
      cpuRatios.push(round(b.cpuUsPerDelivery / a.cpuUsPerDelivery, 2));
      console.log(
        `paired round ${r + 1}: relay ${a.msgsPerSec} msgs/s (${a.cpuUsPerDelivery} us, ${a.frames} frames per subscriber), ` +
          `minimal ${b.msgsPerSec} msgs/s (${b.cpuUsPerDelivery} us, ${b.frames} frames); relay/minimal = ${ratios.at(-1)}`,
      );
    }
    results.pairedRatiosVsMinimal = ratios;
    results.pairedRatioVsMinimalMedian = pct(ratios, 50);
    /** Minimal's CPU per delivery over the relay's: the rate ratio the CPU cost alone would give. */
    results.pairedCpuRatiosVsMinimal = cpuRatios;
    console.log(`relay / minimal signing relay over ${CFG.pairedRounds} alternating rounds: median ${results.pairedRatioVsMinimalMedian} (${ratios.join(', ')}); by CPU per delivery ${cpuRatios.join(', ')}`);
  }

  // ---- phase 3: login storm with presence, then memory per client as users meet it ----
  let afterClientsExit = () => {};
  if (only !== 'throughput') {
    const relay = await startRelay('production');
    const baseNoGc = await relay.rss();
    const base = await relay.rssAfterGc();
    const heapBase = await heapSpaces(relay.url);
    const mapBase = rssByMapping(relay.pid);
    await relay.heapSnapshot();
    // BENCH_HOLD_BASE_S=n: the same hold before the storm (to attach heaptrack and see what the storm keeps).
    if (process.env.BENCH_HOLD_BASE_S) {
      console.log(`holding ${process.env.BENCH_HOLD_BASE_S} s before the storm; relay pid ${relay.pid}`);
      await sleep(Number(process.env.BENCH_HOLD_BASE_S) * 1000);
    }
    const n = CFG.stormClients;
    // Everyone's CPU for the storm: the relay's own, and the client processes' on the same cores (what the
    // wall clock spends on them is not the relay's).
    const clientsCpu = () => clients.reduce((sum, c) => sum + procCpuUs(c.proc.pid!), 0);
    // 1,000 distinct users, whose keys exist before the relay restarts; each login signs its challenge afresh.
    await Promise.all(clients.map((c) => c.call('prepare', { n: Math.ceil(n / clients.length) })));
    const ticks0 = await metric(relay.url, 'peerchat_presence_flushes_total');
    const stormCpu0 = relay.cpuUs();
    const clientsCpu0 = clientsCpu();
    const stormFromUs = monoUs();
    const start = now();
    await connectAll(clients, { url: relay.url, n, kind: 'trpc', presence: true, signalling: STORM_SIGNALLING, lean: true, concurrency: STORM_CONCURRENCY, addressBase: 0 });
    const loggedInAt = now();
    const allSeeAll = Math.max(...(await Promise.all(clients.map((c) => c.call<number>('waitRosters', { target: n })))));
    const stormCpuUs = relay.cpuUs() - stormCpu0;
    const stormClientsCpuUs = clientsCpu() - clientsCpu0;
    const stormToUs = monoUs();
    const ticks = (await metric(relay.url, 'peerchat_presence_flushes_total')) - ticks0;
    const presence = (await Promise.all(clients.map((c) => c.call<{ bytes: number; frames: number; ops: Record<string, number> }>('presence')))).reduce(
      (a, b) => ({
        bytes: a.bytes + b.bytes,
        frames: a.frames + b.frames,
        ops: Object.fromEntries([...new Set([...Object.keys(a.ops), ...Object.keys(b.ops)])].map((op) => [op, (a.ops[op] ?? 0) + (b.ops[op] ?? 0)])),
      }),
      { bytes: 0, frames: 0, ops: {} as Record<string, number> },
    );
    results.stormClients = n;
    results.stormSignalling = STORM_SIGNALLING;
    results.stormLoginS = round((loggedInAt - start) / 1000, 2);
    results.stormRosterCompleteS = round((allSeeAll - start) / 1000, 2);
    // What presence adds after the last login: on a loaded machine the logins themselves dominate the storm.
    results.stormPresenceAfterLastLoginS = round(Math.max(0, allSeeAll - loggedInAt) / 1000, 2);
    results.stormRelayCpuS = round(stormCpuUs / 1e6, 2);
    results.stormRelayCpuUsPerLogin = Math.round(stormCpuUs / n);
    results.stormClientsCpuS = round(stormClientsCpuUs / 1e6, 2);
    results.stormClientsCpuUsPerLogin = Math.round(stormClientsCpuUs / n);
    results.stormPresenceMB = MB(presence.bytes);
    results.stormPresenceFrames = presence.frames;
    results.stormPresenceFramesByOp = presence.ops;
    /** Relay turns in which presence went out (SPEC.md P8: one coalesced flush per turn). */
    results.stormPresenceTicks = ticks;
    results.stormPresenceBytesPerClient = Math.round(presence.bytes / n);
    console.log(
      `presence login storm: ${n} clients (presence on, ${SIGNALLING_LABEL}, production limits, ${Math.ceil(n / CFG.clientsPerAddress)} addresses) ` +
        `logged in ${results.stormLoginS} s, every client's count and members page complete at ${results.stormRosterCompleteS} s ` +
        `(${results.stormPresenceAfterLastLoginS} s after the last login), ${results.stormRelayCpuS} s of relay CPU ` +
        `(${results.stormRelayCpuUsPerLogin} us per login, ${STORM_SIGNALLING === 'socket' ? 'both upgrades' : 'the upgrade'} included); presence traffic ` +
        `${results.stormPresenceMB} MB in ${presence.frames} frames over ${ticks} relay turns (${JSON.stringify(presence.ops)}; ${KiB(results.stormPresenceBytesPerClient as number)} KiB per client: ` +
        `a page of ${LIMITS.presencePageSize}, a sample of ${LIMITS.presenceSampleSize}, the counts); ` +
        `the ${CFG.clientProcs} client processes used ${results.stormClientsCpuS} s of CPU (${results.stormClientsCpuUsPerLogin} us per login, ` +
        `${STORM_CONCURRENCY} connects at a time per process)`,
    );

    const atNNoGc = await relay.rss();
    // What a running relay holds once the storm is over, before any forced GC: SETTLE_MS later (V8's memory
    // reducer and the relay's malloc_trim have had their turn, as in production).
    await sleep(SETTLE_MS);
    const atNSettled = await relay.rss();
    const atN = await relay.rssAfterGc();
    // BENCH_HOLD_S=n: hold here n seconds, clients connected (to attach gdb, read /proc/<pid>/smaps, ...).
    if (process.env.BENCH_HOLD_S) {
      console.log(`holding ${process.env.BENCH_HOLD_S} s; relay pid ${relay.pid}`);
      await sleep(Number(process.env.BENCH_HOLD_S) * 1000);
    }
    const counts = await relay.healthz();
    // Where the first clients' RSS goes: V8's heap spaces, reserved (not used) bytes, from /metrics (its
    // default metrics are on, as in production). Growth of new space and code space is a one-off that the
    // 1,000 -> 2,000 slope does not pay again.
    const heapAtN = await heapSpaces(relay.url);
    const mapAtN = rssByMapping(relay.pid);
    await relay.heapSnapshot();
    const grown = Object.entries(heapAtN)
      .map(([space, bytes]) => `${space} +${MB(bytes - (heapBase[space] ?? 0))}`)
      .join(', ');
    console.log(`relay heap spaces reserved, base -> ${n} clients (MB): ${grown}`);
    results.rssGrowthByMappingAt1kMB = { brk: MB(mapAtN.brk - mapBase.brk), anon: MB(mapAtN.anon - mapBase.anon), file: MB(mapAtN.file - mapBase.file) };
    console.log(`relay RSS growth by mapping, base -> ${n} clients (MB): ${JSON.stringify(results.rssGrowthByMappingAt1kMB)} (brk: malloc's main heap; anon: V8 pages, arenas, stacks)`);
    results.heapSpaceGrowthAt1kMB = Object.fromEntries(Object.entries(heapAtN).map(([k, v]) => [k, MB(v - (heapBase[k] ?? 0))]));
    await Promise.all(clients.map((c) => c.call('reset')));
    const m = CFG.memoryClients;
    results.memoryBaseRssMB = MB(base);
    results.bytesPerClientAt1k = Math.round((atN - base) / n);
    results.bytesPerClientAt1kSettled = Math.round((atNSettled - baseNoGc) / n);
    results.bytesPerClientAt1kNoGc = Math.round((atNNoGc - baseNoGc) / n);
    console.log(
      `relay memory per client (presence on, ${SIGNALLING_LABEL}, production limits): base ${MB(base)} MB (${MB(baseNoGc)} MB without forced GC); ` +
        `${KiB(results.bytesPerClientAt1k as number)} KiB each at ${n} (${KiB(results.bytesPerClientAt1kNoGc as number)} KiB without forced GC, ` +
        `${KiB(results.bytesPerClientAt1kSettled as number)} KiB ${SETTLE_MS / 1000} s after the storm without forced GC); ${JSON.stringify(counts)}`,
    );
    try {
      await Promise.all(clients.map((c) => c.call('prepare', { n: Math.ceil((m - n) / clients.length) })));
      await connectAll(clients, { url: relay.url, n: m - n, kind: 'trpc', presence: true, signalling: STORM_SIGNALLING, lean: true, concurrency: STORM_CONCURRENCY, addressBase: 1000 });
      await Promise.all(clients.map((c) => c.call<number>('waitRosters', { target: m })));
      const atMNoGc = await relay.rss();
      const atM = await relay.rssAfterGc();
      results.memoryClients = m;
      results.bytesPerClientSlope = Math.round((atM - atN) / (m - n));
      results.bytesPerClientSlopeNoGc = Math.round((atMNoGc - atNNoGc) / (m - n));
      results.rssAtMemoryClientsMB = MB(atM);
      results.rssAtMemoryClientsNoGcMB = MB(atMNoGc);
      console.log(
        `relay memory per client from ${n} to ${m}: ${KiB(results.bytesPerClientSlope as number)} KiB each after GC ` +
          `(${KiB(results.bytesPerClientSlopeNoGc as number)} KiB without); RSS with ${m}: ${MB(atM)} MB after GC, ${MB(atMNoGc)} MB without ` +
          `(${JSON.stringify(await relay.healthz())})`,
      );
    } catch (err) {
      results.memoryClientsError = String(err).slice(0, 200);
      console.log(`growing to ${m} clients failed: ${results.memoryClientsError}`);
    }
    await Promise.all(clients.map((c) => c.call('closeAll')));
    await relay.kill();
    // BENCH_PROFILE: where the relay's storm CPU went, per login (the profile is written as the relay exits).
    const profile = relay.profilePath;
    if (profile) {
      const b = cpuProfileBreakdown(profile, join(REPO, 'dist/server/main.js'), stormFromUs, stormToUs);
      const perLogin = (share: number) => Math.round((share * stormCpuUs) / n);
      results.stormRelayCpuUsPerLoginBy = Object.fromEntries(b.shares.map((x) => [x.category, perLogin(x.share)]));
      console.log(
        `relay CPU per login in the storm by what it did (${profile}: shares of ${Math.round(b.sampledMs)} sampled ms, scaled to the ` +
          `${results.stormRelayCpuUsPerLogin} us measured; ${perLogin(b.socketWriteShare)} us of it in kernel socket writes):\n` +
          b.shares
            .map((x) => `  ${String(perLogin(x.share)).padStart(5)} us  ${(x.share * 100).toFixed(1).padStart(5)}%  ${x.category}: ${x.top.map((l) => `${l.fn} ${perLogin(l.share)}`).join(', ')}`)
            .join('\n'),
      );
    }
    // BENCH_PROFILE_CLIENTS=1: the client processes' heaviest functions in the storm, per login (their
    // profiles are written as they exit, at the end).
    afterClientsExit = () => {
      for (const c of clients) {
        const file = c.profilePath;
        if (!file) continue;
        const b = cpuProfileBreakdown(file, BUNDLE, stormFromUs, stormToUs);
        const perLogin = (share: number) => Math.round((share * stormClientsCpuUs) / n);
        console.log(`client process ${c.proc.pid} in the storm (${file}), us per login of all clients' CPU: ${b.top.map((l) => `${l.fn} ${perLogin(l.share)}`).join(', ')}`);
      }
    };
  }

  await Promise.all(clients.map((c) => c.kill()));
  afterClientsExit();
  results.targets = {
    ratioVsMinimalSigningRelayMin: 0.8,
    stormLoginMaxS: 3,
    stormPresenceMaxMB: 20,
    bytesPerClientMax: 12 * 1024,
    rssAt5kMaxMB: 200,
    /** The median of the alternating rounds when they ran, else the single sequential ratio. */
    ratioMet: ((results.pairedRatioVsMinimalMedian ?? results.ratioVs_minimalSigningRelay) as number) >= 0.8,
    stormTimeMet: (results.stormRosterCompleteS as number) < 3,
    stormBytesMet: (results.stormPresenceMB as number) < 20,
    bytesPerClientMet: Math.max(results.bytesPerClientAt1k as number, (results.bytesPerClientSlope as number | undefined) ?? 0) <= 12 * 1024,
    /** Projected from the slope when fewer than 5,000 were measured. */
    rss5kProjectedMB: results.bytesPerClientSlope === undefined ? null : MB((results.rssAtMemoryClientsMB as number) * 2 ** 20 + (5000 - CFG.memoryClients) * (results.bytesPerClientSlope as number)),
  };
  results.relayCommand = dockerRuntime(REPO).cmd;
  results.runtimeS = round((Date.now() - t0) / 1000);
  console.log(JSON.stringify(results));
}

const role = process.argv[2];
const roles: Record<string, () => Promise<void>> = { bare: bareRole, batch: batchRole, minimal: minimalRole, clients: clientsRole };
(roles[role ?? ''] ?? main)().catch((err) => {
  console.error(err);
  process.exit(1);
});
