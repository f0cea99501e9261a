// A Node peer in its own process (e2e/fixtures/nodePeerChild.ts: a NodePeer of kind 'browser' over real
// PeerJS + @roamhq/wrtc), driven over IPC from a scenario; its output goes to the stage's <name>.log.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildReport, ChildRequest } from '../fixtures/nodePeerChild';
import type { Actor, Relay, Stage } from './kit';

const childScript = fileURLToPath(new URL('../fixtures/nodePeerChild.ts', import.meta.url));

export class NodePeerProcess implements Actor {
  private readonly proc: ChildProcess;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly exited: Promise<void>;
  peerId = '';

  private constructor(
    stage: Stage,
    readonly name: string,
  ) {
    this.proc = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), childScript], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.proc.stdout!.on('data', (d) => stage.log(`${name}.log`, String(d)));
    this.proc.stderr!.on('data', (d) => stage.log(`${name}.log`, String(d)));
    this.proc.on('message', (m: { seq: number; ok: boolean; result?: unknown; error?: string }) => {
      const w = this.waiting.get(m.seq);
      this.waiting.delete(m.seq);
      if (m.ok) w?.resolve(m.result);
      else w?.reject(new Error(`${name}: ${m.error}`));
    });
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', (code, signal) => {
        for (const w of this.waiting.values()) w.reject(new Error(`${name} exited (${code ?? signal})`));
        resolve();
      }),
    );
  }

  /** Starts the process and its peer, online at `relay`. */
  static async start(stage: Stage, name: string, relay: Relay, opts: Pick<Extract<ChildRequest, { op: 'start' }>, 'forge'> = {}): Promise<NodePeerProcess> {
    const p = stage.own(new NodePeerProcess(stage, name));
    p.peerId = (await p.call<{ peerId: string }>({ op: 'start', relayUrl: relay.url, name, ...opts })).peerId;
    return p;
  }

  call<T>(req: ChildRequest): Promise<T> {
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ seq, req });
    });
  }

  report(): Promise<ChildReport> {
    return this.call<ChildReport>({ op: 'report' });
  }

  async screenshot(): Promise<string> {
    return '';
  }

  /** Stops the peer; the process then ends by itself (a kill only if it does not). */
  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const r = await Promise.race([this.call<{ liveResources: number }>({ op: 'stop' }).catch(() => null), this.exited.then(() => null)]);
    const done = await Promise.race([this.exited.then(() => true), new Promise((res) => setTimeout(() => res(false), 10_000))]);
    if (!done) this.proc.kill('SIGKILL');
    await this.exited;
    if (r) assert.equal(r.liveResources, 0, `${this.name} left resources behind`);
  }
}
