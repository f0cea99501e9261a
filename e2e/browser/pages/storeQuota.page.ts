// Page entry: DexieStore against a real IndexedDB quota (SPEC.md H15, H16). The test gives this origin a
// tiny quota through CDP (Storage.overrideQuotaForOrigin) before the cases run.
import { DexieStore } from '../../../src/shared/store/DexieStore';
import { StoreQuotaError, isStoreQuotaError } from '../../../src/shared/store/HistoryStore';
import type { Envelope, SignedAttachment } from '../../../src/shared/protocol/relay';
import { monotonicFactory } from 'ulidx';
import { registerCases } from '../pageCases';

const ulid = monotonicFactory();
const SIG = 'A'.repeat(86);
const KEY = 'R'.repeat(43);

// Stores do not verify (H7): placeholder signatures are enough to exercise storage.
function meta(size: number): SignedAttachment {
  const id = ulid();
  return { id, ts: Date.now(), uploader: KEY, relay: KEY, rsig: SIG, meta: { name: 'f.bin', mime: 'application/octet-stream', size, sha256: 'S'.repeat(43), chunkRoot: 'C'.repeat(43) } };
}
function envelope(text: string): Envelope {
  const id = ulid();
  return {
    id, ts: Date.now(), epoch: id, prev: null, relay: KEY, rsig: SIG,
    post: { channel: 'general', clientId: `c${id}`, text, attachments: [], replyTo: null, author: KEY, relay: KEY, sentAt: Date.now(), sig: SIG },
  };
}
function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(what);
}
/** Random content: IndexedDB may compress what it stores, and random bytes do not compress. */
function noise(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(size, i + 65536)));
  return out;
}

registerCases([
  {
    name: 'H16 a write over the quota rejects with StoreQuotaError, is reported to onQuota and stores nothing; H15 clearing content frees room',
    async run(input) {
      const { quotaBytes } = input as { quotaBytes: number };
      const store = new DexieStore(`peerchat-quota-${Date.now()}`);
      const heard: StoreQuotaError[] = [];
      const off = store.onQuota((e) => heard.push(e));
      const env = envelope('before the disk filled');
      assert((await store.putMessages([env])).length === 1, 'a small write fits');
      const size = 256 * 1024;
      const held: string[] = [];
      let refused: SignedAttachment | null = null;
      let error: unknown = null;
      // Fill it: at most twice the quota's worth of attempts, so a quota that is not enforced fails the case.
      for (let i = 0; i < Math.ceil((2 * quotaBytes) / size) + 4 && !refused; i++) {
        const m = meta(size);
        try {
          await store.putAttachmentMeta(m);
          assert(await store.putAttachmentBytes(m.id, noise(size)), 'bytes accepted');
          held.push(m.id);
        } catch (err) {
          refused = m;
          error = err;
        }
      }
      assert(refused, `no write was refused within ${2 * quotaBytes} bytes`);
      assert(error instanceof StoreQuotaError && isStoreQuotaError(error), `a StoreQuotaError, got ${String(error)} (${(error as Error)?.name})`);
      assert(heard.length === 1 && heard[0] === error, `onQuota heard it once, before the rejection (${heard.length})`);
      assert(!(await store.hasAttachmentBytes(refused.id)), 'nothing of the refused write is held');
      // Messages hit the same quota; the envelope stored before is intact.
      let msgError: unknown = null;
      try {
        await store.putMessages([envelope('x'.repeat(3000)), ...Array.from({ length: 400 }, (_, i) => envelope(`filler ${i} ${'y'.repeat(2000)}`))]);
      } catch (err) {
        msgError = err;
      }
      assert(isStoreQuotaError(msgError), `a message batch over the quota is a StoreQuotaError too, got ${String(msgError)}`);
      assert((await store.getMessages([env.id]))[0]?.id === env.id, 'earlier messages intact');

      // The user clears old attachments: content goes, metadata stays, and there is room again.
      const dropped = await store.dropAttachmentBytes({});
      assert(dropped.ids.length === held.length && dropped.bytes === held.length * size, `dropped ${dropped.ids.length} of ${held.length}`);
      assert((await store.getAttachment(held[0]!))?.meta.id === held[0], 'metadata kept');
      assert((await store.usage()).attachmentBytes === 0, 'no content left');
      const after = envelope('after clearing');
      assert((await store.putMessages([after])).length === 1, 'a message fits again after clearing');
      const again = meta(size);
      await store.putAttachmentMeta(again);
      assert(await store.putAttachmentBytes(again.id, noise(size)), 'an attachment fits again after clearing');
      off();
      await store.close();
    },
  },
]);
