// One attachment's content for a view (MD8): fetched from the store or peer to peer while the view is
// mounted (the virtualizer mounts the rows in view plus a few), with the engine's progress; "waiting" when
// no online peer holds it, fetched again by itself when a peer comes online or the engine gets it in the
// background. The object URL lives exactly as long as the view: revoked on unmount, so 10,000 messages
// scrolled past hold no bytes (scrolling back fetches again, from the store).
import { useEffect, useRef, useState } from 'react';
import type { SignedAttachment } from '../../shared/protocol/relay';
import { contentView } from '../media/attachmentView';
import type { ClientLike } from '../session/ClientLike';

export type AttachmentState =
  | { phase: 'idle' }
  | { phase: 'fetching'; /** 0..1 */ progress: number }
  | { phase: 'waiting' }
  /** Verified bytes here. `url` only when they sniff as the signed image (MD4); else a download card. */
  | { phase: 'ready'; url: string | null }
  | { phase: 'failed'; message: string };

/** Fetch results that mean "nobody online has it now": wait for a peer instead of failing. */
const WAIT_REASONS = new Set(['NOT_FOUND', 'NOT_ONLINE', 'BUSY', 'STOPPED']);

const FAIL_TEXT: Record<string, string> = {
  WRONG_DIGEST: 'the bytes peers sent do not match what was signed',
  STORE_REFUSED: 'there is no room to store it (see Storage)',
  UNKNOWN: 'its description is not stored here',
};

/**
 * UNKNOWN right after a message lands is a race, not a fault: the engine stores the envelope, then its
 * attachments' metadata, and the list may render in between. Asked again this often, this many times.
 */
const UNKNOWN_RETRY_MS = 1000;
const UNKNOWN_RETRIES = 3;

/** Ids of the other sessions online (a new one may hold the attachment), and the open peer links. */
const otherPeers = (client: ClientLike): { ids: string[]; links: number } => {
  const s = client.getSnapshot();
  return { ids: s.presence.filter((p) => !p.isSelf).map((p) => p.peerId), links: s.links };
};

export interface UseAttachmentOptions {
  /** Fetch as soon as the view mounts (photos); else only on load() (file cards). */
  auto: boolean;
  /** Show it as an image if the bytes allow (MD4); false: a file, never an object URL. */
  image: boolean;
  /** Called with the verified bytes of a fetch (a file card saves them); not kept afterwards. */
  onBytes?(bytes: Uint8Array): void;
}

export function useAttachment(client: ClientLike, att: SignedAttachment, opts: UseAttachmentOptions): {
  state: AttachmentState;
  /** Fetch now (a click on a file card, or a retry). */
  load(): void;
} {
  const [state, setState] = useState<AttachmentState>({ phase: 'idle' });
  const [attempt, setAttempt] = useState(0);
  const id = att.id;
  const want = opts.auto || attempt > 0;
  const onBytes = useRef(opts.onBytes);
  onBytes.current = opts.onBytes;
  const unknownTries = useRef(0);
  // The id names immutable signed metadata; the window re-reads envelopes as new objects on every change,
  // which must not restart a fetch or swap the object URL.
  const meta = useRef(att.meta);
  meta.current = att.meta;

  useEffect(() => {
    if (!want) return;
    const ac = new AbortController();
    let url: string | null = null;
    let got = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    setState((s) => (s.phase === 'ready' ? s : { phase: 'fetching', progress: 0 }));
    const offProgress = client.on('attachmentProgress', (e) => {
      if (e.id === id && !got && e.totalBytes > 0) setState({ phase: 'fetching', progress: Math.min(1, e.receivedBytes / e.totalBytes) });
    });
    void client
      .fetchAttachment(id, { signal: ac.signal })
      .then((r) => {
        if (ac.signal.aborted) return;
        got = true;
        if (r.ok) {
          const view = opts.image ? contentView(meta.current, r.bytes) : { kind: 'file' as const };
          onBytes.current?.(r.bytes);
          if (view.kind === 'image') url = URL.createObjectURL(new Blob([r.bytes as Uint8Array<ArrayBuffer>], { type: view.mime }));
          setState({ phase: 'ready', url });
        } else if (r.reason === 'UNKNOWN' && unknownTries.current < UNKNOWN_RETRIES) {
          unknownTries.current++;
          retry = setTimeout(() => setAttempt((n) => n + 1), UNKNOWN_RETRY_MS);
        } else if (WAIT_REASONS.has(r.reason)) {
          setState({ phase: 'waiting' });
        } else if (r.reason !== 'ABORTED') {
          setState({ phase: 'failed', message: FAIL_TEXT[r.reason] ?? r.reason });
        }
      })
      .catch((err: unknown) => !ac.signal.aborted && setState({ phase: 'failed', message: String(err) }));
    return () => {
      ac.abort();
      clearTimeout(retry);
      offProgress();
      if (url) URL.revokeObjectURL(url);
    };
  }, [client, id, want, attempt, opts.image]);

  // Waiting: a peer that comes online, or the engine's background fetch, may bring it.
  const waiting = state.phase === 'waiting';
  useEffect(() => {
    if (!waiting) return;
    const start = otherPeers(client);
    const known = new Set(start.ids);
    const again = () => setAttempt((n) => n + 1);
    const offStored = client.on('attachmentStored', (e) => e.id === id && again());
    const offSnap = client.subscribe(() => {
      const now = otherPeers(client);
      if (now.links > start.links || now.ids.some((p) => !known.has(p))) again();
    });
    return () => {
      offStored();
      offSnap();
    };
  }, [waiting, client, id]);

  return { state, load: () => setAttempt((n) => n + 1) };
}
