// SPEC.md R11: per-IP limits only work if the relay sees client addresses. Behind a proxy (fly.io) every
// connection comes from the proxy, so one client could use up everybody's connections and logins per
// minute. In production with no PEERCHAT_CLIENT_IP_HEADER, warn once, at the first connection that looks
// proxied: from a private address, or from loopback carrying a forwarding header.
import type { IncomingMessage, Server } from 'node:http';
import { forwardingHeaderOf, isLoopbackAddress, isPrivateAddress } from './origins';

export interface ProxyWarningOptions {
  mode: 'production' | 'local';
  clientIpHeader: string | undefined;
  warn: (event: string, fields: Record<string, unknown>) => void;
}

/** Why `req` looks like it came through a proxy, or null. */
export function proxiedBecause(req: IncomingMessage): { addr: string; header: string | null } | null {
  const addr = req.socket.remoteAddress ?? '';
  const header = forwardingHeaderOf(req);
  // Loopback without a forwarding header: co-located tools and the relay's own virtual clients (VC9).
  if (isLoopbackAddress(addr)) return header ? { addr, header } : null;
  return isPrivateAddress(addr) || header ? { addr, header } : null;
}

/**
 * Watches `server`'s requests and upgrades until the first proxied-looking one, logs `client_ip_header_unset`
 * once and stops watching. Does nothing outside production or when the header is set. Returns a disposer.
 */
export function warnOnProxiedClients(server: Pick<Server, 'on' | 'off'>, opts: ProxyWarningOptions): () => void {
  if (opts.mode !== 'production' || opts.clientIpHeader) return () => {};
  const check = (req: IncomingMessage): void => {
    const why = proxiedBecause(req);
    if (!why) return;
    stop();
    opts.warn('client_ip_header_unset', {
      addr: why.addr,
      forwardingHeader: why.header,
      message:
        'connections arrive from a proxy or private address and PEERCHAT_CLIENT_IP_HEADER is not set: every ' +
        'client shares one per-IP budget of connections and logins (on fly.io set it to fly-client-ip)',
    });
  };
  const stop = (): void => {
    server.off('request', check);
    server.off('upgrade', check);
  };
  server.on('request', check);
  server.on('upgrade', check);
  return stop;
}
