// `npm run bench:virtual`: resident memory of virtual clients (SPEC.md VC3, VC5), on loopback. Not a test.
//
// Each measurement runs in a fresh child process (this file bundled by esbuild, packages external, under
// plain node with the flags the relay uses to start its virtual-client child), so its RSS is only the
// virtual clients' and not tsx's: the child first records its own Node baseline (after gc, before
// loading any virtual-client code), then loads the code, starts the clients, lets them settle and
// records RSS again after gc. The relay runs in this (parent) process.
//
//   idle x1    one virtual client, logged in, Peer registered, nothing cached
//   idle x10   ten in one process (they also link to each other: virtual peers catch up from virtual peers)
//   busy hour  one virtual client after caching an hour of a busy channel: 3,600 messages (1/s) of
//              40-400 characters, one in 60 carrying a 64 KiB attachment it fetches from the poster
//
// The last line of output is one JSON object with every figure.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHILD_FLAGS } from '../src/virtual/superviseVirtualClients';
import type { VirtualClient as VirtualClientType } from '../src/virtual/VirtualClient';

const SELF = fileURLToPath(import.meta.url);
const BUNDLE_DIR = fileURLToPath(new URL('../node_modules/.cache/peerchat-bench/virtual/', import.meta.url));
/** Code splitting: the child's baseline is Node plus this file's entry, not the virtual-client code it loads after. */
const BUNDLE = join(BUNDLE_DIR, 'virtual.bench.js');
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const BUSY = { messages: 3600, attachmentEvery: 60, attachmentBytes: 64 * 1024 };

interface Sample {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** Memory after two full collections and a pause (wrtc frees native memory when objects are collected). */
async function settledMemory(): Promise<Sample> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  let best: Sample | null = null;
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(150);
    gc();
    const m = process.memoryUsage();
    if (!best || m.rss < best.rss) best = { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
  }
  return best!;
}

/** OS threads of this process (Linux): wrtc keeps native threads per connection until collected. */
function threadCount(): number | null {
  try {
    return Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------
// child: measures; driven by the parent over IPC

async function child(): Promise<void> {
  const baseline = await settledMemory();
  const baselineThreads = threadCount();
  const { VirtualClient } = await import('../src/virtual/VirtualClient');
  const { loadPeerjsForNode } = await import('../src/virtual/wrtcPeer');
  await loadPeerjsForNode(); // wrtc's native library and PeerJS are part of what a client costs
  const loaded = await settledMemory();
  const dir = mkdtempSync(join(tmpdir(), 'peerchat-vbench-'));
  let clients: VirtualClientType[] = [];
  process.on('message', async (m: { cmd: string; relayUrl?: string; count?: number; messages?: number; attachments?: number }) => {
    try {
      if (m.cmd === 'start') {
        clients = await Promise.all(
          Array.from({ length: m.count! }, (_, i) => VirtualClient.start({ relayUrl: m.relayUrl!, keyFile: join(dir, `v${i}.key`), name: `bench-${i}` })),
        );
        await Promise.all(clients.map((c) => c.node.whenOnline()));
        await Promise.all(clients.map((c) => c.node.waitFor(() => c.status().peers >= m.count! - 1)));
        process.send!({ ok: true });
      } else if (m.cmd === 'measure') {
        // Wait for the cache to hold what the parent sent, then for links and transfers to go quiet.
        const c = clients[0]!;
        await c.node.waitFor(() => c.status().messages >= (m.messages ?? 0) && c.store.stats().attachments >= (m.attachments ?? 0));
        if (m.attachments) {
          await c.node.waitFor(async () => (await c.store.listAttachmentIds({})).length >= m.attachments!);
        }
        await sleep(2000);
        const after = await settledMemory();
        const s = clients.map((x) => x.status());
        process.send!({
          ok: true,
          baseline,
          loaded,
          after,
          threads: { baseline: baselineThreads, after: threadCount() },
          status: { messages: s[0]!.messages, attachments: s[0]!.attachments, bytes: s[0]!.bytes, links: s.reduce((a, x) => a + x.links, 0) },
        });
      } else if (m.cmd === 'stop') {
        await Promise.all(clients.map((c) => c.stop()));
        rmSync(dir, { recursive: true, force: true });
        process.send!({ ok: true });
        process.disconnect();
      }
    } catch (err) {
      process.send!({ ok: false, err: String((err as Error)?.stack ?? err) });
    }
  });
  process.send!({ ok: true, ready: true });
}

// ---------------------------------------------------------------------------------------------------------
// parent

function call(proc: ChildProcess, msg: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: Record<string, unknown>) => {
      proc.off('message', onMsg);
      if (m.ok) resolve(m);
      else reject(new Error(String(m.err)));
    };
    proc.on('message', onMsg);
    proc.send(msg);
  });
}

function spawnChild(): Promise<ChildProcess> {
  const proc = fork(BUNDLE, ['--child'], { execArgv: CHILD_FLAGS, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    proc.once('message', () => resolve(proc));
    proc.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
}

const mb = (n: number) => Math.round((n / MiB) * 10) / 10;

async function parent(): Promise<void> {
  const { build } = await import('esbuild');
  rmSync(BUNDLE_DIR, { recursive: true, force: true });
  await build({
    entryPoints: [SELF],
    outdir: BUNDLE_DIR,
    outExtension: { '.js': '.js' },
    splitting: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  writeFileSync(join(BUNDLE_DIR, 'package.json'), '{"type":"module"}');
  const { startRelayWithSignalling } = await import('../e2e/fixtures/relayWithSignalling');
  const { NodePeer } = await import('../src/virtual/NodePeer');
  const { randomSecretKey } = await import('../src/shared/crypto/ed25519');
  const { content } = await import('../e2e/fixtures/relayWithSignalling');
  const relay = await startRelayWithSignalling({ limits: { postsPerMinute: 1e6, mintsPerMinute: 1e6, maxFramesPerSecond: 1e6 } });
  const results: Record<string, unknown> = {};

  async function idle(count: number) {
    const proc = await spawnChild();
    await call(proc, { cmd: 'start', relayUrl: relay.url, count });
    const r = await call(proc, { cmd: 'measure' });
    await call(proc, { cmd: 'stop' });
    await new Promise((res) => proc.once('exit', res));
    const base = r.baseline as Sample;
    const after = r.after as Sample;
    const loaded = r.loaded as Sample;
    const out = {
      clients: count,
      baselineRssMiB: mb(base.rss),
      codeLoadedRssMiB: mb(loaded.rss - base.rss),
      rssMiB: mb(after.rss - base.rss),
      perClientMiB: mb((after.rss - loaded.rss) / count),
      heapUsedMiB: mb(after.heapUsed - base.heapUsed),
      links: (r.status as { links: number }).links,
      threads: r.threads,
    };
    console.log(
      `idle x${count}: +${out.rssMiB} MiB RSS over the Node baseline (${out.baselineRssMiB} MiB): code ${out.codeLoadedRssMiB} MiB, ` +
        `${out.perClientMiB} MiB per client; heap +${out.heapUsedMiB} MiB; ${out.links} links; threads ${JSON.stringify(out.threads)}`,
    );
    return out;
  }

  results.idle1 = await idle(1);
  results.idle10 = await idle(10);

  // Busy hour: the parent's poster publishes and posts; the child's virtual client caches it all.
  {
    const proc = await spawnChild();
    await call(proc, { cmd: 'start', relayUrl: relay.url, count: 1 });
    const poster = await NodePeer.start({ relayUrl: relay.url, secretKey: randomSecretKey(), name: 'poster', kind: 'browser' });
    await poster.whenOnline();
    const t0 = Date.now();
    let attachments = 0;
    const words = 'the quick brown fox jumps over a lazy dog while peers gossip about history'.split(' ');
    for (let i = 0; i < BUSY.messages; ) {
      const batch: Promise<unknown>[] = [];
      for (let k = 0; k < 20 && i < BUSY.messages; k++, i++) {
        const n = 8 + ((i * 37) % 72); // 40-400 characters
        const text = Array.from({ length: n }, (_, j) => words[(i + j) % words.length]).join(' ').slice(0, 400);
        if (i % BUSY.attachmentEvery === 0) {
          attachments++;
          const idx = i;
          batch.push(
            poster
              .publishAttachment(content(BUSY.attachmentBytes, idx + 1), { name: `photo-${idx}.jpg`, mime: 'image/jpeg' })
              .then((att) => poster.post('general', text, [att])),
          );
        } else {
          batch.push(poster.post('general', text));
        }
      }
      await Promise.all(batch);
    }
    const postMs = Date.now() - t0;
    const r = await call(proc, { cmd: 'measure', messages: BUSY.messages, attachments });
    await call(proc, { cmd: 'stop' });
    await new Promise((res) => proc.once('exit', res));
    await poster.stop();
    const base = r.baseline as Sample;
    const after = r.after as Sample;
    const st = r.status as { messages: number; attachments: number; bytes: number };
    const out = {
      messages: st.messages,
      attachments: st.attachments,
      accountedMiB: mb(st.bytes),
      rssMiB: mb(after.rss - base.rss),
      heapUsedMiB: mb(after.heapUsed - base.heapUsed),
      arrayBuffersMiB: mb(after.arrayBuffers - base.arrayBuffers),
      postSeconds: Math.round(postMs / 100) / 10,
    };
    console.log(
      `busy hour: ${out.messages} messages + ${out.attachments} attachments cached (${out.accountedMiB} MiB accounted) -> ` +
        `+${out.rssMiB} MiB RSS over the baseline (heap +${out.heapUsedMiB} MiB, array buffers +${out.arrayBuffersMiB} MiB); posted in ${out.postSeconds} s`,
    );
    results.busyHour = out;
  }

  await relay.close();
  const idle1 = results.idle1 as { rssMiB: number };
  console.log(`target: one idle virtual client under 40 MiB beyond the Node baseline: ${idle1.rssMiB < 40 ? 'met' : 'NOT met'} (${idle1.rssMiB} MiB)`);
  console.log(JSON.stringify({ bench: 'virtual', flags: CHILD_FLAGS, node: process.version, ...results }));
}

if (process.argv.includes('--child')) await child();
else await parent();
