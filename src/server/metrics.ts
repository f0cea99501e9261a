// Prometheus metrics (SPEC.md R13), one registry per relay instance. Hot paths bump plain counters in
// RelayStats; prom-client reads them only when /metrics is scraped.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { FAMILIES, type RelayStats } from './RelayStats';

export interface MetricsSources {
  stats: RelayStats;
  connections: () => number;
  eventStreams: () => number;
  onlineByKind: () => Record<string, number>;
  messagesRelayed: () => number;
  /** Presence events sent, one per recipient, and the relay turns they went out in (SPEC.md P8). */
  presenceEvents: () => number;
  presenceFlushes: () => number;
}

export function createMetrics(src: MetricsSources, opts: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'peerchat_' });

  new Gauge({
    name: 'peerchat_connections',
    help: 'Open tRPC WebSocket connections.',
    registers: [registry],
    collect() {
      this.set(src.connections());
    },
  });
  new Gauge({
    name: 'peerchat_event_streams',
    help: 'Open events subscriptions.',
    registers: [registry],
    collect() {
      this.set(src.eventStreams());
    },
  });
  new Gauge({
    name: 'peerchat_online_users',
    help: 'Logged-in sessions by client kind.',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      for (const [kind, n] of Object.entries(src.onlineByKind())) this.set({ kind }, n);
    },
  });
  new Counter({
    name: 'peerchat_messages_posted_total',
    help: 'Posts countersigned and published.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(src.stats.posts);
    },
  });
  new Counter({
    name: 'peerchat_messages_relayed_total',
    help: 'Envelopes handed to event streams (one per recipient).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(src.messagesRelayed());
    },
  });
  new Counter({
    name: 'peerchat_presence_events_total',
    help: 'Presence events sent to event streams (one per recipient: one frame each).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(src.presenceEvents());
    },
  });
  new Counter({
    name: 'peerchat_presence_flushes_total',
    help: 'Relay turns in which presence changes went out (coalesced per turn, SPEC.md P8).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(src.presenceFlushes());
    },
  });
  for (const dir of ['in', 'out'] as const) {
    new Counter({
      name: `peerchat_bytes_${dir}_total`,
      help: `WebSocket payload bytes ${dir === 'in' ? 'received' : 'sent'} on /trpc, by procedure family.`,
      labelNames: ['family'],
      registers: [registry],
      collect() {
        this.reset();
        const table = dir === 'in' ? src.stats.bytesIn : src.stats.bytesOut;
        for (const family of FAMILIES) this.inc({ family }, table[family]);
      },
    });
  }
  new Counter({
    name: 'peerchat_rejections_total',
    help: 'Refused requests and closed sockets, by reason code.',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of src.stats.rejections) this.inc({ reason }, n);
    },
  });
  return registry;
}
