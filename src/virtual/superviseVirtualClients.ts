// The relay's side of PEERCHAT_VIRTUAL_CLIENTS (SPEC.md VC9): runs the virtual-client CLI as a CHILD
// process, so a native crash in @roamhq/wrtc (its tracker reports segfaults on close) takes down the
// virtual clients, never the relay. A child that dies is restarted with jittered exponential backoff
// (reset once it has stayed up for `stableMs`); stop() sends SIGTERM, waits, then SIGKILL.
//
// Node-only, no wrtc import: the relay bundle imports this file without loading WebRTC.
import { type ChildProcess, spawn as nodeSpawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Node flags of the virtual-client child. */
export const CHILD_FLAGS = ['--expose-gc', '--max-semi-space-size=4'];

export interface VirtualEntry {
  command: string;
  args: string[];
}

/**
 * How to start the virtual-client CLI next to the running relay: the bundled `dist/virtual/main.js` when
 * the relay runs from `dist/server/main.js`, else `src/virtual/main.ts` through tsx (development).
 * `--expose-gc` lets the child collect closed wrtc connections (VC5); `--max-semi-space-size=4` keeps V8's
 * young generation from growing to 48 MiB under bursts (bench/relay.bench.ts measured it for the relay;
 * bench/virtual.bench.ts runs with the same flags). Null when the file is missing.
 */
export function virtualEntry(relayMainUrl: string): VirtualEntry | null {
  const relayMain = fileURLToPath(relayMainUrl);
  if (relayMain.endsWith('.ts')) {
    const src = join(dirname(relayMain), '..', 'virtual', 'main.ts');
    if (!existsSync(src)) return null;
    return { command: process.execPath, args: [...CHILD_FLAGS, '--import', import.meta.resolve('tsx'), src] };
  }
  const bundled = join(dirname(relayMain), '..', 'virtual', 'main.js');
  return existsSync(bundled) ? { command: process.execPath, args: [...CHILD_FLAGS, bundled] } : null;
}

export interface VirtualSupervisorOptions {
  entry: VirtualEntry;
  /** Arguments for the CLI, e.g. ['--relay', url, '--count', '1', '--key-dir', dir, '--json']. */
  cliArgs: string[];
  /** First restart delay; doubles per quick death, with full jitter. @default 1_000 */
  restartBaseMs?: number;
  /** @default 60_000 */
  restartMaxMs?: number;
  /** A child up this long counts as healthy: the next death restarts from `restartBaseMs`. @default 60_000 */
  stableMs?: number;
  /** SIGTERM grace before SIGKILL at stop. @default 5_000 */
  stopTimeoutMs?: number;
  /** @default node:child_process spawn */
  spawn?: typeof nodeSpawn;
  /** @default silent */
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

export interface VirtualSupervisor {
  /** Child processes started so far (1 + restarts). */
  readonly starts: number;
  /** The running child's pid, if any. */
  readonly pid: number | undefined;
  /** Stops restarting, ends the child (SIGTERM, then SIGKILL after stopTimeoutMs), resolves when it is gone. */
  stop(): Promise<void>;
}

export function superviseVirtualClients(opts: VirtualSupervisorOptions): VirtualSupervisor {
  const base = opts.restartBaseMs ?? 1_000;
  const cap = opts.restartMaxMs ?? 60_000;
  const stableMs = opts.stableMs ?? 60_000;
  const spawn = opts.spawn ?? nodeSpawn;
  const log = opts.log ?? (() => {});
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let restartTimer: ReturnType<typeof setTimeout> | null = null;
  let failures = 0;
  let starts = 0;
  let stopping = false;

  function start(): void {
    restartTimer = null;
    if (stopping) return;
    const startedAt = Date.now();
    starts++;
    // stdout/stderr shared with the relay: the CLI writes JSON lines (--json) next to the relay's own.
    const c = spawn(opts.entry.command, [...opts.entry.args, ...opts.cliArgs], { stdio: ['ignore', 'inherit', 'inherit'] });
    child = c;
    log('virtual_started', { pid: c.pid, start: starts });
    exited = new Promise<void>((resolve) => {
      let done = false;
      const onGone = (code: number | null, signal: NodeJS.Signals | null, err?: Error): void => {
        if (done) return;
        done = true;
        if (child === c) child = null;
        resolve();
        if (stopping) return;
        failures = Date.now() - startedAt >= stableMs ? 1 : failures + 1;
        const delay = Math.random() * Math.min(cap, base * 2 ** (failures - 1));
        log('virtual_exited', { code, signal, err: err ? String(err) : undefined, restartInMs: Math.round(delay) });
        restartTimer = setTimeout(start, delay);
      };
      c.once('exit', (code, signal) => onGone(code, signal));
      // Spawning itself failed (ENOENT...): no 'exit' follows.
      c.once('error', (err) => onGone(null, null, err));
    });
  }

  start();

  return {
    get starts() {
      return starts;
    },
    get pid() {
      return child?.pid;
    },
    async stop() {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      restartTimer = null;
      const c = child;
      if (!c) return;
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), opts.stopTimeoutMs ?? 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
