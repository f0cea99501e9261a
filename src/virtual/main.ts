// `npm run virtual -- --relay http://localhost:8080 --count 10`: runs virtual clients in one process
// (SPEC.md VC8). Each has its own key file, prints a status line periodically, survives relay restarts,
// and stops cleanly on SIGINT/SIGTERM (every peer connection closed, the process ends on its own).
// The relay starts this file as a child process when PEERCHAT_VIRTUAL_CLIENTS is set (VC9).
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TRPCClientError } from '@trpc/client';
import { KeyFileError } from '../shared/crypto/keyFile.node.js';
import { PROTOCOL_VERSION, zServerInfo } from '../shared/protocol/relay';
import { VIRTUAL_DEFAULTS, VirtualClient } from './VirtualClient';
import { collectWrtcNow, enableWrtcGc } from './wrtcGc';

const USAGE = `Usage: npm run virtual -- [options]

Runs peerchat virtual clients: headless peers that cache recent history (and attachments) for users
who were offline, and serve it when no real peer can.

Options:
  --relay URL            the relay's origin (default $PEERCHAT_RELAY_URL or http://localhost:8080)
  --count N              virtual clients in this process, 1-100 (default 1)
  --key-dir DIR          key files live in DIR/virtual-<i>.key, created once (default .data/virtual)
  --name NAME            display name; with --count > 1, NAME-<i> (default "virtual")
  --max-age DURATION     cache age bound per client, e.g. 3h, 90m, 600s (default 3h)
  --max-bytes SIZE       cache byte bound per client, e.g. 64MiB, 512KiB (default 64MiB)
  --max-links N          peer-to-peer links per client (default ${VIRTUAL_DEFAULTS.maxLinks})
  --status-every DURATION  one status line per client this often; 0 = never (default 30s)
  --json                 JSON lines instead of text (for log shippers)
  --quiet                status lines and errors only
  -h, --help             this text

Exit status: 0 after SIGINT/SIGTERM, 1 when the relay cannot be reached or refuses a login, 2 on bad options.`;

/** A problem the user must fix; printed as one line, exit status 1 (2 for usage). */
class CliError extends Error {
  constructor(
    message: string,
    readonly status = 1,
  ) {
    super(message);
  }
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new CliError(`${what}: "${text}" is not a duration (e.g. 3h, 90m, 30s, 500ms)`, 2);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']!);
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1000, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
export function parseSize(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)?$/i.exec(text.trim());
  const unit = SIZE_UNITS[(m?.[2] ?? 'b').toLowerCase()];
  if (!m || unit === undefined) throw new CliError(`${what}: "${text}" is not a size (e.g. 64MiB, 512KiB)`, 2);
  return Math.round(Number(m[1]) * unit);
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)}KiB`;
  return `${(n / 1024 ** 2).toFixed(1)}MiB`;
}

interface Cli {
  relayUrl: string;
  count: number;
  keyDir: string;
  name: string;
  maxAgeMs: number;
  maxBytes: number;
  maxLinks: number;
  statusEveryMs: number;
  json: boolean;
  quiet: boolean;
}

function parseCli(argv: string[]): Cli | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        relay: { type: 'string' },
        count: { type: 'string' },
        'key-dir': { type: 'string' },
        name: { type: 'string' },
        'max-age': { type: 'string' },
        'max-bytes': { type: 'string' },
        'max-links': { type: 'string' },
        'status-every': { type: 'string' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new CliError(`${(err as Error).message} (see --help)`, 2);
  }
  if (values.help) return 'help';
  const relayUrl = values.relay ?? process.env.PEERCHAT_RELAY_URL ?? 'http://localhost:8080';
  let url: URL;
  try {
    url = new URL(relayUrl);
  } catch {
    throw new CliError(`--relay: "${relayUrl}" is not a URL (e.g. http://localhost:8080)`, 2);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`--relay: use the relay's http(s) origin, not ${url.protocol}`, 2);
  const int = (text: string | undefined, what: string, def: number, max: number): number => {
    if (text === undefined) return def;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new CliError(`${what}: expected a whole number from 1 to ${max}, got "${text}"`, 2);
    return n;
  };
  return {
    relayUrl: url.origin,
    count: int(values.count, '--count', 1, 100),
    keyDir: resolve(values['key-dir'] ?? join('.data', 'virtual')),
    name: values.name ?? VIRTUAL_DEFAULTS.name,
    maxAgeMs: values['max-age'] ? parseDuration(values['max-age'], '--max-age') : VIRTUAL_DEFAULTS.maxAgeMs,
    maxBytes: values['max-bytes'] ? parseSize(values['max-bytes'], '--max-bytes') : VIRTUAL_DEFAULTS.maxBytes,
    maxLinks: int(values['max-links'], '--max-links', VIRTUAL_DEFAULTS.maxLinks, 256),
    statusEveryMs: values['status-every'] ? parseDuration(values['status-every'], '--status-every') : 30_000,
    json: values.json ?? false,
    quiet: values.quiet ?? false,
  };
}

/** The errno-style code of a failed fetch (undici hides it in `cause`). */
function networkCode(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } })?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  if ((err as Error)?.name === 'TimeoutError') return 'no answer within 5 s';
  return String(cause?.message ?? (err as Error)?.message ?? err);
}

/** Asks the relay who it is before anything else, so an unreachable relay is one clear line, not a retry loop. */
async function preflight(relayUrl: string): Promise<void> {
  const where = new URL('/.well-known/peerchat.json', relayUrl);
  let res: Response;
  try {
    res = await fetch(where, { signal: AbortSignal.timeout(5_000) });
  } catch (err) {
    throw new CliError(`cannot reach relay at ${relayUrl}: ${networkCode(err)}`);
  }
  if (!res.ok) throw new CliError(`relay at ${relayUrl} answered HTTP ${res.status} for ${where.pathname}: is it a peerchat relay?`);
  const info = zServerInfo.safeParse(await res.json().catch(() => null));
  if (!info.success) throw new CliError(`relay at ${relayUrl} sent an unreadable ${where.pathname}: is it a peerchat relay?`);
  if (info.data.protocol !== PROTOCOL_VERSION) {
    throw new CliError(`relay at ${relayUrl} speaks protocol ${info.data.protocol}; this virtual client speaks ${PROTOCOL_VERSION}`);
  }
}

function refusalOf(err: unknown, relayUrl: string): CliError {
  if (err instanceof TRPCClientError) {
    const reason = (err.data as { reason?: string } | undefined)?.reason ?? 'NO_REASON';
    return new CliError(`relay at ${relayUrl} refused the login: ${reason} (${err.message})`);
  }
  if (err instanceof KeyFileError) return new CliError(err.message);
  return new CliError(`could not log in to relay at ${relayUrl}: ${(err as Error)?.message ?? String(err)}`);
}

async function main(argv: string[]): Promise<void> {
  const cli = parseCli(argv);
  if (cli === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const out = (who: string, event: string, fields: Record<string, unknown> = {}): void => {
    if (cli.json) process.stdout.write(`${JSON.stringify({ t: new Date().toISOString(), who, event, ...fields })}\n`);
    else process.stdout.write(`${new Date().toISOString()} ${who} ${event}${Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join('')}\n`);
  };
  await preflight(cli.relayUrl);
  const gc = enableWrtcGc();

  const clients: VirtualClient[] = [];
  let statusTimer: ReturnType<typeof setInterval> | null = null;
  let stopping: Promise<void> | null = null;
  let startup: Promise<unknown> = Promise.resolve();

  // Stops every client and lets the process end on its own: if anything were left open (a socket, a
  // timer, a connection), it would not, and the guard below says so with exit status 1. Measured here:
  // ending on its own after 10 clients closed links still negotiating segfaulted in wrtc's native
  // teardown in 4 of 5 runs; with a gc() first (here and on 'beforeExit', wrtcGc.ts) 12 of 12 were clean.
  const shutdown = (signal: string): Promise<void> => {
    stopping ??= (async () => {
      out('virtual', 'stopping', { signal });
      if (statusTimer) clearInterval(statusTimer);
      // A stuck close must not keep a supervisor waiting forever.
      setTimeout(() => {
        process.stderr.write(`peerchat-virtual: still running 10 s after SIGTERM/SIGINT (open: ${process.getActiveResourcesInfo().join(', ')}); forcing exit\n`);
        process.exit(1);
      }, 10_000).unref();
      await startup; // a signal during startup: let the clients come up, then stop them all
      await Promise.allSettled(clients.map((c) => c.stop()));
      collectWrtcNow();
      const left = clients.map((c) => c.node.liveResources()).reduce((a, b) => a + b, 0);
      out('virtual', 'stopped', { leftBehind: left });
      process.exitCode = left === 0 ? 0 : 1;
      process.removeAllListeners('SIGINT');
      process.removeAllListeners('SIGTERM');
    })();
    return stopping;
  };
  process.on('SIGINT', () => {
    // A second Ctrl-C: the user does not want to wait.
    if (stopping) process.exit(130);
    void shutdown('SIGINT');
  });
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  const names = Array.from({ length: cli.count }, (_, i) => (cli.count === 1 ? cli.name : `${cli.name}-${i + 1}`));
  startup = Promise.allSettled(
    names.map((name, i) =>
      VirtualClient.start({
        relayUrl: cli.relayUrl,
        keyFile: join(cli.keyDir, `virtual-${i + 1}.key`),
        name,
        maxAgeMs: cli.maxAgeMs,
        maxBytes: cli.maxBytes,
        maxLinks: cli.maxLinks,
        log: cli.quiet ? undefined : (event, fields) => out(name, event, fields),
      }).then((c) => {
        clients.push(c);
        return c;
      }),
    ),
  );
  const started = (await startup) as PromiseSettledResult<VirtualClient>[];
  // A signal during startup: stop what started (shutdown exits).
  if (stopping) return shutdown('startup');
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.allSettled(clients.map((c) => c.stop()));
    collectWrtcNow();
    throw refusalOf(failed.reason, cli.relayUrl);
  }
  for (const c of clients) out(c.name, 'started', { publicKey: c.publicKey, keyFile: c.keyFile, created: c.keyCreated, gc });

  const printStatus = (): void => {
    for (const c of clients) {
      const s = c.status();
      if (cli.json) out(c.name, 'status', { ...s });
      else out(c.name, s.online ? 'online' : 'offline', { peers: s.peers, links: s.links, messages: s.messages, attachments: s.attachments, bytes: formatBytes(s.bytes) });
    }
  };
  if (cli.statusEveryMs > 0) statusTimer = setInterval(printStatus, cli.statusEveryMs);
}

process.on('unhandledRejection', (reason) => process.stderr.write(`peerchat-virtual: unhandled rejection: ${String(reason)}\n`));

main(process.argv.slice(2)).catch((err) => {
  if (err instanceof CliError) {
    process.stderr.write(`peerchat-virtual: ${err.message}\n`);
    process.exit(err.status);
  }
  process.stderr.write(`peerchat-virtual: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
