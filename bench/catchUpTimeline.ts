// The catch-up's timeline, for `PEERCHAT_BENCH_TIMELINE=1 npm run bench:client` (part 4). An init script
// records, in each page, what the app does on the wire and in IndexedDB without touching the app: relay
// WebSocket open, data channel open, every peer frame sent and received (kind, request id, bytes), verify
// pool round trips (Worker postMessage -> reply), and IndexedDB transactions (mode, stores, duration).
// Off by default: the wrappers cost a little per frame, and the figure is measured without them.
import type { Page } from 'playwright-core';

export interface TimelineEvent {
  /** Date.now() in the page (both pages run on one machine, so their clocks agree). */
  t: number;
  e: string;
  kind?: number;
  req?: number;
  bytes?: number;
  more?: boolean;
  ms?: number;
  stores?: string;
  n?: number;
}

/** Runs in the page before its scripts (addInitScript). Self-contained: no imports. */
export function recordTimeline(): void {
  const w = window as unknown as { __tl: TimelineEvent[] };
  const tl: TimelineEvent[] = (w.__tl = []);
  const now = (): number => performance.timeOrigin + performance.now();
  const push = (ev: Omit<TimelineEvent, 't'>): void => void (tl.length < 200_000 && tl.push({ t: now(), ...ev }));
  const frame = (e: string, data: unknown): void => {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
    if (!bytes || bytes.length < 8) return push({ e, bytes: bytes?.length ?? -1 });
    push({ e, kind: bytes[1], more: (bytes[2]! & 1) !== 0, req: new DataView(bytes.buffer, bytes.byteOffset).getUint32(4), bytes: bytes.length });
  };
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (this: RTCDataChannel, data: never) {
    frame('tx', data);
    return send.call(this, data);
  };
  const Pc = RTCPeerConnection;
  const watch = (dc: RTCDataChannel): void => {
    dc.addEventListener('open', () => push({ e: 'dc-open' }));
    dc.addEventListener('message', (m) => frame('rx', m.data));
  };
  const createDataChannel = Pc.prototype.createDataChannel;
  Pc.prototype.createDataChannel = function (this: RTCPeerConnection, ...a: Parameters<RTCPeerConnection['createDataChannel']>) {
    const dc = createDataChannel.apply(this, a);
    watch(dc);
    return dc;
  };
  window.RTCPeerConnection = class extends Pc {
    constructor(...a: ConstructorParameters<typeof RTCPeerConnection>) {
      super(...a);
      push({ e: 'pc-new' });
      this.addEventListener('datachannel', (ev) => watch((ev as RTCDataChannelEvent).channel));
    }
  } as typeof RTCPeerConnection;
  const Ws = WebSocket;
  window.WebSocket = class extends Ws {
    constructor(url: string | URL, p?: string | string[]) {
      super(url, p);
      const path = new URL(String(url)).pathname;
      push({ e: `ws-new ${path}` });
      this.addEventListener('open', () => push({ e: `ws-open ${path}` }));
    }
  } as typeof WebSocket;
  const post = Worker.prototype.postMessage;
  let sent = 0;
  Worker.prototype.postMessage = function (this: Worker, ...a: [never]) {
    const msg = a[0] as { envs?: unknown[] } | undefined;
    push({ e: 'verify-post', n: Array.isArray(msg?.envs) ? msg.envs.length : -1 });
    if (sent++ === 0 || !(this as unknown as { __tl?: boolean }).__tl) {
      (this as unknown as { __tl?: boolean }).__tl = true;
      this.addEventListener('message', () => push({ e: 'verify-reply' }));
    }
    return post.apply(this, a);
  };
  const transaction = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function (this: IDBDatabase, ...a: Parameters<IDBDatabase['transaction']>) {
    const tx = transaction.apply(this, a);
    const start = now();
    const stores = [...tx.objectStoreNames].join('+');
    const mode = tx.mode;
    tx.addEventListener('complete', () => push({ e: `idb-${mode}`, stores: `${this.name}:${stores}`, ms: Math.round(now() - start) }));
    return tx;
  };
}

const KIND = ['BYE', 'HELLO', 'RECON', 'RECON_REPLY', 'GET_MSGS', 'MSGS', 'OFFER', 'OFFER_REPLY', 'WANT', 'HAVE', 'GET_HASHES', 'HASHES', 'GET_CHUNKS', 'CHUNK', 'NACK'];

/**
 * The init script's source. tsx compiles functions with esbuild's keepNames, which calls a `__name` helper
 * the page does not have; it is defined here as the identity.
 */
export const timelineScript = (): { content: string } => ({ content: `var __name = (f) => f; (${recordTimeline.toString()})();` });

export async function takeTimeline(page: Page): Promise<TimelineEvent[]> {
  return page.evaluate(() => (window as unknown as { __tl?: TimelineEvent[] }).__tl ?? []);
}

/**
 * A readable summary of both pages from `t0` (the click): milestones, the MSGS answers as the requester
 * saw them, and counts of the work each page did.
 */
export function summarize(t0: number, seeder: TimelineEvent[], fresh: TimelineEvent[], tDone: number): string[] {
  const rel = (t: number): string => `+${Math.round(t - t0)}`.padStart(7);
  const out: string[] = [];
  const after = (xs: TimelineEvent[]) => xs.filter((x) => x.t >= t0 - 50 && x.t <= tDone + 50);
  const b = after(fresh);
  const a = after(seeder);
  const first = (xs: TimelineEvent[], pred: (x: TimelineEvent) => boolean, label: string): void => {
    const x = xs.find(pred);
    out.push(`${x ? rel(x.t) : '      -'} ms  ${label}`);
  };
  first(b, (x) => x.e.startsWith('ws-open /trpc') || x.e.startsWith('ws-open'), 'newcomer: relay socket open');
  first(b, (x) => x.e === 'pc-new', 'newcomer: first RTCPeerConnection');
  first(b, (x) => x.e === 'dc-open', 'newcomer: data channel open');
  first(b, (x) => x.e === 'rx' && x.kind === 1, 'newcomer: HELLO received');
  first(b, (x) => x.e === 'tx' && x.kind === 2, 'newcomer: first RECON sent');
  first(b, (x) => x.e === 'tx' && x.kind === 4, 'newcomer: first GET_MSGS sent');
  first(b, (x) => x.e === 'rx' && x.kind === 5, 'newcomer: first MSGS frame received');
  const last = [...b].reverse().find((x) => x.e === 'rx' && x.kind === 5);
  out.push(`${last ? rel(last.t) : '      -'} ms  newcomer: last MSGS frame received`);
  out.push(`${rel(tDone)} ms  10,000 counted in the store`);
  const count = (xs: TimelineEvent[], pred: (x: TimelineEvent) => boolean): number => xs.filter(pred).length;
  const sum = (xs: TimelineEvent[], pred: (x: TimelineEvent) => boolean, f: (x: TimelineEvent) => number): number =>
    xs.filter(pred).reduce((s, x) => s + f(x), 0);
  for (const [who, xs] of [['newcomer', b], ['seeder', a]] as const) {
    const byKind = (dir: string) =>
      KIND.map((k, i) => [k, count(xs, (x) => x.e === dir && x.kind === i), sum(xs, (x) => x.e === dir && x.kind === i, (x) => x.bytes ?? 0)] as const)
        .filter(([, n]) => n > 0)
        .map(([k, n, by]) => `${k} ${n} (${Math.round(by / 1024)} KiB)`)
        .join(', ');
    out.push(`${who}: frames sent: ${byKind('tx')}`);
    out.push(`${who}: frames received: ${byKind('rx')}`);
    const idb = new Map<string, { n: number; ms: number }>();
    for (const x of xs) if (x.e.startsWith('idb-')) {
      const k = `${x.e} ${x.stores}`;
      const v = idb.get(k) ?? { n: 0, ms: 0 };
      v.n++;
      v.ms += x.ms ?? 0;
      idb.set(k, v);
    }
    out.push(`${who}: IndexedDB: ${[...idb].map(([k, v]) => `${k} x${v.n} (${v.ms} ms open in sum)`).join('; ') || 'none'}`);
    out.push(`${who}: verify posts: ${count(xs, (x) => x.e === 'verify-post')} (${sum(xs, (x) => x.e === 'verify-post', (x) => Math.max(0, x.n ?? 0))} envelopes), replies ${count(xs, (x) => x.e === 'verify-reply')}`);
  }
  // MSGS answers per request as the newcomer saw them: first frame, last frame, bytes.
  const reqs = new Map<number, { sent: number; first?: number; last?: number; bytes: number; frames: number }>();
  for (const x of b) {
    if (x.e === 'tx' && x.kind === 4) reqs.set(x.req!, { sent: x.t, bytes: 0, frames: 0 });
    if (x.e === 'rx' && x.kind === 5) {
      const r = reqs.get(x.req!);
      if (!r) continue;
      r.first ??= x.t;
      r.last = x.t;
      r.bytes += x.bytes ?? 0;
      r.frames++;
    }
  }
  out.push('GET_MSGS (sent -> first MSGS frame -> last frame, frames, KiB):');
  let line = '';
  for (const [req, r] of reqs) {
    line += ` #${req} ${rel(r.sent).trim()}->${r.first ? rel(r.first).trim() : '-'}->${r.last ? rel(r.last).trim() : '-'} ${r.frames}f ${Math.round(r.bytes / 1024)}K;`;
    if (line.length > 150) (out.push(line), (line = ''));
  }
  if (line) out.push(line);
  return out;
}
