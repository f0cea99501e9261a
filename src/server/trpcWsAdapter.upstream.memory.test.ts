// SPEC.md R16: tRPC's websockets.memory.test.ts (trpc/trpc at 340811ba, MIT), ported to node:test and run
// against both the stock applyWSSHandler and the relay's adapter: an idle subscription must not keep its
// last event reachable (tRPC #6156). The subscription is tRPC's documented shape, `on(ee, ..., { signal })`.
import { EventEmitter, on } from 'node:events';
import { afterEach, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { wsLink } from '@trpc/client';
import { initTRPC } from '@trpc/server';
import { sleep } from '@trpc/server/unstable-core-do-not-import';
import { type AdapterKind, closeAllClients, expect, testServerAndClientResource, vi } from './trpcWsAdapter.upstream.kit';

// vitest runs this file with --expose-gc; node:test's children do not get it, so expose it here.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function factory(kind: AdapterKind) {
  const ee = new EventEmitter();
  const t = initTRPC.create();

  const appRouter = t.router({
    onData: t.procedure.subscription(({ signal }) => on(ee as any, 'data', { signal })),
  });

  const opts = testServerAndClientResource(kind, appRouter, {
    wsClient: { retryDelayMs: () => 10 },
    client({ wsClient }) {
      return { links: [wsLink({ client: wsClient })] };
    },
    wssServer: { router: appRouter },
  });

  return { ...opts, ee };
}

for (const kind of ['stock', 'lean'] as const) {
  describe(`tRPC ws subscription memory (upstream), ${kind === 'stock' ? 'stock applyWSSHandler' : 'relay adapter'}`, () => {
    afterEach(closeAllClients);
    it('should free data after each iteration (#6156)', async () => {
      await using ctx = factory(kind);

      const onStartedMock = vi.fn();
      const onDataLengthMock = vi.fn();
      const subscription = ctx.client.onData.subscribe(undefined, {
        onStarted() {
          onStartedMock();
        },
        onData(data) {
          expect(Array.isArray(data)).toBe(true);
          onDataLengthMock((data as unknown[]).length);
        },
      });

      await vi.waitFor(() => {
        expect(onStartedMock).toHaveBeenCalled();
      });

      const refs = [emitData(), emitData()];

      await vi.waitFor(() => {
        expect(onDataLengthMock).toHaveBeenCalledTimes(2);
      });

      await sleep(0);
      gc();

      expect(refs[0]!.deref()).toBeUndefined();
      expect(refs[1]!.deref()).toBeUndefined();

      subscription.unsubscribe();

      function emitData(): WeakRef<never[]> {
        const data: never[] = [];
        const ref = new WeakRef(data);
        ctx.ee.emit('data', data);
        return ref;
      }
    });

    it('unsubscribe and a closed socket abort the signal of a subscription written as tRPC documents', async () => {
      // Not upstream: what the memory test's router relies on, asserted directly (a signal that is never
      // aborted leaves the `on()` listener behind for ever).
      await using ctx = factory(kind);
      const sub = ctx.client.onData.subscribe(undefined, {});
      await vi.waitFor(() => expect(ctx.ee.listenerCount('data')).toBe(1));
      sub.unsubscribe();
      await vi.waitFor(() => expect(ctx.ee.listenerCount('data')).toBe(0));
      ctx.client.onData.subscribe(undefined, {});
      await vi.waitFor(() => expect(ctx.ee.listenerCount('data')).toBe(1));
      await ctx.wsClient.close(); // the socket goes, the client does not come back
      await vi.waitFor(() => expect(ctx.ee.listenerCount('data')).toBe(0));
    });
  });
}
