// A lean tRPC 11 WebSocket adapter: the same wire protocol as `@trpc/server/adapters/ws` (so the stock
// `wsLink` client works unchanged), with a fraction of its memory per connection and per subscription.
//
// Why not tRPC's own: per connection it keeps a dozen closures, an AbortController, a Map and a context
// promise; per subscription an AbortController, an abort promise, an `iteratorResource` and one
// `Promise.race` per event -- ~6.5 KiB per idle subscription, measured (bench:relay). On a 256 MB VM that
// decides how many clients fit. Here, per connection: three fields on the socket (a lazily created Map of
// subscriptions, a flag, the connection params) and no listeners (the socket class calls `message`/`close`
// directly); per subscription: one Map entry, and for a pulled iterator one suspended `next()` loop and its
// AbortController. Procedures, errors and the transformer are tRPC's own (callTRPCProcedure, getErrorShape,
// parseTRPCMessage; transformTRPCResponse re-written with native spreads), so error shapes and data encoding are what the stock adapter
// sends. tRPC's own websockets tests run against both (trpcWsAdapter.upstream.test.ts); what differs is
// listed there.
//
// Contract and differences from the stock adapter:
// - `createContext(socket, info)` runs per call, not once per connection, so no context object lives as
//   long as the socket. It may be async and may throw: then, as tRPC, an `id: null` error, the request's
//   error, and the socket closed.
// - Every procedure gets an AbortSignal. A subscription's is aborted by `subscription.stop` and by the
//   socket closing, then its iterator's `return()` is called. Queries and mutations get a signal that is
//   never aborted (as tRPC). Observables are served through tRPC's `observableToAsyncIterable`.
// - A push iterator (PUSH_ITERATOR below, the relay's EventStream) is ended by `return()` alone: the adapter
//   keeps no AbortController for it, which is what keeps an idle relay stream small.
// - At most `maxBatchSize` requests of one frame run, and `budget` may allow fewer; the rest are answered
//   one by one with `tooManyRequests` and the socket is kept (wsLink sends every request queued in one tick,
//   and after a reconnect every pending one, as one frame: closing would make it reconnect in a loop).
// - No server-side keepAlive timers: the relay pings every socket in one sweep; client PINGs get PONG.
// - `fastMutations`: mutations the adapter answers itself (FastMutation), for a procedure whose per-request
//   cost matters (the relay's chat.post, SPEC.md R17); the caller guarantees the same checks and replies as
//   the procedure, and tests compare the frames.
import {
  type AnyRouter,
  callTRPCProcedure,
  getErrorShape,
  getTRPCErrorFromUnknown,
  TRPCError,
} from '@trpc/server';
import type { Encoder } from '@trpc/server/adapters/ws';
import { parseConnectionParamsFromUnknown } from '@trpc/server/http';
import { isObservable, observableToAsyncIterable } from '@trpc/server/observable';
import { parseTRPCMessage, type TRPCClientOutgoingMessage, type TRPCResponseMessage } from '@trpc/server/rpc';
import { isAsyncIterable, isTrackedEnvelope } from '@trpc/server/unstable-core-do-not-import';

type Id = string | number;
type ProcedureType = 'query' | 'mutation' | 'subscription';
type JsonRpc = '2.0' | undefined;

/** A subscription whose iterator is pulled with `next()`; `ac` is its procedure's signal. */
class Pull {
  constructor(
    readonly it: AsyncIterator<unknown>,
    readonly ac: AbortController,
  ) {}
}

/**
 * A subscription, by state: its procedure still running (the call's AbortController, registered before the
 * first await: SPEC.md R15; aborted = stopped meanwhile), a pulled iterator, or a push iterator.
 */
export type SubscriptionEntry = AbortController | Pull | AsyncIterator<unknown>;

const WS_OPEN = 1;

/**
 * Optional fast path for a subscription's iterator: `it[PUSH_ITERATOR](sink)` makes it hand every value to
 * `sink.data()` and its own end to `sink.end()`, instead of being pulled with `next()`. Then an idle
 * subscription holds no pending promise, no suspended loop, no resolver closures and no AbortController --
 * just the sink. `return()` ends it (stop, disconnect), and must not call the sink afterwards; its
 * procedure's signal is never aborted.
 */
export const PUSH_ITERATOR = Symbol('trpcWsAdapter.pushIterator');
export interface PushSink {
  /** One value; never throws. */
  data(value: unknown): void;
  /** The iterator finished by itself (not through return()). Never throws. */
  end(): void;
}
interface PushIterator extends AsyncIterator<unknown> {
  [PUSH_ITERATOR](sink: PushSink): void;
}

/**
 * A mutation the adapter answers itself instead of through tRPC's procedure call: no middleware chain, no
 * async input parser, no context object, no input copy by the transformer, no response transform. Meant
 * for a procedure whose per-request cost matters (the relay's chat.post, bench:relay); its tRPC definition
 * stays the reference, and the replies must be the ones it gives (a test compares the bytes).
 */
export interface FastMutation<S> {
  /**
   * True when `sent` (the input as sent) needs nothing from the transformer (superjson: `{json}` with no
   * `meta`). Other requests go through tRPC's procedure call, which deserializes them -- and for malformed
   * transformer data fails the frame -- exactly as before.
   */
  takes(sent: unknown): boolean;
  /**
   * The whole procedure: the checks of every middleware and the input schema its router definition runs,
   * in the same order, throwing (or rejecting with) the errors they would -- each answered and reported as
   * any procedure error. `sent` is the input as sent, one `takes()` accepted. It gets the socket, not a
   * context: createContext is not called. Resolves with a result that `output`/`jsonOf` read.
   */
  run(socket: S, sent: unknown): unknown;
  /** The procedure's output for a result of `run` (what its tRPC definition returns). @default the result */
  output?(result: unknown): unknown;
  /**
   * The output's serialized JSON text when its transformer form is `{json: output}` with no meta, so the
   * reply is spliced from it; undefined otherwise, and the output is serialized as tRPC would.
   * @default always undefined
   */
  jsonOf?(result: unknown): string | undefined;
}

/** One request for a FastMutation, as parsed from the frame (the input not yet deserialized). */
class FastCall<S> {
  readonly method = 'mutation';
  constructor(
    readonly id: Id,
    readonly jsonrpc: JsonRpc,
    readonly path: string,
    readonly input: unknown,
    readonly fast: FastMutation<S>,
  ) {}
}

/** What the adapter keeps on each socket: plain fields, owned by the adapter. */
export interface TrpcWsSocket {
  readonly readyState: number;
  close(code?: number, reason?: string): void;
  /**
   * Subscriptions by request id: the first in `trpcSubId`/`trpcSub` (nearly every socket has exactly one,
   * and a Map for it was ~0.18 KiB per connection, bench:relay heap snapshot), the others in `trpcSubs`.
   * All empty until the first one, and again once the socket closed (see subGet and friends).
   */
  trpcSubId: Id | null;
  trpcSub: SubscriptionEntry | null;
  trpcSubs: Map<Id, SubscriptionEntry> | null;
  /** The client announced `connectionParams`: its first message is that, not a request. */
  trpcAwaitingParams: boolean;
  /** What that first message carried (validated as tRPC does); null when none. */
  trpcConnectionParams: Record<string, string | undefined> | null;
}

/** A socket's subscription `id`, or undefined. */
function subGet(s: TrpcWsSocket, id: Id): SubscriptionEntry | undefined {
  return s.trpcSubId === id ? s.trpcSub! : s.trpcSubs?.get(id);
}

/** Sets (or replaces) subscription `id`: inline when the inline slot is free or already `id`'s. */
function subSet(s: TrpcWsSocket, id: Id, entry: SubscriptionEntry): void {
  if (s.trpcSubId === id || (s.trpcSubId === null && !s.trpcSubs?.has(id))) {
    s.trpcSubId = id;
    s.trpcSub = entry;
  } else (s.trpcSubs ??= new Map()).set(id, entry);
}

function subDelete(s: TrpcWsSocket, id: Id): void {
  if (s.trpcSubId === id) {
    s.trpcSubId = null;
    s.trpcSub = null;
  } else if (s.trpcSubs?.delete(id) && s.trpcSubs.size === 0) s.trpcSubs = null;
}

export interface TrpcWsContextInfo {
  connectionParams: Record<string, string | undefined> | null;
}

export interface TrpcWsErrorInfo {
  error: TRPCError;
  path: string | undefined;
  type: ProcedureType | 'unknown';
  input: unknown;
}

export interface TrpcWsAdapterOptions<S extends TrpcWsSocket> {
  router: AnyRouter;
  /** Per call; may be async and may throw (see the contract above). */
  createContext: (socket: S, info: TrpcWsContextInfo) => unknown;
  /** Writes one encoded frame; `path` is the procedure it answers (undefined for frame-level errors). */
  send: (socket: S, frame: string | Uint8Array, path: string | undefined) => void;
  /** @default JSON */
  encoder?: Encoder;
  /** Every error, before it is answered. Isolated: a throwing onError is reported to `onInternalError`. */
  onError?: (info: TrpcWsErrorInfo) => void;
  /** Something that is a bug, not a client's fault (a throwing onError, a throwing iterator return()). */
  onInternalError?: (err: unknown) => void;
  /**
   * Most requests of one frame that run; the rest are refused with `tooManyRequests()`, each answered,
   * socket kept. `subscription.stop` is never counted nor refused (it only frees).
   */
  maxBatchSize: number;
  /**
   * Called once per frame with the number of requests it would run (<= maxBatchSize) and the number it
   * carried (the excess included); returns how many may run (a per-socket budget over time). The rest are
   * refused like the excess over maxBatchSize. It may close the socket: then nothing more is answered.
   * @default every one
   */
  budget?: (socket: S, runnable: number, carried: number) => number;
  /**
   * Called once per frame with the number of subscription requests it carried, run or refused. wsLink answers
   * the end of every subscription -- refused, failed, stopped -- with a `subscription.stop` frame of its own,
   * one frame each: a flood budget must let those through. @default none
   */
  subscriptionRequests?: (socket: S, n: number) => void;
  /** The error a request that was not run is answered with. @default TRPCError TOO_MANY_REQUESTS */
  tooManyRequests?: () => TRPCError;
  /**
   * True for a pushed subscription value the transformer serializes as `{json: value}` with no `meta`
   * (superjson for a plain object of strings, or an instance it leaves untouched). Such a value's frame is
   * built directly, without transformTRPCResponse's four object spreads and the transformer's walk, which
   * are per delivered frame (~6% of the relay's CPU at fan-out). The frame is the same either way
   * (trpcWsAdapter.test.ts). @default none
   */
  serializesAsIs?: (value: unknown) => boolean;
  /**
   * Mutations by path that the adapter answers itself (FastMutation). A request takes that path only when it
   * is a well-formed `mutation` without `lastEventId`; anything else -- including malformed requests, which
   * then fail exactly as before -- goes to tRPC's procedure call. Counted, budgeted and refused as any request.
   * @default none
   */
  fastMutations?: Record<string, FastMutation<S>>;
  /**
   * The encoder writes each message as its JSON text (as the default one does), so a FastMutation's reply
   * can be spliced as text; otherwise it is handed to `encoder.encode` as any reply.
   * @default true without `encoder`, false with one
   */
  jsonEncoder?: boolean;
  /** Tests only: leave client PINGs unanswered, as tRPC's option of the same name. @default false */
  dangerouslyDisablePong?: boolean;
}

export interface TrpcWsAdapter<S extends TrpcWsSocket> {
  /** Call for every received frame (ws 'message' arguments). Never throws. */
  message(socket: S, data: unknown, isBinary: boolean): void;
  /** Call once when the socket closed: ends every subscription it had. Never throws. */
  close(socket: S): void;
  /** True when the upgrade URL announces connectionParams (wsLink adds `connectionParams=1`). */
  expectsConnectionParams(url: string | undefined): boolean;
  /** Asks the client to reconnect (tRPC's `broadcastReconnectNotification`, for one socket). */
  reconnectNotification(socket: S): void;
}

const jsonEncoder: Encoder = {
  encode: (data) => JSON.stringify(data),
  decode: (data) => {
    if (typeof data !== 'string') throw new Error('binary frames are not part of the protocol');
    return JSON.parse(data);
  },
};

const isPromiseLike = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

export function createTrpcWsAdapter<S extends TrpcWsSocket>(opts: TrpcWsAdapterOptions<S>): TrpcWsAdapter<S> {
  const { router, createContext, send, maxBatchSize, serializesAsIs } = opts;
  const config = router._def._config;
  const transformer = config.transformer;
  const encoder = opts.encoder ?? jsonEncoder;
  const textReplies = opts.jsonEncoder ?? opts.encoder === undefined;
  // A Map, not the options object: a path like `__proto__` or `constructor` must not find anything.
  const fastMutations = new Map(Object.entries(opts.fastMutations ?? {}));
  const tooManyRequests =
    opts.tooManyRequests ?? (() => new TRPCError({ code: 'TOO_MANY_REQUESTS', message: 'too many requests in this frame or second' }));

  function internal(err: unknown): void {
    try {
      opts.onInternalError?.(err);
    } catch {
      // Nothing left to tell: never throw out of a socket listener (STYLE 7).
    }
  }

  function respond(socket: S, msg: TRPCResponseMessage, path: string | undefined): void {
    if (socket.readyState !== WS_OPEN) return;
    send(socket, encoder.encode(transformed(msg)), path);
  }

  /**
   * tRPC's transformTRPCResponse for one message, written with native spreads: the same object (keys,
   * order, serialized data), without its bundled `_objectSpread2` helper (ownKeys + defineProperty per
   * key, ~4% of the relay's CPU answering posts, bench:relay profile).
   */
  function transformed(msg: TRPCResponseMessage): unknown {
    if ('error' in msg) return { ...msg, error: transformer.output.serialize(msg.error) };
    if ('data' in msg.result) return { ...msg, result: { ...msg.result, data: transformer.output.serialize(msg.result.data) } };
    return msg;
  }

  function report(info: TrpcWsErrorInfo): void {
    try {
      opts.onError?.(info);
    } catch (err) {
      internal(err);
    }
  }

  function fail(socket: S, id: Id | null, jsonrpc: JsonRpc, cause: unknown, type: ProcedureType | 'unknown', path: string | undefined, input: unknown, ctx: unknown): void {
    const error = getTRPCErrorFromUnknown(cause);
    report({ error, path, type, input });
    respond(socket, { id, jsonrpc, error: getErrorShape({ config, error, type, path, input, ctx }) }, path);
  }

  function end(entry: SubscriptionEntry): void {
    try {
      if (entry instanceof AbortController) {
        entry.abort(); // the procedure's completion ends what it returns
        return;
      }
      let it = entry as AsyncIterator<unknown>;
      if (entry instanceof Pull) {
        // The signal first: a generator waiting on it (tRPC's documented pattern) wakes and unwinds.
        entry.ac.abort();
        it = entry.it;
      }
      const p = it.return?.();
      if (p) p.then(undefined, internal);
    } catch (err) {
      internal(err);
    }
  }

  function message(socket: S, data: unknown, isBinary: boolean): void {
    try {
      onFrame(socket, data, isBinary);
    } catch (err) {
      internal(err);
    }
  }

  function onFrame(socket: S, data: unknown, isBinary: boolean): void {
    if (!Buffer.isBuffer(data)) {
      fail(socket, null, undefined, new TRPCError({ code: 'UNPROCESSABLE_CONTENT', message: 'Unexpected WebSocket message format' }), 'unknown', undefined, undefined, undefined);
      return;
    }
    let payload: string | Uint8Array = data;
    if (!isBinary) {
      payload = data.toString('utf8');
      // keepAlive, answered whatever the encoder (as tRPC does).
      if (payload === 'PING') {
        if (!opts.dangerouslyDisablePong) send(socket, 'PONG', undefined);
        return;
      }
      if (payload === 'PONG') return;
    }

    if (socket.trpcAwaitingParams) {
      socket.trpcAwaitingParams = false;
      try {
        let msg: { data?: unknown } | null;
        try {
          msg = encoder.decode(payload) as { data?: unknown } | null;
          if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw new Error('Message was not an object');
        } catch (cause) {
          throw new TRPCError({ code: 'PARSE_ERROR', message: 'Malformed TRPCConnectionParamsMessage', cause });
        }
        // Its own error ("Invalid connection params shape"), as tRPC answers it.
        socket.trpcConnectionParams = parseConnectionParamsFromUnknown(msg.data);
      } catch (cause) {
        // As tRPC: a context that cannot be created is answered and the connection closed.
        fail(socket, null, undefined, cause, 'unknown', undefined, undefined, undefined);
        socket.close();
      }
      return;
    }

    let raw: unknown[];
    let msgs: (TRPCClientOutgoingMessage | FastCall<S>)[];
    try {
      const decoded: unknown = encoder.decode(payload);
      raw = Array.isArray(decoded) ? decoded : [decoded];
      // Only what may run is parsed (its input deserialized); the excess is read just for its id below.
      msgs = (raw.length > maxBatchSize ? raw.slice(0, maxBatchSize) : raw).map(parseMessage);
    } catch (cause) {
      fail(socket, null, undefined, new TRPCError({ code: 'PARSE_ERROR', cause }), 'unknown', undefined, undefined, undefined);
      return;
    }
    let runnable = 0;
    let subscriptions = 0;
    for (const m of msgs) {
      if (m.method !== 'subscription.stop') runnable++;
      if (m.method === 'subscription') subscriptions++;
    }
    for (let i = maxBatchSize; i < raw.length; i++) if ((raw[i] as { method?: unknown } | null)?.method === 'subscription') subscriptions++;
    if (subscriptions > 0) opts.subscriptionRequests?.(socket, subscriptions);
    let carried = runnable;
    for (let i = maxBatchSize; i < raw.length; i++) if ((raw[i] as { method?: unknown } | null)?.method !== 'subscription.stop') carried++;
    let allowed = opts.budget && carried > 0 ? Math.min(runnable, opts.budget(socket, runnable, carried)) : runnable;
    if (socket.readyState !== WS_OPEN) return; // the budget closed it
    const refusals = new Refusals(socket);
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      if (m instanceof FastCall) {
        if (allowed-- > 0) fastCall(socket, m).catch(internal);
        else refusals.refuse(m.id, m.jsonrpc, 'mutation', m.path);
      } else if (m.method === 'subscription.stop' || allowed-- > 0) request(socket, m, i);
      else refusals.refuse(m.id, m.jsonrpc, m.method as ProcedureType, m.params.path);
    }
    for (let i = maxBatchSize; i < raw.length; i++) {
      const m = raw[i] as { id?: unknown; jsonrpc?: unknown; method?: unknown; params?: { path?: unknown } } | null;
      if (typeof m !== 'object' || m === null) continue;
      const id = m.id;
      // An entry without a usable id cannot be answered (nor matched by the client): dropped.
      if (typeof id !== 'string' && typeof id !== 'number') continue;
      const jsonrpc = m.jsonrpc === '2.0' ? '2.0' : undefined;
      if (m.method === 'subscription.stop') stop(socket, id, jsonrpc);
      else refusals.refuse(id, jsonrpc, m.method === 'subscription' ? 'subscription' : 'unknown', typeof m.params?.path === 'string' ? m.params.path : undefined);
    }
  }

  /**
   * parseTRPCMessage, except that a well-formed request for a FastMutation keeps its input as sent (its
   * `run` deserializes it): the transformer's copy of the input is one of the costs that path avoids.
   */
  function parseMessage(m: unknown): TRPCClientOutgoingMessage | FastCall<S> {
    if (fastMutations.size > 0 && typeof m === 'object' && m !== null && !Array.isArray(m)) {
      const { id, jsonrpc, method, params } = m as { id?: unknown; jsonrpc?: unknown; method?: unknown; params?: unknown };
      if (method === 'mutation' && typeof params === 'object' && params !== null && !Array.isArray(params)) {
        const { path, input, lastEventId } = params as { path?: unknown; input?: unknown; lastEventId?: unknown };
        const fast = typeof path === 'string' ? fastMutations.get(path) : undefined;
        // The same id and jsonrpc rules as parseTRPCMessage; a null id is left to it (answered "`id` is required").
        const idOk = typeof id === 'string' || (typeof id === 'number' && !Number.isNaN(id));
        if (fast && idOk && (jsonrpc === undefined || jsonrpc === '2.0') && lastEventId === undefined && fast.takes(input)) {
          return new FastCall(id as Id, jsonrpc, path as string, input, fast);
        }
      }
    }
    return parseTRPCMessage(m, transformer);
  }

  /** Runs a FastMutation and answers it: the reply spliced from its JSON, or shaped as tRPC would. */
  async function fastCall(socket: S, c: FastCall<S>): Promise<void> {
    let result: unknown;
    try {
      result = c.fast.run(socket, c.input);
      if (isPromiseLike(result)) result = await result;
    } catch (cause) {
      fail(socket, c.id, c.jsonrpc, cause, 'mutation', c.path, c.input, undefined);
      return;
    }
    try {
      const json = textReplies ? c.fast.jsonOf?.(result) : undefined;
      if (json === undefined) {
        const output = c.fast.output ? c.fast.output(result) : result;
        if (isAsyncIterable(output) || isObservable(output)) {
          throw new TRPCError({ code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Cannot return an async iterable or observable from a mutation procedure with WebSockets' });
        }
        respond(socket, { id: c.id, jsonrpc: c.jsonrpc, result: { type: 'data', data: output } }, c.path);
        return;
      }
      if (socket.readyState !== WS_OPEN) return;
      // JSON.stringify of what respond() would encode, key order included: {id, jsonrpc, result: {type, data: {json}}}.
      const head = c.jsonrpc === '2.0' ? `{"id":${JSON.stringify(c.id)},"jsonrpc":"2.0"` : `{"id":${JSON.stringify(c.id)}`;
      send(socket, `${head},"result":{"type":"data","data":{"json":${json}}}}`, c.path);
    } catch (cause) {
      fail(socket, c.id, c.jsonrpc, cause, 'mutation', c.path, c.input, undefined);
    }
  }

  /**
   * One frame's refusals share one error, shaped and serialized once: a frame of a thousand requests must
   * not cost a thousand error shapes (the encode per id remains).
   */
  class Refusals {
    private error: TRPCError | null = null;
    private serialized: unknown = null;
    constructor(private readonly socket: S) {}

    refuse(id: Id | null, jsonrpc: JsonRpc, type: ProcedureType | 'unknown', path: string | undefined): void {
      if (id === null) return; // parseTRPCMessage let it through; nothing to match an answer to
      if (this.socket.readyState !== WS_OPEN) return; // cut meanwhile (send-buffer bound): nobody to tell
      if (!this.error) {
        this.error = getTRPCErrorFromUnknown(tooManyRequests());
        const shape = getErrorShape({ config, error: this.error, type: 'unknown', path: undefined, input: undefined, ctx: undefined });
        this.serialized = transformer.output.serialize(shape);
      }
      report({ error: this.error, path, type, input: undefined });
      send(this.socket, encoder.encode({ id, jsonrpc, error: this.serialized }), path);
    }
  }

  function request(socket: S, msg: TRPCClientOutgoingMessage, batchIndex: number): void {
    const { id, jsonrpc } = msg;
    if (id === null) {
      fail(socket, null, jsonrpc, new TRPCError({ code: 'PARSE_ERROR', message: '`id` is required' }), 'unknown', undefined, undefined, undefined);
      return;
    }
    if (msg.method === 'subscription.stop') {
      stop(socket, id, jsonrpc);
      return;
    }
    const type = msg.method;
    const { path, lastEventId } = msg.params;
    let input = msg.params.input;
    if (lastEventId !== undefined) {
      if (typeof input === 'object' && input !== null && !Array.isArray(input)) input = { ...input, lastEventId };
      else input ??= { lastEventId };
    }
    const ac = new AbortController();
    if (type === 'subscription') {
      if (subGet(socket, id) !== undefined) {
        fail(socket, id, jsonrpc, new TRPCError({ code: 'BAD_REQUEST', message: `Duplicate id ${id}` }), type, path, input, undefined);
        return;
      }
      // Registered before the procedure's first await, so a stop or a disconnect during setup is seen.
      subSet(socket, id, ac);
    }
    call(socket, id, jsonrpc, type, path, input, batchIndex, ac).catch(internal);
  }

  /** The context for one call, or a thrown error after answering it as tRPC does (then the socket closes). */
  async function contextFor(socket: S, id: Id, jsonrpc: JsonRpc, type: ProcedureType, path: string, input: unknown): Promise<{ ok: true; ctx: unknown } | { ok: false }> {
    try {
      let ctx = createContext(socket, { connectionParams: socket.trpcConnectionParams });
      if (isPromiseLike(ctx)) ctx = await ctx;
      return { ok: true, ctx };
    } catch (cause) {
      fail(socket, null, undefined, cause, 'unknown', undefined, undefined, undefined);
      fail(socket, id, jsonrpc, cause, type, path, input, undefined);
      setImmediate(() => socket.close());
      return { ok: false };
    }
  }

  async function call(socket: S, id: Id, jsonrpc: JsonRpc, type: ProcedureType, path: string, input: unknown, batchIndex: number, ac: AbortController): Promise<void> {
    const context = await contextFor(socket, id, jsonrpc, type, path, input);
    if (!context.ok) {
      if (type === 'subscription' && subGet(socket, id) === ac) subDelete(socket, id);
      return;
    }
    const { ctx } = context;
    let it: AsyncIterator<unknown>;
    try {
      const result: unknown = await callTRPCProcedure({
        router,
        path,
        getRawInput: () => Promise.resolve(input),
        ctx,
        type,
        signal: ac.signal,
        batchIndex,
      });
      if (type !== 'subscription') {
        if (isAsyncIterable(result) || isObservable(result)) {
          throw new TRPCError({ code: 'UNSUPPORTED_MEDIA_TYPE', message: `Cannot return an async iterable or observable from a ${type} procedure with WebSockets` });
        }
        respond(socket, { id, jsonrpc, result: { type: 'data', data: result } }, path);
        return;
      }
      if (isObservable(result)) it = observableToAsyncIterable(result, ac.signal)[Symbol.asyncIterator]();
      else if (isAsyncIterable(result)) it = result[Symbol.asyncIterator]();
      else throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: `Subscription ${path} did not return an observable or a AsyncGenerator` });
    } catch (cause) {
      if (type === 'subscription' && subGet(socket, id) === ac) subDelete(socket, id);
      fail(socket, id, jsonrpc, cause, type, path, input, ctx);
      return;
    }
    const mine = subGet(socket, id) === ac;
    if (!mine || ac.signal.aborted || socket.readyState !== WS_OPEN) {
      // Stopped or disconnected while the procedure ran: end what it started, leave nothing behind.
      const stopped = mine && ac.signal.aborted;
      if (mine) subDelete(socket, id);
      end(new Pull(it, ac));
      if (stopped) respond(socket, { id, jsonrpc, result: { type: 'stopped' } }, path);
      return;
    }
    if (typeof (it as Partial<PushIterator>)[PUSH_ITERATOR] === 'function') {
      subSet(socket, id, it);
      respond(socket, { id, jsonrpc, result: { type: 'started' } }, path);
      (it as PushIterator)[PUSH_ITERATOR](new Sink(socket, id, jsonrpc, path, it));
      return;
    }
    const pull = new Pull(it, ac);
    subSet(socket, id, pull);
    respond(socket, { id, jsonrpc, result: { type: 'started' } }, path);
    // Not awaited: this call's frame (its context, the input closure) is released now, only the loop stays.
    pump(socket, id, jsonrpc, pull, path, input, ctx).catch(internal);
  }

  /** One subscription's loop: one pending `next()` at a time, no race. */
  async function pump(socket: S, id: Id, jsonrpc: JsonRpc, pull: Pull, path: string, input: unknown, ctx: unknown): Promise<void> {
    // Declared outside the loop and cleared after use: a suspended async function keeps its locals, so a
    // value held here while waiting would stay reachable until the next event (tRPC #6156).
    let next: IteratorResult<unknown> | null = null;
    let msg: TRPCResponseMessage | null = null;
    for (;;) {
      try {
        next = await pull.it.next();
      } catch (cause) {
        if (subGet(socket, id) !== pull) return; // stopped or disconnected: already answered
        subDelete(socket, id);
        end(pull);
        fail(socket, id, jsonrpc, cause, 'subscription', path, input, ctx);
        // As tRPC: the error, then `stopped`.
        respond(socket, { id, jsonrpc, result: { type: 'stopped' } }, path);
        return;
      }
      // Stopped or disconnected: whoever did it already ended the iterator and answered.
      if (subGet(socket, id) !== pull) return;
      if (next.done) break;
      msg = dataMessage(id, jsonrpc, next.value);
      next = null;
      respond(socket, msg, path);
      msg = null;
    }
    subDelete(socket, id);
    respond(socket, { id, jsonrpc, result: { type: 'stopped' } }, path);
  }

  /** The push fast path's receiver: one small object per subscription. */
  class Sink implements PushSink {
    constructor(
      private readonly socket: S,
      private readonly id: Id,
      private readonly jsonrpc: JsonRpc,
      private readonly path: string,
      private readonly it: AsyncIterator<unknown>,
    ) {}

    data(value: unknown): void {
      try {
        if (subGet(this.socket, this.id) !== this.it) return;
        if (serializesAsIs?.(value)) {
          if (this.socket.readyState !== WS_OPEN) return;
          // What transformTRPCResponse makes of dataMessage() for such a value, key order included.
          send(this.socket, encoder.encode({ id: this.id, jsonrpc: this.jsonrpc, result: { type: 'data', data: { json: value } } }), this.path);
          return;
        }
        respond(this.socket, dataMessage(this.id, this.jsonrpc, value), this.path);
      } catch (err) {
        internal(err);
      }
    }

    end(): void {
      try {
        if (subGet(this.socket, this.id) !== this.it) return; // ended by stop or disconnect, already answered
        subDelete(this.socket, this.id);
        respond(this.socket, { id: this.id, jsonrpc: this.jsonrpc, result: { type: 'stopped' } }, this.path);
      } catch (err) {
        internal(err);
      }
    }
  }

  function dataMessage(id: Id, jsonrpc: JsonRpc, value: unknown): TRPCResponseMessage {
    return isTrackedEnvelope(value)
      ? // Key order as tRPC's: `id` after `data` (the frame must be byte-identical).
        { id, jsonrpc, result: { type: 'data', data: { id: value[0], data: value[1] }, id: value[0] } }
      : { id, jsonrpc, result: { type: 'data', data: value } };
  }

  function stop(socket: S, id: Id, jsonrpc: JsonRpc): void {
    const entry = subGet(socket, id);
    if (entry === undefined) return;
    if (entry instanceof AbortController) {
      entry.abort(); // the procedure's completion ends it and answers `stopped`
      return;
    }
    subDelete(socket, id);
    end(entry);
    respond(socket, { id, jsonrpc, result: { type: 'stopped' } }, undefined);
  }

  function close(socket: S): void {
    const first = socket.trpcSub;
    const subs = socket.trpcSubs;
    socket.trpcSubId = null;
    socket.trpcSub = null;
    socket.trpcSubs = null;
    socket.trpcConnectionParams = null;
    if (first) end(first);
    if (subs) for (const entry of subs.values()) end(entry);
  }

  return {
    message,
    close,
    expectsConnectionParams(url) {
      if (!url) return false;
      const q = url.indexOf('?');
      return q >= 0 && new URLSearchParams(url.slice(q + 1)).get('connectionParams') === '1';
    },
    reconnectNotification(socket) {
      if (socket.readyState === WS_OPEN) send(socket, encoder.encode({ id: null, method: 'reconnect' }), undefined);
    },
  };
}
