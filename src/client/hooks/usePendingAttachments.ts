// Files waiting in the composer (MD11): picked, pasted or dropped; prepared at once (header and bomb check
// before any decode, metadata stripped unless kept, digests, thumbnail); minted and stored at send. A
// failed mint keeps the file and says why, so nothing is lost; a minted one is not minted again on retry.
// Kept per channel outside React, like the draft, so switching channels keeps them (for the page's life:
// File objects cannot be persisted).
import { useCallback, useMemo, useSyncExternalStore } from 'react';
import type { SignedAttachment } from '../../shared/protocol/relay';
import { checkImage, HEADER_SCAN_BYTES, HeaderReason } from '../media/imageHeader';
import type { Prepared } from '../media/prepareAttachment';
import type { ClientLike } from '../session/ClientLike';
import { REASON_TEXT } from '../components/MessageRow';

export type PendingFile = {
  readonly key: number;
  readonly file: File;
  readonly name: string;
  readonly status: 'preparing' | 'ready' | 'uploading' | 'failed';
  /** The prepared bytes and metadata (once ready). */
  readonly prepared: Extract<Prepared, { ok: true }> | null;
  /** Minted by the relay and stored (once uploaded); kept for a retry of the post. */
  readonly signed: SignedAttachment | null;
  /** Why the last mint failed, in words. */
  readonly error: string | null;
};

interface ChannelState {
  items: readonly PendingFile[];
  /** Refusals of the last add, each naming its file. */
  refused: readonly string[];
  keepMetadata: boolean;
}

const EMPTY: ChannelState = { items: [], refused: [], keepMetadata: false };
const states = new Map<string, ChannelState>();
const listeners = new Set<() => void>();
let nextKey = 1;

const get = (channel: string): ChannelState => states.get(channel) ?? EMPTY;
function set(channel: string, f: (s: ChannelState) => ChannelState): void {
  states.set(channel, f(get(channel)));
  for (const l of listeners) l();
}
const patch = (channel: string, key: number, p: Partial<PendingFile>) =>
  set(channel, (s) => ({ ...s, items: s.items.map((i) => (i.key === key ? { ...i, ...p } : i)) }));
const subscribe = (l: () => void) => {
  listeners.add(l);
  return () => listeners.delete(l);
};

const mintText = (reason: string): string => REASON_TEXT[reason] ?? reason;

export interface PendingAttachments extends ChannelState {
  add(files: readonly File[]): void;
  remove(key: number): void;
  setKeepMetadata(keep: boolean): void;
  /** Nothing is still being prepared or uploaded. */
  settled: boolean;
  /**
   * Mints and stores every file not minted yet; the signed attachments when all are, else null (the
   * failed ones show their reason and stay).
   */
  upload(): Promise<SignedAttachment[] | null>;
  clear(): void;
}

export function usePendingAttachments(
  channel: string,
  client: ClientLike,
  /** The relay's limits.maxAttachmentBytes and maxAttachmentsPerMessage (A1, A2). */
  limits: { maxBytes: number; maxCount: number },
): PendingAttachments {
  const state = useSyncExternalStore(subscribe, () => get(channel));

  const prepare = useCallback(
    async (key: number, file: File, name: string, keepOriginal: boolean) => {
      patch(channel, key, { status: 'preparing', prepared: null, signed: null, error: null });
      let r: Prepared;
      try {
        // The header first, from a slice: a bomb is refused without reading (or decoding) the rest.
        const head = checkImage(new Uint8Array(await file.slice(0, HEADER_SCAN_BYTES).arrayBuffer()));
        if (!head.ok && head.reason === HeaderReason.TOO_MANY_PIXELS) r = { ok: false, reason: head.reason, message: head.message };
        else {
          const bytes = new Uint8Array(await file.arrayBuffer());
          // Its own chunk (image decoding, metadata stripping, digests, the schemas): the first paint of a
          // channel does not need it.
          const { prepareAttachment } = await import('../media/prepareAttachment');
          r = await prepareAttachment(bytes, { name, claimedMime: file.type, keepOriginal, maxBytes: limits.maxBytes });
        }
      } catch (err) {
        r = { ok: false, reason: 'BAD_IMAGE', message: `The file could not be read (${String(err)}).` };
      }
      const item = get(channel).items.find((i) => i.key === key);
      if (!item || item.file !== file) return; // removed meanwhile
      if (r.ok) patch(channel, key, { status: 'ready', prepared: r });
      else
        set(channel, (s) => ({
          ...s,
          items: s.items.filter((i) => i.key !== key),
          refused: [...s.refused, `${item.name}: ${r.message}`],
        }));
    },
    [channel, limits.maxBytes],
  );

  const add = useCallback(
    (files: readonly File[]) => {
      const s = get(channel);
      const refused: string[] = [];
      const accepted: PendingFile[] = [];
      for (const file of files) {
        const name = file.name || 'pasted image';
        if (s.items.length + accepted.length >= limits.maxCount) {
          refused.push(`${name}: at most ${limits.maxCount} attachments fit in one message.`);
        } else if (file.size > limits.maxBytes) {
          // Checked on the File's size: a 2 GB video is never read into memory.
          refused.push(`${name}: the file is ${mb(file.size)}; the most this relay allows is ${mb(limits.maxBytes)}.`);
        } else {
          accepted.push({ key: nextKey++, file, name, status: 'preparing', prepared: null, signed: null, error: null });
        }
      }
      set(channel, (c) => ({ ...c, items: [...c.items, ...accepted], refused }));
      for (const a of accepted) void prepare(a.key, a.file, a.name, s.keepMetadata);
    },
    [channel, limits.maxBytes, limits.maxCount, prepare],
  );

  const remove = useCallback((key: number) => set(channel, (s) => ({ ...s, items: s.items.filter((i) => i.key !== key), refused: [] })), [channel]);

  const setKeepMetadata = useCallback(
    (keep: boolean) => {
      set(channel, (s) => ({ ...s, keepMetadata: keep }));
      // What is not minted yet is prepared again the new way (the digests sign what is shared, MD3).
      for (const i of get(channel).items) if (!i.signed && i.status !== 'uploading') void prepare(i.key, i.file, i.name, keep);
    },
    [channel, prepare],
  );

  const upload = useCallback(async (): Promise<SignedAttachment[] | null> => {
    let ok = true;
    for (const item of get(channel).items) {
      if (item.signed) continue;
      if (!item.prepared) {
        ok = false;
        continue;
      }
      patch(channel, item.key, { status: 'uploading', error: null });
      const r = await client.publishAttachment(item.prepared.bytes, item.prepared.meta);
      if (r.ok) patch(channel, item.key, { status: 'ready', signed: r.attachment });
      else {
        ok = false;
        patch(channel, item.key, { status: 'failed', error: mintText(r.error.reason) });
      }
    }
    const items = get(channel).items;
    return ok && items.every((i) => i.signed) ? items.map((i) => i.signed!) : null;
  }, [channel, client]);

  const clear = useCallback(() => set(channel, (s) => ({ ...s, items: [], refused: [] })), [channel]);
  const settled = state.items.every((i) => i.status !== 'preparing' && i.status !== 'uploading');
  return useMemo(
    () => ({ ...state, add, remove, setKeepMetadata, settled, upload, clear }),
    [state, add, remove, setKeepMetadata, settled, upload, clear],
  );
}

const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`;
