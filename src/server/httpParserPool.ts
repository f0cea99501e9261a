// Bounds Node's pool of idle HTTP parsers (node:_http_common's `parsers` FreeList).
//
// Why: every HTTP connection takes a parser from that pool and gives it back when its request is done --
// for a WebSocket, right after the upgrade. Node keeps up to 1,000 idle parsers, and each holds ~10 KiB of
// native memory (measured under Node 26: RSS per parser allocated). A login storm has hundreds of upgrades
// in flight at once (two per client: /trpc and /peerjs), so afterwards the pool held ~440 parsers, ~4.4 MB
// of the relay's RSS at 1,000 clients (bench:relay heap snapshot: 440 HTTPParser objects), for good. Beyond
// the bound a returned parser is freed, and a connection that finds the pool empty makes a new one (a
// native allocation, tiny next to the login it comes for).
//
// `parsers` is not a documented API: where it is missing or changed, this does nothing.

/** Idle HTTP parsers kept for reuse: enough for the steady trickle of connections. */
export const HTTP_PARSER_POOL_MAX = 32;

interface FreeList {
  max: number;
  list: { close?(): void }[];
}

/** The pool, or null where this Node has none of that shape. */
export function httpParserPool(): FreeList | null {
  const common = process.getBuiltinModule?.('_http_common') as { parsers?: Partial<FreeList> } | undefined;
  const pool = common?.parsers;
  return pool && typeof pool.max === 'number' && Array.isArray(pool.list) ? (pool as FreeList) : null;
}

/** Keeps at most `max` idle parsers from now on (and drops the excess now). False where there is no pool. */
export function boundHttpParserPool(max = HTTP_PARSER_POOL_MAX): boolean {
  const pool = httpParserPool();
  if (!pool) return false;
  pool.max = max;
  // Parsers already idle beyond the bound are closed as Node closes those the pool has no room for.
  for (const parser of pool.list.splice(max)) parser.close?.();
  return true;
}
