// Turns a window of envelopes (plus own posts still in flight) into the rows the virtualized list shows:
// day separators, the "new" divider, and author groups. Pure, so the rules are unit-tested without a DOM.
import type { Envelope, SignedAttachment } from '../../shared/protocol/relay';

/** Consecutive messages of one author within this gap share one header (Discord uses ~7 min). */
export const GROUP_GAP_MS = 7 * 60_000;

export interface OutgoingPost {
  clientId: string;
  channel: string;
  text: string;
  replyTo: string | null;
  /** Local time the user pressed Enter. */
  createdAt: number;
  state: 'sending' | 'failed';
  /** Stable reason code when failed (e.g. RATE_LIMITED, TOO_LARGE). */
  reason?: string;
  /** Minted and stored before posting: shown from their signed metadata while the post is in flight. */
  attachments?: readonly SignedAttachment[];
}

/**
 * A day separator is drawn at the top of the first message of a day, not as a row of its own: a row's key
 * must name one place in the history, and a "day" row would move when older messages of that day are
 * prepended, dragging the scroll anchor with it.
 */
export type Row =
  | { kind: 'new'; key: 'new' }
  | { kind: 'msg'; key: string; env: Envelope; head: boolean; day?: string }
  | { kind: 'out'; key: string; post: OutgoingPost; head: boolean; day?: string }
  | { kind: 'gap'; key: string; missing: number | null };

export function dayKey(ts: number): string {
  const d = new Date(ts);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** Made once: toLocaleDateString builds a new Intl formatter per call. */
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });

export function dayLabel(ts: number, now: number): string {
  const k = dayKey(ts);
  if (k === dayKey(now)) return 'Today';
  if (k === dayKey(now - 86_400_000)) return 'Yesterday';
  return dayFormat.format(ts);
}

export interface BuildRowsInput {
  envelopes: readonly Envelope[];
  outgoing: readonly OutgoingPost[];
  /** Envelopes with an id above this are unread: the divider goes above the first of them. '' = none read. */
  dividerAfterId: string | null;
  self: string;
  now: number;
  /** Ids (of envelopes in the window) whose `prev` link points at an envelope nobody could supply. */
  gapsBefore?: ReadonlySet<string>;
  /**
   * Older envelopes may exist above the window. Then the first row gets no day separator: whether it
   * starts its day is unknown, and adding one after a prepend would shift the row under the reader.
   */
  hasOlder?: boolean;
}

export function buildRows(input: BuildRowsInput): Row[] {
  const rows: Row[] = [];
  let lastDay = input.hasOlder && input.envelopes[0] ? dayKey(input.envelopes[0].ts) : '';
  let lastAuthor = '';
  let lastTs = 0;
  let dividerPlaced = input.dividerAfterId === null;
  const push = (author: string, ts: number, make: (head: boolean, day: string | undefined) => Row) => {
    const k = dayKey(ts);
    let day: string | undefined;
    if (k !== lastDay) {
      day = dayLabel(ts, input.now);
      lastDay = k;
      lastAuthor = '';
    }
    const head = author !== lastAuthor || ts - lastTs > GROUP_GAP_MS;
    rows.push(make(head, day));
    lastAuthor = author;
    lastTs = ts;
  };
  for (const env of input.envelopes) {
    if (input.gapsBefore?.has(env.id)) {
      rows.push({ kind: 'gap', key: `gap:${env.id}`, missing: null });
      lastAuthor = '';
    }
    if (!dividerPlaced && env.id > input.dividerAfterId! && env.post.author !== input.self) {
      rows.push({ kind: 'new', key: 'new' });
      dividerPlaced = true;
      lastAuthor = '';
    }
    push(env.post.author, env.ts, (head, day) => ({ kind: 'msg', key: env.id, env, head, ...(day ? { day } : {}) }));
  }
  for (const post of input.outgoing) {
    push(input.self, post.createdAt, (head, day) => ({ kind: 'out', key: `out:${post.clientId}`, post, head, ...(day ? { day } : {}) }));
  }
  return rows;
}
