// Which relay origins a login may name (SPEC.md L9), and how a connection's address is classified for the
// per-IP limits behind a proxy (R11, R12). Pure functions of the request's headers and TCP peer.
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { relayOrigin } from '../shared/protocol/signed';

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return a === '::1' || (isIP(a) === 4 && a.startsWith('127.'));
}

/**
 * Addresses a proxy or a private network connects from: loopback, RFC 1918, CGNAT (100.64/10), IPv4
 * link-local, IPv6 unique-local (fc00::/7: fly.io's proxy uses fdaa::) and link-local (fe80::/10).
 */
export function isPrivateAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  if (isLoopbackAddress(addr)) return true;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  if (isIP(a) === 4) {
    const [x, y] = a.split('.').map(Number) as [number, number];
    return x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168) || (x === 100 && y >= 64 && y <= 127) || (x === 169 && y === 254);
  }
  if (isIP(a) === 6) {
    const first = parseInt(a.split(':')[0] || '0', 16);
    return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80;
  }
  return false;
}

/** Headers a reverse proxy adds; seen on a loopback connection they mean a proxy sits in front. */
export const FORWARDING_HEADERS = ['fly-client-ip', 'x-forwarded-for', 'forwarded', 'x-real-ip', 'cf-connecting-ip'] as const;

export function forwardingHeaderOf(req: IncomingMessage): string | null {
  for (const h of FORWARDING_HEADERS) if (req.headers[h] !== undefined) return h;
  return null;
}

/** The client's address: the proxy's header when one is configured (and sent), else the TCP peer. */
export function clientIpOf(req: IncomingMessage, clientIpHeader: string | undefined): string {
  const h = clientIpHeader ? req.headers[clientIpHeader.toLowerCase()] : undefined;
  const v = Array.isArray(h) ? h[0] : h;
  return (v?.split(',')[0]?.trim() || req.socket.remoteAddress) ?? 'unknown';
}

/** What a connection may sign as the relay's origin besides the configured public origins. */
export interface OriginGrant {
  /** The request's Host header, honoured only when no public origin is configured (local mode). */
  host: string | null;
  /** A direct loopback connection (no proxy header): may name the relay's own loopback origins. */
  loopback: boolean;
}

/** The grant of a connection that may name only the public origins (shared: no object per socket). */
export const NO_ORIGIN_GRANT: OriginGrant = Object.freeze({ host: null, loopback: false });

export function originGrantOf(req: IncomingMessage, opts: { publicOrigins: readonly string[]; clientIpHeader?: string }): OriginGrant {
  const proxied = opts.clientIpHeader ? req.headers[opts.clientIpHeader.toLowerCase()] !== undefined : forwardingHeaderOf(req) !== null;
  const host = opts.publicOrigins.length === 0 ? (req.headers.host ?? null) : null;
  const loopback = isLoopbackAddress(req.socket.remoteAddress) && !proxied;
  return host === null && !loopback ? NO_ORIGIN_GRANT : { host, loopback };
}

const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '[::1]', '0.0.0.0'];

/**
 * SPEC.md L9: the origin a login signed must be one of the relay's public origins; or, from a direct
 * loopback connection, the relay's own loopback origin on its own port (co-located virtual clients, health
 * tools: a relaying process on another port cannot pass); or, with no public origin configured (local
 * mode), the origin its Host header names (dev proxies such as Vite's keep the page's Host). The Host rule
 * trusts a header the client writes, which is why production requires PEERCHAT_PUBLIC_ORIGIN.
 */
export function acceptsOrigin(origin: string, grant: OriginGrant, relay: { publicOrigins: ReadonlySet<string>; port: number }): boolean {
  if (relay.publicOrigins.has(origin)) return true;
  if (grant.loopback && LOOPBACK_HOSTS.some((h) => origin === `http://${h}:${relay.port}` || origin === `https://${h}:${relay.port}`)) return true;
  if (grant.host !== null) {
    const h = relayOrigin(`http://${grant.host}`);
    const hs = relayOrigin(`https://${grant.host}`);
    return origin === h || origin === hs;
  }
  return false;
}
