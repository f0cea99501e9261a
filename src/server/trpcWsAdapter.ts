// A lean tRPC 11 WebSocket adapter: the same wire protocol as `@trpc/server/adapters/ws` (so the stock
// `wsLink` client works unchanged), with a fraction of its memory per connection and per subscription.
//
// Why not tRPC's own: per connection it keeps a dozen closures, an AbortController, a Map and a context
// promise; per subscription an AbortController, an abort promise, an `iteratorResource` and one
// `Promise.race` per event -- ~6.5 KiB per idle subscription, measured (bench:relay). On a 256 MB VM that
// decides how many clients fit. Here, per connection: two fields on the socket (a lazily created Map of
// subscriptions and a flag) and no listeners (the socket class calls `message`/`close` directly); per
// subscription: one Map entry and one suspended `next()` loop. Procedures, errors and the transformer are
// tRPC's own (callTRPCProcedure, getErrorShape, transformTRPCResponse, parseTRPCMessage), so error shapes
// and data encoding are exactly what the stock adapter sends.
//
// Contract this adapter relies on (the relay's procedures meet it):
// - `createContext(socket)` is cheap, synchronous and never throws: it runs per call, not once per
//   connection, so no context object lives as long as the socket.
// - A subscription returns an AsyncIterable whose iterator's `return()` settles a pending `next()` (the
//   relay's EventStream does). There is no AbortSignal per subscription: stop and disconnect call
//   `return()`. Observables are not supported (answered as an INTERNAL error, like any bad return value).
// - `connectionParams` (sent when the client sets them) are validated as tRPC does and then discarded:
//   the relay proves identity with a procedure, not with connection params.
// - No server-side keepAlive timers: the relay pings every socket in one sweep; client PINGs get PONG.
import {
  type AnyRouter,
  callTRPCProcedure,
  getErrorShape,
  getTRPCErrorFromUnknown,
  transformTRPCResponse,
  TRPCError,
} from '@trpc/server';
import type { Encoder } from '@trpc/server/adapters/ws';
import { parseConnectionParamsFromUnknown } from '@trpc/server/http';
import { isObservable } from '@trpc/server/observable';
import { parseTRPCMessage, type TRPCClientOutgoingMessage, type TRPCResponseMessage } from '@trpc/server/rpc';
import { isAsyncIterable, isTrackedEnvelope } from '@trpc/server/unstable-core-do-not-import';

type Id = string | number;
type ProcedureType = 'query' | 'mutation' | 'subscription';
/** The subscription procedure is still running (registered before its first await: SPEC.md R15). */
const PENDING = 0;
/** `subscription.stop` arrived while the procedure was still running. */
const STOPPED = 1;
/** A subscription: its iterator once running, or one of the two markers above. */
export type SubscriptionEntry = AsyncIterator<unknown> | typeof PENDING | typeof STOPPED;

const WS_OPEN = 1;

/**
 * Optional fast path for a subscription's iterator: `it[PUSH_ITERATOR](sink)` makes it hand every value to
 * `sink.data()` and its own end to `sink.end()`, instead of being pulled with `next()`. Then an idle
 * subscription holds no pending promise, no suspended loop and no resolver closures -- just the sink.
 * `return()` still ends it (stop, disconnect), and must not call the sink afterwards.
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

/** What the adapter keeps on each socket: two plain fields, owned by the adapter. */
export interface TrpcWsSocket {
  readonly readyState: number;
  close(code?: number, reason?: string): void;
  /** Subscriptions by request id; null until the first one, and again once the socket closed. */
  trpcSubs: Map<Id, SubscriptionEntry> | null;
  /** The client announced `connectionParams`: its first message is that, not a request. */
  trpcAwaitingParams: boolean;
}

export interface TrpcWsErrorInfo {
  error: TRPCError;
  path: string | undefined;
  type: ProcedureType | 'unknown';
  input: unknown;
}

export interface TrpcWsAdapterOptions<S extends TrpcWsSocket> {
  router: AnyRouter;
  /** Per call; see the contract above. */
  createContext: (socket: S) => unknown;
  /** Writes one encoded frame; `path` is the procedure it answers (undefined for frame-level errors). */
  send: (socket: S, frame: string | Uint8Array, path: string | undefined) => void;
  /** @default JSON */
  encoder?: Encoder;
  /** Every error, before it is answered. Isolated: a throwing onError is reported to `onInternalError`. */
  onError?: (info: TrpcWsErrorInfo) => void;
  /** Something that is a bug, not a client's fault (a throwing onError, a throwing iterator return()). */
  onInternalError?: (err: unknown) => void;
  /** Most requests one frame may batch; a larger batch is answered PAYLOAD_TOO_LARGE and the socket closed. */
  maxBatchSize: number;
}

export interface TrpcWsAdapter<S extends TrpcWsSocket> {
  /** Call for every received frame (ws 'message' arguments). Never throws. */
  message(socket: S, data: unknown, isBinary: boolean): void;
  /** Call once when the socket closed: ends every subscription it had. Never throws. */
  close(socket: S): void;
  /** True when the upgrade URL announces connectionParams (wsLink adds `connectionParams=1`). */
  expectsConnectionParams(url: string | undefined): boolean;
}

const jsonEncoder: Encoder = {
  encode: (data) => JSON.stringify(data),
  decode: (data) => {
    if (typeof data !== 'string') throw new Error('binary frames are not part of the protocol');
    return JSON.parse(data);
  },
};

export function createTrpcWsAdapter<S extends TrpcWsSocket>(opts: TrpcWsAdapterOptions<S>): TrpcWsAdapter<S> {
  const { router, createContext, send, maxBatchSize } = opts;
  const config = router._def._config;
  const transformer = config.transformer;
  const encoder = opts.encoder ?? jsonEncoder;

  function internal(err: unknown): void {
    try {
      opts.onInternalError?.(err);
    } catch {
      // Nothing left to tell: never throw out of a socket listener (STYLE 7).
    }
  }

  function respond(socket: S, msg: TRPCResponseMessage, path: string | undefined): void {
    if (socket.readyState !== WS_OPEN) return;
    send(socket, encoder.encode(transformTRPCResponse(config, msg)), path);
  }

  function fail(socket: S, id: Id | null, jsonrpc: '2.0' | undefined, cause: unknown, type: ProcedureType | 'unknown', path: string | undefined, input: unknown): void {
    const error = getTRPCErrorFromUnknown(cause);
    try {
      opts.onError?.({ error, path, type, input });
    } catch (err) {
      internal(err);
    }
    const ctx = type === 'unknown' ? undefined : createContext(socket);
    respond(socket, { id, jsonrpc, error: getErrorShape({ config, error, type, path, input, ctx }) }, path);
  }

  function end(it: AsyncIterator<unknown>): void {
    try {
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
      fail(socket, null, undefined, new TRPCError({ code: 'UNPROCESSABLE_CONTENT', message: 'Unexpected WebSocket message format' }), 'unknown', undefined, undefined);
      return;
    }
    let payload: string | Uint8Array = data;
    if (!isBinary) {
      payload = data.toString('utf8');
      // keepAlive, answered whatever the encoder (as tRPC does).
      if (payload === 'PING') {
        send(socket, 'PONG', undefined);
        return;
      }
      if (payload === 'PONG') return;
    }

    if (socket.trpcAwaitingParams) {
      socket.trpcAwaitingParams = false;
      try {
        const msg = encoder.decode(payload) as { data?: unknown } | null;
        if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw new Error('Message was not an object');
        parseConnectionParamsFromUnknown(msg.data);
      } catch (cause) {
        // As tRPC: a context that cannot be created is answered and the connection closed.
        fail(socket, null, undefined, new TRPCError({ code: 'PARSE_ERROR', message: 'Malformed TRPCConnectionParamsMessage', cause }), 'unknown', undefined, undefined);
        socket.close();
      }
      return;
    }

    let msgs: TRPCClientOutgoingMessage[];
    try {
      const decoded: unknown = encoder.decode(payload);
      const raw = Array.isArray(decoded) ? decoded : [decoded];
      if (raw.length > maxBatchSize) {
        fail(socket, null, undefined, new TRPCError({ code: 'PAYLOAD_TOO_LARGE', message: `more than ${maxBatchSize} requests in one frame` }), 'unknown', undefined, undefined);
        socket.close(1009, 'TOO_LARGE');
        return;
      }
      msgs = raw.map((m) => parseTRPCMessage(m, transformer));
    } catch (cause) {
      fail(socket, null, undefined, new TRPCError({ code: 'PARSE_ERROR', cause }), 'unknown', undefined, undefined);
      return;
    }
    for (let i = 0; i < msgs.length; i++) request(socket, msgs[i]!, i);
  }

  function request(socket: S, msg: TRPCClientOutgoingMessage, batchIndex: number): void {
    const { id, jsonrpc } = msg;
    if (id === null) {
      fail(socket, null, jsonrpc, new TRPCError({ code: 'PARSE_ERROR', message: '`id` is required' }), 'unknown', undefined, undefined);
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
    if (type === 'subscription') {
      const subs = (socket.trpcSubs ??= new Map());
      if (subs.has(id)) {
        fail(socket, id, jsonrpc, new TRPCError({ code: 'BAD_REQUEST', message: `Duplicate id ${id}` }), type, path, input);
        return;
      }
      // Registered before the procedure's first await, so a stop or a disconnect during setup is seen.
      subs.set(id, PENDING);
    }
    call(socket, id, jsonrpc, type, path, input, batchIndex).catch(internal);
  }

  async function call(socket: S, id: Id, jsonrpc: '2.0' | undefined, type: ProcedureType, path: string, input: unknown, batchIndex: number): Promise<void> {
    let it: AsyncIterator<unknown>;
    try {
      const result: unknown = await callTRPCProcedure({
        router,
        path,
        getRawInput: () => Promise.resolve(input),
        ctx: createContext(socket),
        type,
        signal: undefined,
        batchIndex,
      });
      if (type !== 'subscription') {
        if (isAsyncIterable(result) || isObservable(result)) {
          throw new TRPCError({ code: 'UNSUPPORTED_MEDIA_TYPE', message: `Cannot return an async iterable or observable from a ${type} procedure with WebSockets` });
        }
        respond(socket, { id, jsonrpc, result: { type: 'data', data: result } }, path);
        return;
      }
      if (!isAsyncIterable(result)) {
        throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: `Subscription ${path} did not return an AsyncIterable` });
      }
      it = result[Symbol.asyncIterator]();
    } catch (cause) {
      if (type === 'subscription') {
        const entry = socket.trpcSubs?.get(id);
        if (entry === PENDING || entry === STOPPED) socket.trpcSubs!.delete(id);
      }
      fail(socket, id, jsonrpc, cause, type, path, input);
      return;
    }
    const subs = socket.trpcSubs;
    const entry = subs?.get(id);
    if (entry !== PENDING || socket.readyState !== WS_OPEN) {
      // Stopped or disconnected while the procedure ran: end what it started, leave nothing behind.
      if (entry === STOPPED || entry === PENDING) subs!.delete(id);
      end(it);
      if (entry === STOPPED) respond(socket, { id, jsonrpc, result: { type: 'stopped' } }, path);
      return;
    }
    subs!.set(id, it);
    respond(socket, { id, jsonrpc, result: { type: 'started' } }, path);
    if (typeof (it as Partial<PushIterator>)[PUSH_ITERATOR] === 'function') {
      (it as PushIterator)[PUSH_ITERATOR](new Sink(socket, id, jsonrpc, path, it));
      return;
    }
    // Not awaited: this call's frame (its context, the input closure) is released now, only the loop stays.
    pump(socket, id, jsonrpc, it, path, input).catch(internal);
  }

  /** One subscription's loop: one pending `next()` at a time, no race, no abort signal. */
  async function pump(socket: S, id: Id, jsonrpc: '2.0' | undefined, it: AsyncIterator<unknown>, path: string, input: unknown): Promise<void> {
    let next: IteratorResult<unknown> | null;
    for (;;) {
      try {
        next = await it.next();
      } catch (cause) {
        if (socket.trpcSubs?.get(id) !== it) return;
        socket.trpcSubs.delete(id);
        end(it);
        fail(socket, id, jsonrpc, cause, 'subscription', path, input);
        return;
      }
      // Stopped or disconnected: whoever did it already ended the iterator and answered.
      if (socket.trpcSubs?.get(id) !== it) return;
      if (next.done) break;
      const value = next.value;
      next = null; // nothing held while waiting for the next event
      respond(socket, dataMessage(id, jsonrpc, value), path);
    }
    socket.trpcSubs.delete(id);
    respond(socket, { id, jsonrpc, result: { type: 'stopped' } }, path);
  }

  /** The push fast path's receiver: one small object per subscription. */
  class Sink implements PushSink {
    constructor(
      private readonly socket: S,
      private readonly id: Id,
      private readonly jsonrpc: '2.0' | undefined,
      private readonly path: string,
      private readonly it: AsyncIterator<unknown>,
    ) {}

    data(value: unknown): void {
      try {
        if (this.socket.trpcSubs?.get(this.id) !== this.it) return;
        respond(this.socket, dataMessage(this.id, this.jsonrpc, value), this.path);
      } catch (err) {
        internal(err);
      }
    }

    end(): void {
      try {
        const subs = this.socket.trpcSubs;
        if (subs?.get(this.id) !== this.it) return; // ended by stop or disconnect, already answered
        subs.delete(this.id);
        respond(this.socket, { id: this.id, jsonrpc: this.jsonrpc, result: { type: 'stopped' } }, this.path);
      } catch (err) {
        internal(err);
      }
    }
  }

  function dataMessage(id: Id, jsonrpc: '2.0' | undefined, value: unknown): TRPCResponseMessage {
    return isTrackedEnvelope(value)
      ? // Key order as tRPC's: `id` after `data` (the frame must be byte-identical).
        { id, jsonrpc, result: { type: 'data', data: { id: value[0], data: value[1] }, id: value[0] } }
      : { id, jsonrpc, result: { type: 'data', data: value } };
  }

  function stop(socket: S, id: Id, jsonrpc: '2.0' | undefined): void {
    const subs = socket.trpcSubs;
    const entry = subs?.get(id);
    if (entry === undefined || entry === STOPPED) return;
    if (entry === PENDING) {
      subs!.set(id, STOPPED); // the procedure's completion ends it
      return;
    }
    subs!.delete(id);
    end(entry);
    respond(socket, { id, jsonrpc, result: { type: 'stopped' } }, undefined);
  }

  function close(socket: S): void {
    const subs = socket.trpcSubs;
    socket.trpcSubs = null;
    if (!subs) return;
    for (const entry of subs.values()) if (typeof entry === 'object') end(entry);
  }

  return {
    message,
    close,
    expectsConnectionParams(url) {
      if (!url) return false;
      const q = url.indexOf('?');
      return q >= 0 && new URLSearchParams(url.slice(q + 1)).get('connectionParams') === '1';
    },
  };
}
