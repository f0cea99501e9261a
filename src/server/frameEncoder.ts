// The tRPC WebSocket wire encoder (tRPC's `experimental_encoder`), with one fast path for fan-out.
//
// tRPC encodes every subscription event once per connection. For a coalesced `msgs` event that means
// escaping the same large `raw` string again for each of N subscribers. This encoder escapes it once per
// batch and reuses the finished frame for every subscriber whose subscription id is the same (clients open
// `events` early, so most share an id), and keeps its UTF-8 bytes so the socket writes them without
// re-encoding. Everything else goes through plain JSON.stringify, so the wire format is exactly tRPC's
// (frameEncoder.test.ts proves byte equality).
import type { Encoder } from '@trpc/server/adapters/ws';

interface CachedFrame {
  text: string;
  bytes: Buffer | null;
}

export interface FrameEncoder extends Encoder {
  /** The UTF-8 bytes of `text` if it is a frame this encoder just produced and cached, else null. */
  cachedBytes(text: string): Buffer | null;
}

/** True when every own key of `o` with a defined value is one of `keys` (undefined values vanish in JSON). */
function onlyKeys(o: object, ...keys: string[]): boolean {
  for (const k in o) if ((o as Record<string, unknown>)[k] !== undefined && !keys.includes(k)) return false;
  return true;
}

export function createFrameEncoder(): FrameEncoder {
  let raw: string | null = null;
  let escaped = '';
  let frames = new Map<string, CachedFrame>();
  // The frame returned by the last encode() call: the adapter passes it straight to socket.sendFrame().
  let last: CachedFrame | null = null;

  return {
    encode(msg: unknown): string {
      last = null;
      const m = msg as {
        id?: unknown;
        jsonrpc?: unknown;
        result?: { type?: unknown; id?: unknown; data?: { json?: { t?: unknown; raw?: unknown }; meta?: unknown } };
      };
      const r = m?.result;
      const json = r?.data?.json;
      if (
        r?.type === 'data' &&
        r.id === undefined &&
        m.jsonrpc === undefined &&
        r.data!.meta === undefined &&
        json?.t === 'msgs' &&
        typeof json.raw === 'string' &&
        (typeof m.id === 'number' || typeof m.id === 'string') &&
        onlyKeys(m, 'id', 'jsonrpc', 'result') && // tRPC sets `jsonrpc: undefined`, which JSON omits
        onlyKeys(r, 'type', 'data') &&
        onlyKeys(r.data!, 'json', 'meta') &&
        onlyKeys(json, 't', 'raw')
      ) {
        if (json.raw !== raw) {
          raw = json.raw;
          escaped = JSON.stringify(raw);
          frames = new Map();
        }
        const idText = JSON.stringify(m.id);
        let f = frames.get(idText);
        if (!f) {
          // Same key order as JSON.stringify of tRPC's response object.
          f = { text: `{"id":${idText},"result":{"type":"data","data":{"json":{"t":"msgs","raw":${escaped}}}}}`, bytes: null };
          // Bounded: ids are per client; distinct ones beyond a handful gain nothing from caching.
          if (frames.size < 64) frames.set(idText, f);
        }
        last = f;
        return f.text;
      }
      return JSON.stringify(msg);
    },
    decode(data) {
      if (typeof data !== 'string') throw new Error('binary frames are not part of the protocol');
      return JSON.parse(data);
    },
    cachedBytes(text) {
      const f = last;
      if (!f || f.text !== text) return null;
      return (f.bytes ??= Buffer.from(text, 'utf8'));
    },
  };
}
