// The tRPC WebSocket wire encoder (tRPC's `experimental_encoder`), with one fast path for fan-out.
//
// tRPC encodes every subscription event once per connection. For an event that goes to N subscribers that
// means serializing the same data N times: the same large `raw` string of a coalesced `msgs` batch, the same
// presence diff of a login storm. This encoder serializes such an event once and reuses the finished frame
// for every subscriber whose subscription id is the same (clients open `events` early, so most share an id),
// and keeps its UTF-8 bytes so the socket writes them without re-encoding. Two kinds of event take the fast
// path: `{t:'msgs', raw}` (its `raw` escaped once) and any `PreEncoded` event (its JSON made once, by the
// hub). Everything else goes through plain JSON.stringify, so the wire format is exactly tRPC's
// (frameEncoder.test.ts proves byte equality).
import type { Encoder } from '@trpc/server/adapters/ws';

/**
 * An event whose JSON is made once, when it is created, and spliced into every subscriber's frame.
 *
 * Its own enumerable fields are the event's, so any other consumer (JSON.stringify, a pulled iterator, a
 * test) sees the plain event. superjson (tRPC's transformer) leaves instances of unregistered classes
 * untouched -- it neither walks nor copies them -- so the object reaches `encode()` as it was made, and the
 * frame costs one string concatenation instead of a superjson walk plus a JSON.stringify per recipient.
 * Only for values that JSON represents exactly (strings, finite numbers, booleans, null, plain objects and
 * arrays of them): superjson would have added no `meta` for those either.
 */
export class PreEncoded {
  readonly #json: string;
  /** `json` must be `JSON.stringify(value)`; callers that build it faster from parts pass it in. */
  constructor(value: object, json: string = JSON.stringify(value)) {
    Object.assign(this, value);
    this.#json = json;
  }
  /** The JSON text made at construction. */
  static jsonOf(event: PreEncoded): string {
    return event.#json;
  }
}

interface CachedFrame {
  text: string;
  bytes: Buffer | null;
}

export interface FrameEncoder extends Encoder {
  /** The UTF-8 bytes of `text` if it is a frame this encoder just produced and cached, else null. */
  cachedBytes(text: string): Buffer | null;
  /**
   * Lets go of the cached event and frames (the hub calls it once a fan-out is done). A `msgs` batch is
   * ~192 KiB of text three times over (`raw`, its escaped body, the frame); kept until the next batch, those
   * strings outlived a scavenge and were promoted, ~0.6 MB of old space per batch for mark-compact to free
   * (bench:relay --trace-gc). The sockets hold the frame's bytes, outside the heap.
   */
  release(): void;
}

/**
 * True when every own key of `o` with a defined value is one of `keys` (undefined values vanish in JSON).
 * `keys` are module constants: this runs several times per subscriber per fan-out, where a rest array
 * per call was garbage for every delivery.
 */
const MSG_KEYS = ['id', 'jsonrpc', 'result'];
const RESULT_KEYS = ['type', 'data'];
const DATA_KEYS = ['json', 'meta'];
const MSGS_KEYS = ['t', 'raw'];
function onlyKeys(o: object, keys: readonly string[]): boolean {
  for (const k in o) if ((o as Record<string, unknown>)[k] !== undefined && !keys.includes(k)) return false;
  return true;
}

/** Bounded: ids are per client; distinct ones beyond a handful gain nothing from caching. */
const MAX_CACHED_IDS = 64;

export function createFrameEncoder(): FrameEncoder {
  // The event the cached frames belong to: a `msgs` raw string or a PreEncoded instance.
  let key: string | PreEncoded | null = null;
  let body = '';
  let frames = new Map<string, CachedFrame>();
  // The frame returned by the last encode() call: the adapter passes it straight to socket.sendFrame().
  let last: CachedFrame | null = null;

  /** The fast-path key of `msg`, or null when it must go through JSON.stringify. */
  function shareable(msg: unknown): string | PreEncoded | null {
    const m = msg as {
      id?: unknown;
      jsonrpc?: unknown;
      result?: { type?: unknown; id?: unknown; data?: { json?: { t?: unknown; raw?: unknown }; meta?: unknown } };
    };
    const r = m?.result;
    const json = r?.data?.json;
    if (
      !json ||
      r.type !== 'data' ||
      r.id !== undefined ||
      m.jsonrpc !== undefined ||
      r.data!.meta !== undefined ||
      !(typeof m.id === 'number' || typeof m.id === 'string') ||
      !onlyKeys(m, MSG_KEYS) || // tRPC sets `jsonrpc: undefined`, which JSON omits
      !onlyKeys(r, RESULT_KEYS) ||
      !onlyKeys(r.data!, DATA_KEYS)
    ) {
      return null;
    }
    if (json instanceof PreEncoded) return json;
    if (json.t === 'msgs' && typeof json.raw === 'string' && onlyKeys(json, MSGS_KEYS)) return json.raw;
    return null;
  }

  return {
    encode(msg: unknown): string {
      last = null;
      const k = shareable(msg);
      if (k === null) return JSON.stringify(msg);
      if (k !== key) {
        key = k;
        body = typeof k === 'string' ? `{"t":"msgs","raw":${JSON.stringify(k)}}` : PreEncoded.jsonOf(k);
        frames = new Map();
      }
      const idText = JSON.stringify((msg as { id: string | number }).id);
      let f = frames.get(idText);
      if (!f) {
        // Same key order as JSON.stringify of tRPC's response object.
        f = { text: `{"id":${idText},"result":{"type":"data","data":{"json":${body}}}}`, bytes: null };
        if (frames.size < MAX_CACHED_IDS) frames.set(idText, f);
      }
      last = f;
      return f.text;
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
    release() {
      key = null;
      body = '';
      frames = new Map();
      last = null;
    },
  };
}

/**
 * The pushed event values whose superjson form is `{json: value}` with no `meta`: a PreEncoded (an
 * unregistered class, left untouched) and a `{t:'msgs', raw}` event (two strings). The adapter builds their
 * frames without tRPC's response transform (trpcWsAdapter.ts `serializesAsIs`); the text is the same.
 */
export function isSerializedAsIs(value: unknown): boolean {
  if (value instanceof PreEncoded) return true;
  const v = value as { t?: unknown; raw?: unknown } | null;
  return typeof v === 'object' && v !== null && v.t === 'msgs' && typeof v.raw === 'string' && Object.getPrototypeOf(v) === Object.prototype && onlyKeys(v, MSGS_KEYS);
}
