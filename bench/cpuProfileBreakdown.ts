// Where a relay's CPU went during one window of a `--cpu-prof` profile (bench:relay's storm with
// BENCH_PROFILE): each sample is put in the first category below that one of its stack frames matches, in
// the order listed, so presence work that ends in a socket write counts as presence, and a verify called by
// the login procedure counts as the verify. The bundle (dist/server/main.js) names its source modules in
// `// src/...` comments; they map a frame's line to its module.
//
// Samples are taken on the wall clock while the relay runs, so on a machine whose cores are shared a
// preempted relay inflates the sampled time; the shares are what the bench prints, scaled to the relay's
// measured CPU (/proc).
import { readFileSync } from 'node:fs';

interface Frame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: Frame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A frame as the rules see it: its function and the module it is in (a source path for bundled code). */
interface Where {
  fn: string;
  module: string;
}

const RULES: [category: string, matches: (w: Where) => boolean][] = [
  ['GC', (w) => w.fn === '(garbage collector)'],
  ['Ed25519 verify', (w) => w.fn === 'verifyOneShot' || w.module.includes('src/shared/crypto/')],
  ['presence fan-out (PresenceFanout, its sends included)', (w) => w.module.endsWith('src/server/PresenceFanout.ts')],
  ['challenge book', (w) => w.module.endsWith('src/server/ChallengeBook.ts')],
  ['session registration', (w) => w.module.endsWith('src/server/SessionRegistry.ts')],
  ['metrics', (w) => w.module.includes('prom-client') || /src\/server\/(metrics|RelayStats)\.ts$/.test(w.module)],
  ['logging', (w) => w.module.includes('pino') || w.module.endsWith('src/server/logger.ts')],
  ['rate limits', (w) => w.module.includes('rate-limiter-flexible')],
  ['signalling (signal.connect stream, or /peerjs upgrade and socket)', (w) => w.module.includes('src/server/signalling/')],
  ['superjson', (w) => w.module.includes('superjson')],
  ['zod input validation', (w) => w.module.includes('/zod/')],
  ['tRPC procedure call (middlewares)', (w) => w.module.includes('@trpc/server')],
  ['event stream start and replies (EventHub)', (w) => w.module.endsWith('src/server/EventHub.ts')],
  ['login and challenge procedures (router)', (w) => w.module.endsWith('src/server/router.ts')],
  ['/trpc upgrade (HTTP upgrade, ws handshake)', (w) => (w.module.endsWith('src/server/createRelay.ts') && /upgrade|TrpcSocket/i.test(w.fn)) || w.module.endsWith('ws/lib/websocket-server.js')],
  ['tRPC frame parse, dispatch, reply encode (adapter)', (w) => /src\/server\/(trpcWsAdapter|frameEncoder|RelaySocket)\.ts$/.test(w.module)],
  ['ws frames in and out', (w) => w.module.includes('/ws/lib/')],
  ['HTTP accept and parse', (w) => /^node:(_http_server|_http_common|net)$/.test(w.module) && /connection|Parser|onIncoming|Headers/i.test(w.fn)],
  ['socket writes (kernel)', (w) => /^(writev|writeUtf8String|writeBuffer|writeLatin1String)$/.test(w.fn)],
  ['socket reads', (w) => w.fn === 'onStreamRead'],
];
const OTHER = 'other';
/** Leaf functions listed per category. */
const TOP_LEAVES = 4;
/** Leaf functions listed overall. */
const TOP_OVERALL = 12;

/** The source module of each line of a bundle, from esbuild's `// path` markers. */
function moduleLines(bundle: string): (line: number) => string {
  const marks: [line: number, module: string][] = [];
  bundle.split('\n').forEach((text, i) => {
    const m = /^\/\/ ((?:src|bench|node_modules)\/\S+)$/.exec(text);
    if (m) marks.push([i, m[1]!]);
  });
  return (line) => {
    let lo = 0;
    let hi = marks.length - 1;
    let found = '';
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (marks[mid]![0] <= line) {
        found = marks[mid]![1];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

export interface Breakdown {
  /** Sampled ms in the window (wall clock while on the relay's thread). */
  sampledMs: number;
  /** Share of the window's samples by category, largest first, with the category's heaviest leaf functions. */
  shares: { category: string; share: number; top: { fn: string; share: number }[] }[];
  /** Share of the samples whose leaf is a kernel socket write, whatever category they are in. */
  socketWriteShare: number;
  /** The heaviest leaf functions, whatever their category. */
  top: { fn: string; share: number }[];
}

/** Categorizes the samples of `profilePath` taken in [fromUs, toUs] (the monotonic clock, µs: process.hrtime). */
export function cpuProfileBreakdown(profilePath: string, bundlePath: string, fromUs: number, toUs: number): Breakdown {
  const p = JSON.parse(readFileSync(profilePath, 'utf8')) as CpuProfile;
  const moduleOf = moduleLines(readFileSync(bundlePath, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const where = (f: Frame): Where => ({
    fn: f.functionName,
    module: f.url.endsWith(bundlePath) ? moduleOf(f.lineNumber) : f.url.replace(/^file:\/\//, ''),
  });
  // A node's category depends only on its stack: computed once per node.
  const categoryOf = new Map<number, string>();
  const categorize = (id: number): string => {
    const known = categoryOf.get(id);
    if (known !== undefined) return known;
    const stack: Where[] = [];
    for (let q: number | undefined = id; q !== undefined; q = parent.get(q)) stack.push(where(byId.get(q)!.callFrame));
    const rule = RULES.find(([, matches]) => stack.some(matches));
    const c = rule ? rule[0] : OTHER;
    categoryOf.set(id, c);
    return c;
  };
  const sums = new Map<string, number>();
  const leaves = new Map<string, Map<string, number>>();
  const allLeaves = new Map<string, number>();
  let total = 0;
  let writes = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    if (t < fromUs || t > toUs) continue;
    const node = byId.get(p.samples[i]!)!;
    if (node.callFrame.functionName === '(idle)') continue;
    // The sample's weight: the time to the next sample (the last one's is negligible).
    const dt = p.timeDeltas[i + 1] ?? 0;
    const c = categorize(node.id);
    sums.set(c, (sums.get(c) ?? 0) + dt);
    const w = where(node.callFrame);
    const leaf = `${w.fn || '(anonymous)'} ${w.module.split('/').slice(-2).join('/')}:${node.callFrame.lineNumber + 1}`;
    let byLeaf = leaves.get(c);
    if (!byLeaf) leaves.set(c, (byLeaf = new Map()));
    byLeaf.set(leaf, (byLeaf.get(leaf) ?? 0) + dt);
    allLeaves.set(leaf, (allLeaves.get(leaf) ?? 0) + dt);
    total += dt;
    if (/^(writev|writeUtf8String|writeBuffer|writeLatin1String)$/.test(node.callFrame.functionName)) writes += dt;
  }
  const share = (us: number) => (total > 0 ? us / total : 0);
  const heaviest = (m: Map<string, number>, k: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([fn, us]) => ({ fn, share: share(us) }));
  const shares = [...sums]
    .sort((a, b) => b[1] - a[1])
    .map(([category, us]) => ({
      category,
      share: share(us),
      top: heaviest(leaves.get(category)!, TOP_LEAVES),
    }));
  return { sampledMs: total / 1000, shares, socketWriteShare: share(writes), top: heaviest(allLeaves, TOP_OVERALL) };
}
