// Relay configuration: defaults, the environment/JSON-file loader used by main.ts, and the relay key.
// Nothing here runs at import time; `loadConfig` is the only function that touches the disk, and only for
// the optional config file and, in local mode, the generated key file (SPEC.md R12).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { KeyFileError, loadOrCreateKeyFile } from '../shared/crypto/keyFile.node.js';
import { fromB64url } from '../shared/encoding';
import { relayOrigin } from '../shared/protocol/signed';
import { LIMITS, POST_TIME_WINDOW_MS, type Channel, type IceServer, zChannel, zChannelId, zIceServer } from '../shared/protocol/relay';
import { isLogLevel, type LogLevel } from './logger';

export interface RelayLimits {
  /** Concurrent subscriptions one connection may hold (one `events` stream is the design). @default 2 */
  maxSubscriptionsPerConnection: number;
  /** Posts per key per minute. @default 60 */
  postsPerMinute: number;
  /** Attachment mints per key per minute. @default 60 */
  mintsPerMinute: number;
  /** presence.update calls per key per minute: each one fans out to every client. @default 30 */
  presenceUpdatesPerMinute: number;
  /**
   * voice.join and voice.state calls per key per minute (SPEC.md V6): each one fans out to every voice
   * watcher. A person toggling mute now and then stays far below. @default 60
   */
  voiceUpdatesPerMinute: number;
  /** New WebSocket connections per IP per minute (all paths). @default 120 */
  connectionsPerIpPerMinute: number;
  /** Challenges + logins per IP per minute. @default 120 */
  loginsPerIpPerMinute: number;
  /** Frames one socket may send per second before it is closed with FLOOD (4009). @default 50 */
  maxFramesPerSecond: number;
  /** Unsent bytes queued on a socket before fan-out drops it as a slow consumer (4008). @default 4 MiB */
  maxBufferedBytes: number;
  /** Events queued in one `events` stream before it is treated as a slow consumer. @default 2048 */
  maxQueuedEvents: number;
  /** Recent posts remembered for idempotent retries (SPEC.md M7). @default 10_000 */
  idempotencyEntries: number;
  /**
   * How long a post is remembered for idempotent retries; never less than 2 x POST_TIME_WINDOW_MS, the
   * longest a relayed post can stay acceptable (SPEC.md M6). @default 10 min
   */
  idempotencyTtlMs: number;
  /**
   * Largest attachment the relay mints (SPEC.md A5), published in `ServerInfo.limits` so clients refuse a
   * bigger file before hashing it. At most the protocol's `LIMITS.maxAttachmentBytes` (64 MiB), which the
   * schemas and the peer wire are sized for. Set by `PEERCHAT_MAX_ATTACHMENT_BYTES`. @default 25 MiB
   */
  maxAttachmentBytes: number;
}

export interface RelayTiming {
  /** A login challenge expires this long after it was issued (SPEC.md L2). @default 60 s */
  challengeTtlMs: number;
  /** A socket that has not logged in by then is closed with LOGIN_TIMEOUT (4001). @default 10 s */
  loginTimeoutMs: number;
  /**
   * WebSocket ping interval; a socket that has not answered the previous ping is terminated, so a dead
   * peer leaves presence within two intervals (SPEC.md P4). Keep it under proxies' 60 s idle timeouts.
   * @default 15 s
   */
  heartbeatMs: number;
  /** `retryAfterMs` announced in the shutdown `bye` event. @default 2 s */
  shutdownRetryAfterMs: number;
  /** How long shutdown waits for `bye` frames to flush before closing sockets. @default 500 ms */
  shutdownFlushMs: number;
}

export interface RelayConfig {
  mode: 'production' | 'local';
  name: string;
  /** 32-byte Ed25519 seed: the relay's identity. Every countersignature is made with it. */
  secretKey: Uint8Array;
  channels: Channel[];
  /** Handed to clients for WebRTC; never a public default (brief: nothing defaults to a public host). */
  iceServers: IceServer[];
  /** What clients pass to PeerJS: `path` + `peerjs` is the signalling WebSocket path. */
  peerjs: { path: string; key: string };
  /**
   * The relay's public origins (`https://host[:port]`, normalized) that a login may name (SPEC.md L9).
   * Required in production (`PEERCHAT_PUBLIC_ORIGIN`); empty = local mode, where the request's Host header
   * is trusted instead. @default []
   */
  publicOrigins: string[];
  limits: RelayLimits;
  timing: RelayTiming;
}

/** The attachment cap a relay publishes unless its operator sets another (issue 9: "default 25 MB"). */
export const DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024;

export const DEFAULT_LIMITS: RelayLimits = {
  maxSubscriptionsPerConnection: 2,
  postsPerMinute: 60,
  mintsPerMinute: 60,
  presenceUpdatesPerMinute: 30,
  voiceUpdatesPerMinute: 60,
  connectionsPerIpPerMinute: 120,
  loginsPerIpPerMinute: 120,
  maxFramesPerSecond: 50,
  maxBufferedBytes: 4 * 1024 * 1024,
  maxQueuedEvents: 2048,
  idempotencyEntries: 10_000,
  idempotencyTtlMs: 10 * 60_000,
  maxAttachmentBytes: DEFAULT_MAX_ATTACHMENT_BYTES,
};

export const DEFAULT_TIMING: RelayTiming = {
  challengeTtlMs: 60_000,
  loginTimeoutMs: 10_000,
  heartbeatMs: 15_000,
  shutdownRetryAfterMs: 2_000,
  shutdownFlushMs: 500,
};

export const DEFAULT_CHANNELS = ['general', 'random', 'media'];

/** What tests and embedders pass: only the key is required. */
export type RelayConfigInput = Partial<Omit<RelayConfig, 'limits' | 'timing'>> & {
  secretKey: Uint8Array;
  limits?: Partial<RelayLimits>;
  timing?: Partial<RelayTiming>;
};

export function resolveConfig(input: RelayConfigInput): RelayConfig {
  const channels = input.channels ?? DEFAULT_CHANNELS.map((id) => ({ id, title: id }));
  if (channels.length === 0 || channels.length > LIMITS.maxChannels) {
    throw new ConfigError('BAD_CHANNELS', `between 1 and ${LIMITS.maxChannels} channels are required`);
  }
  const limits = { ...DEFAULT_LIMITS, ...input.limits };
  // A relayed post stays acceptable for up to twice the window after it was first relayed (RecentPosts.ts).
  limits.idempotencyTtlMs = Math.max(limits.idempotencyTtlMs, 2 * POST_TIME_WINDOW_MS);
  limits.maxAttachmentBytes = checkAttachmentCap(limits.maxAttachmentBytes, 'limits.maxAttachmentBytes');
  return {
    mode: input.mode ?? 'local',
    name: input.name ?? 'peerchat',
    secretKey: input.secretKey,
    channels,
    iceServers: input.iceServers ?? [],
    peerjs: input.peerjs ?? { path: '/', key: 'peerchat' },
    publicOrigins: parsePublicOrigins(input.publicOrigins ?? [], 'publicOrigins'),
    limits,
    timing: { ...DEFAULT_TIMING, ...input.timing },
  };
}

export class ConfigError extends Error {
  constructor(
    readonly code: 'MISSING_RELAY_KEY' | 'BAD_RELAY_KEY' | 'MISSING_PUBLIC_ORIGIN' | 'BAD_PUBLIC_ORIGIN' | 'BAD_CHANNELS' | 'BAD_ICE_SERVERS' | 'BAD_CONFIG_FILE' | 'BAD_VIRTUAL_CLIENTS' | 'BAD_MAX_ATTACHMENT_BYTES',
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The optional JSON file named by PEERCHAT_CONFIG; env vars override it. */
const zConfigFile = z
  .object({
    name: z.string().min(1).max(64).optional(),
    channels: z.array(z.union([zChannelId, zChannel])).optional(),
    iceServers: z.array(zIceServer).max(16).optional(),
    peerjs: z.object({ path: z.string().startsWith('/'), key: z.string().min(1) }).optional(),
    limits: z.record(z.string(), z.number().positive()).optional(),
    timing: z.record(z.string(), z.number().positive()).optional(),
  })
  .strict();

export interface LoadedConfig {
  config: RelayConfig;
  port: number;
  host: string;
  logLevel: LogLevel;
  /** Built web app served over HTTP. */
  staticDir: string;
  /** Virtual clients the relay runs in one child process (`PEERCHAT_VIRTUAL_CLIENTS`, SPEC.md VC9). @default 0 */
  virtualClients: number;
  /** Local state: the local-mode relay key, virtual clients' keys under `virtual/` (`PEERCHAT_DATA_DIR`). @default .data */
  dataDir: string;
  /** Header carrying the client's address behind a proxy (`PEERCHAT_CLIENT_IP_HEADER`; fly.io: fly-client-ip). @default undefined */
  clientIpHeader: string | undefined;
}

/**
 * `https://chat.example, wss://chat.example:8443` -> normalized origins (relayOrigin). Anything that is not
 * a bare http(s)/ws(s) origin is refused, naming it: a path or typo here would refuse every login.
 */
export function parsePublicOrigins(list: readonly string[], what: string): string[] {
  const out: string[] = [];
  for (const raw of list) {
    const text = raw.trim();
    if (!text) continue;
    const origin = relayOrigin(text);
    let bare = false;
    try {
      const u = new URL(text);
      bare = (u.pathname === '/' || u.pathname === '') && !u.search && !u.hash && !u.username && !u.password;
    } catch {
      // relayOrigin gave null already
    }
    if (!origin || !bare) throw new ConfigError('BAD_PUBLIC_ORIGIN', `${what}: "${text}" is not an origin such as https://chat.example`);
    if (!out.includes(origin)) out.push(origin);
  }
  return out;
}

export type Env = Record<string, string | undefined>;

function parseSeed(text: string, what: string): Uint8Array {
  const seed = fromB64url(text.trim());
  if (!seed || seed.length !== 32) {
    throw new ConfigError('BAD_RELAY_KEY', `${what} must be a base64url-encoded 32-byte Ed25519 seed`);
  }
  return seed;
}

/**
 * Local mode only: the relay key lives in `<dataDir>/relay-key.json`, generated on first start and reused
 * after, so a developer's clients keep trusting the same relay across restarts. The file logic is shared
 * with the virtual client (src/shared/crypto/keyFile.node.ts).
 */
export function loadOrCreateLocalKey(dataDir: string): { secretKey: Uint8Array; created: boolean; path: string } {
  try {
    return loadOrCreateKeyFile(join(dataDir, 'relay-key.json'));
  } catch (err) {
    if (err instanceof KeyFileError) throw new ConfigError('BAD_RELAY_KEY', err.message);
    throw err;
  }
}

/**
 * Reads the relay's configuration from the environment (SPEC.md R12):
 * - `PEERCHAT_ENV=production|local` (else `NODE_ENV=production` means production; default local)
 * - `PEERCHAT_RELAY_KEY`: base64url 32-byte seed. Required in production; in local mode a key is generated
 *   once into `$PEERCHAT_DATA_DIR/relay-key.json` (default `.data`).
 * - `PEERCHAT_NAME`, `PEERCHAT_CHANNELS` (comma list), `PEERCHAT_ICE_SERVERS` (JSON array),
 *   `PEERCHAT_CONFIG` (JSON file with the same settings plus `limits`/`timing`), `PEERCHAT_POSTS_PER_MINUTE`,
 *   `PORT` (8080), `HOST` (0.0.0.0), `PEERCHAT_LOG_LEVEL` (info), `PEERCHAT_STATIC_DIR` (dist/client).
 * - `PEERCHAT_MAX_ATTACHMENT_BYTES`: the attachment size cap published in info and enforced at mint
 *   (1 to 64 MiB, default 25 MiB; SPEC.md A5).
 * - `PEERCHAT_VIRTUAL_CLIENTS`: how many virtual clients to run in a child process (0-32, default 0).
 * - `PEERCHAT_PUBLIC_ORIGIN`: comma list of the origins clients reach the relay at (logins sign one, L9).
 *   Required in production.
 * - `PEERCHAT_CLIENT_IP_HEADER`: the proxy's client-address header (R11); unset = the TCP peer.
 */
export function loadConfig(env: Env, cwd: string = process.cwd()): LoadedConfig & { keyNote: string } {
  const mode: RelayConfig['mode'] =
    env.PEERCHAT_ENV === 'production' || (env.PEERCHAT_ENV === undefined && env.NODE_ENV === 'production')
      ? 'production'
      : 'local';

  let file: z.infer<typeof zConfigFile> = {};
  if (env.PEERCHAT_CONFIG) {
    const path = resolve(cwd, env.PEERCHAT_CONFIG);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new ConfigError('BAD_CONFIG_FILE', `cannot read ${path}: ${(err as Error).message}`);
    }
    const parsed = zConfigFile.safeParse(raw);
    if (!parsed.success) {
      throw new ConfigError('BAD_CONFIG_FILE', `${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    file = parsed.data;
  }

  let secretKey: Uint8Array;
  let keyNote: string;
  if (env.PEERCHAT_RELAY_KEY) {
    secretKey = parseSeed(env.PEERCHAT_RELAY_KEY, 'PEERCHAT_RELAY_KEY');
    keyNote = 'from PEERCHAT_RELAY_KEY';
  } else if (mode === 'production') {
    throw new ConfigError(
      'MISSING_RELAY_KEY',
      'PEERCHAT_RELAY_KEY is required in production (a base64url-encoded 32-byte Ed25519 seed); ' +
        'a relay that changed its key on every restart would invalidate every signature it made',
    );
  } else {
    const local = loadOrCreateLocalKey(resolve(cwd, env.PEERCHAT_DATA_DIR ?? '.data'));
    secretKey = local.secretKey;
    keyNote = `${local.created ? 'generated' : 'reused'} ${local.path}`;
  }

  let channels: Channel[] | undefined = file.channels?.map((c) => (typeof c === 'string' ? { id: c, title: c } : c));
  if (env.PEERCHAT_CHANNELS) {
    const ids = env.PEERCHAT_CHANNELS.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = ids.filter((id) => !zChannelId.safeParse(id).success);
    if (bad.length) throw new ConfigError('BAD_CHANNELS', `invalid channel ids in PEERCHAT_CHANNELS: ${bad.join(', ')}`);
    channels = ids.map((id) => ({ id, title: id }));
  }
  if (channels && new Set(channels.map((c) => c.id)).size !== channels.length) {
    throw new ConfigError('BAD_CHANNELS', 'channel ids must be unique');
  }

  let iceServers = file.iceServers;
  if (env.PEERCHAT_ICE_SERVERS) {
    let raw: unknown;
    try {
      raw = JSON.parse(env.PEERCHAT_ICE_SERVERS);
    } catch {
      throw new ConfigError('BAD_ICE_SERVERS', 'PEERCHAT_ICE_SERVERS must be a JSON array of RTCIceServer');
    }
    const parsed = z.array(zIceServer).max(16).safeParse(raw);
    if (!parsed.success) throw new ConfigError('BAD_ICE_SERVERS', 'PEERCHAT_ICE_SERVERS must be a JSON array of RTCIceServer');
    iceServers = parsed.data;
  }

  const publicOrigins = parsePublicOrigins((env.PEERCHAT_PUBLIC_ORIGIN ?? '').split(','), 'PEERCHAT_PUBLIC_ORIGIN');
  if (mode === 'production' && publicOrigins.length === 0) {
    throw new ConfigError(
      'MISSING_PUBLIC_ORIGIN',
      'PEERCHAT_PUBLIC_ORIGIN is required in production (e.g. https://chat.example): every login signs the ' +
        "relay's origin, and without it the relay could only trust the Host header the client writes",
    );
  }

  const limits: Partial<RelayLimits> = { ...pickKnown(file.limits, DEFAULT_LIMITS) };
  if (env.PEERCHAT_MAX_ATTACHMENT_BYTES !== undefined && env.PEERCHAT_MAX_ATTACHMENT_BYTES.trim() !== '') {
    limits.maxAttachmentBytes = checkAttachmentCap(Number(env.PEERCHAT_MAX_ATTACHMENT_BYTES.trim()), 'PEERCHAT_MAX_ATTACHMENT_BYTES', env.PEERCHAT_MAX_ATTACHMENT_BYTES);
  }
  const ppm = Number(env.PEERCHAT_POSTS_PER_MINUTE);
  if (env.PEERCHAT_POSTS_PER_MINUTE && Number.isFinite(ppm) && ppm > 0) limits.postsPerMinute = ppm;

  const config = resolveConfig({
    mode,
    secretKey,
    name: env.PEERCHAT_NAME?.trim() || file.name,
    channels,
    iceServers,
    peerjs: file.peerjs,
    publicOrigins,
    limits,
    timing: pickKnown(file.timing, DEFAULT_TIMING),
  });
  const port = Number(env.PORT ?? 8080);
  return {
    config,
    port: Number.isInteger(port) && port >= 0 && port < 65536 ? port : 8080,
    host: env.HOST ?? '0.0.0.0',
    logLevel: isLogLevel(env.PEERCHAT_LOG_LEVEL) ? env.PEERCHAT_LOG_LEVEL : 'info',
    staticDir: resolve(cwd, env.PEERCHAT_STATIC_DIR ?? 'dist/client'),
    virtualClients: parseVirtualClients(env.PEERCHAT_VIRTUAL_CLIENTS),
    dataDir: resolve(cwd, env.PEERCHAT_DATA_DIR ?? '.data'),
    clientIpHeader: env.PEERCHAT_CLIENT_IP_HEADER?.trim() || undefined,
    keyNote,
  };
}

/**
 * A cap above the protocol's ceiling would publish a promise the schemas break (every mint above 64 MiB
 * is BAD_INPUT), and 0 or a fraction is a typo: refuse both at start, naming the setting.
 */
function checkAttachmentCap(n: number, what: string, text: string = String(n)): number {
  if (!Number.isSafeInteger(n) || n < 1 || n > LIMITS.maxAttachmentBytes) {
    throw new ConfigError(
      'BAD_MAX_ATTACHMENT_BYTES',
      `${what} must be a whole number of bytes from 1 to ${LIMITS.maxAttachmentBytes} (64 MiB), got "${text}"`,
    );
  }
  return n;
}

function parseVirtualClients(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return 0;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 32) {
    throw new ConfigError('BAD_VIRTUAL_CLIENTS', `PEERCHAT_VIRTUAL_CLIENTS must be a whole number from 0 to 32, got "${text}"`);
  }
  return n;
}

function pickKnown<T extends object>(from: Record<string, number> | undefined, known: T): Partial<T> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(from ?? {})) if (Object.hasOwn(known, k)) out[k] = v;
  return out as Partial<T>;
}
