// Range-based set reconciliation over ULID order (Meyer's RBSR, as in negentropy), SPEC.md G4.
// Pure: an index and a message in, a reply and the ids learned out. Two peers whose sets differ in d of
// n ids exchange O(d log n) bytes: equal ranges collapse to a 16-byte fingerprint, unequal ones split
// into BUCKETS sub-ranges until they are small enough to list.
import { bytesEqual } from '../encoding';
import {
  type Bound,
  PEER_LIMITS,
  RangeMode,
  type ReconcileMessage,
  type ReconcileRange,
  compareBounds,
  rangeBytes,
} from '../protocol/peer';
import type { IdIndex } from './IdIndex';

/** Sub-ranges an unequal range splits into. */
export const BUCKETS = 16;
/** A range holding at most this many ids is sent as an id list instead of being split further. */
export const ID_LIST_THRESHOLD = 2 * BUCKETS;

export type ReconcileRole = 'initiator' | 'responder';

export interface ReconcileStep {
  /** The message to send back. null: the initiator has nothing left to ask (the session is over). */
  reply: ReconcileMessage | null;
  /** Ids the other side holds and this side lacks (initiator only). */
  need: Uint8Array[];
}

/**
 * The first message of a session over [lower, +infinity): one fingerprint (the common case, peers in
 * sync, ends in one small round trip) or the id list when there are few.
 */
export function initiateReconcile(index: IdIndex, lower: Uint8Array = new Uint8Array(0)): ReconcileMessage {
  const lo = index.lowerBound(lower);
  const hi = index.size;
  if (hi - lo <= ID_LIST_THRESHOLD) return { lower, ranges: [{ mode: RangeMode.IDS, upper: null, ids: index.keysIn(lo, hi) }] };
  return { lower, ranges: [{ mode: RangeMode.FINGERPRINT, upper: null, fp: index.fingerprint(lo, hi) }] };
}

/**
 * Processes one message from the other side. The reply stays under `budget` bytes: when it would not,
 * the rest of the id space is sent as one fingerprint and handled in the next round (negentropy's frame
 * size limit), so every message makes progress and no frame exceeds MAX_FRAME_BYTES.
 */
export function reconcileStep(
  index: IdIndex,
  msg: ReconcileMessage,
  role: ReconcileRole,
  budget: number = PEER_LIMITS.reconcileBudgetBytes,
): ReconcileStep {
  const out: ReconcileRange[] = [];
  const need: Uint8Array[] = [];
  // Room kept for the closing fingerprint range after a cut.
  const closing = 1 + 16;
  let size = 1 + msg.lower.length;
  let prev: Bound = msg.lower;
  let processed = 0;

  for (const r of msg.ranges) {
    const lo = index.lowerBound(prev);
    const hi = index.lowerBound(r.upper);
    let produced: ReconcileRange[];
    const localNeed: Uint8Array[] = [];
    if (r.mode === RangeMode.SKIP) {
      produced = [{ mode: RangeMode.SKIP, upper: r.upper }];
    } else if (r.mode === RangeMode.FINGERPRINT) {
      produced = bytesEqual(index.fingerprint(lo, hi), r.fp)
        ? [{ mode: RangeMode.SKIP, upper: r.upper }]
        : split(index, lo, hi, r.upper, false);
    } else if (r.mode === RangeMode.MISSING) {
      // Only a responder sends MISSING; a responder receiving one is talking to a confused peer.
      if (role === 'initiator') {
        for (const id of r.ids) if (!index.has(id)) localNeed.push(id);
      }
      produced = [{ mode: RangeMode.SKIP, upper: r.upper }];
    } else if (role === 'initiator') {
      // Pull only: what they list and this side lacks. What this side holds beyond their list is theirs
      // to ask for, so it is never listed here (an empty list over a large range costs nothing).
      for (const id of r.ids) if (!has(index, lo, hi, id)) localNeed.push(id);
      produced = [{ mode: RangeMode.SKIP, upper: r.upper }];
    } else {
      // The responder answers an id list with the ids the initiator did not list; when those are too
      // many for one range, it splits instead and the initiator (whose side was small) lists per bucket.
      // Counted before anything is copied: an empty list over a range of 100k ids must cost a count, not
      // 100k copies (G11).
      let listed = 0;
      for (const id of r.ids) if (has(index, lo, hi, id)) listed++;
      const lacking = hi - lo - listed;
      produced =
        lacking === 0
          ? [{ mode: RangeMode.SKIP, upper: r.upper }]
          : lacking <= PEER_LIMITS.maxReconcileIds
            ? [{ mode: RangeMode.MISSING, upper: r.upper, ids: notListed(index, lo, hi, r.ids) }]
            : split(index, lo, hi, r.upper, true);
    }
    let cost = 0;
    for (const p of produced) cost += rangeBytes(p);
    if (processed > 0 && size + cost + closing > budget) {
      out.push({ mode: RangeMode.FINGERPRINT, upper: null, fp: index.fingerprint(lo, index.size) });
      break;
    }
    for (const p of produced) {
      const last = out[out.length - 1];
      if (p.mode === RangeMode.SKIP && last?.mode === RangeMode.SKIP) last.upper = p.upper;
      else out.push(p);
    }
    need.push(...localNeed);
    size += cost;
    processed++;
    prev = r.upper;
  }

  // Everything above the last range is implicitly done, so trailing skips need not travel.
  while (out.length > 0 && out[out.length - 1]!.mode === RangeMode.SKIP) out.pop();
  if (out.length === 0 && role === 'initiator') return { reply: null, need };
  return { reply: { lower: msg.lower, ranges: out }, need };
}

function split(index: IdIndex, lo: number, hi: number, upper: Bound, forceBuckets: boolean): ReconcileRange[] {
  const n = hi - lo;
  if (n <= ID_LIST_THRESHOLD && !forceBuckets) return [{ mode: RangeMode.IDS, upper, ids: index.keysIn(lo, hi) }];
  const out: ReconcileRange[] = [];
  const per = Math.floor(n / BUCKETS);
  const extra = n % BUCKETS;
  let cursor = lo;
  for (let i = 0; i < BUCKETS; i++) {
    const end = cursor + per + (i < extra ? 1 : 0);
    const bucketUpper = i === BUCKETS - 1 ? upper : separator(index.key(end - 1), index.key(end));
    out.push({ mode: RangeMode.FINGERPRINT, upper: bucketUpper, fp: index.fingerprint(cursor, end).slice() });
    cursor = end;
  }
  return out;
}

/** The shortest prefix of b that is greater than a (a < b): a split point between neighbours. */
function separator(a: Uint8Array, b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && a[i] === b[i]) i++;
  return b.slice(0, i + 1);
}

/** Whether the index holds `id` at a position in [lo, hi) (ids of a range fall inside it, G4 decoding). */
function has(index: IdIndex, lo: number, hi: number, id: Uint8Array): boolean {
  const at = index.lowerBound(id);
  return at >= lo && at < hi && compareBounds(index.key(at), id) === 0;
}

/** Copies of the ids the index holds in [lo, hi) that `theirs` (sorted) does not list. */
function notListed(index: IdIndex, lo: number, hi: number, theirs: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let j = 0;
  for (let i = lo; i < hi; i++) {
    const key = index.key(i);
    while (j < theirs.length && compareBounds(theirs[j]!, key) < 0) j++;
    if (j < theirs.length && compareBounds(theirs[j]!, key) === 0) j++;
    else out.push(key.slice());
  }
  return out;
}
