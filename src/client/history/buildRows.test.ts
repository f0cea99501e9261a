import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Envelope } from '../../shared/protocol/relay';
import { GROUP_GAP_MS, buildRows } from './buildRows';

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
let seq = 0;
function env(author: string, ts: number): Envelope {
  const id = `01J${String(seq++).padStart(23, '0')}`;
  return {
    id, ts, epoch: id, prev: null, relay: 'r',
    rsig: 's',
    post: { channel: 'general', clientId: `c${id}`, text: 'hi', attachments: [], replyTo: null, author, relay: 'r', sentAt: ts, sig: 's' },
  } as Envelope;
}

test('UI rows: one day separator per day, authors grouped within the gap, a new author starts a group', () => {
  const a1 = env('alice', T0);
  const a2 = env('alice', T0 + 1000);
  const b1 = env('bob', T0 + 2000);
  const a3 = env('alice', T0 + 2000 + GROUP_GAP_MS + 1);
  const a4 = env('alice', T0 + 86_400_000);
  const rows = buildRows({ envelopes: [a1, a2, b1, a3, a4], outgoing: [], dividerAfterId: null, self: 'me', now: T0 });
  assert.deepEqual(
    rows.map((r) => (r.kind === 'msg' ? `${r.day ? 'day|' : ''}${r.env.post.author}${r.head ? '*' : ''}` : r.kind)),
    ['day|alice*', 'alice', 'bob*', 'alice*', 'day|alice*'],
  );
});

test('UI rows: the "new" divider sits above the first unread message of someone else, once', () => {
  const a1 = env('alice', T0);
  const mine = env('me', T0 + 1);
  const a2 = env('alice', T0 + 2);
  const a3 = env('alice', T0 + 3);
  const rows = buildRows({ envelopes: [a1, mine, a2, a3], outgoing: [], dividerAfterId: a1.id, self: 'me', now: T0 });
  const kinds = rows.map((r) => (r.kind === 'msg' ? r.env.id : r.kind));
  assert.deepEqual(kinds, [a1.id, mine.id, 'new', a2.id, a3.id]);
});

test('UI rows: own posts in flight come last; a gap row marks a hole in the prev chain', () => {
  const a1 = env('alice', T0);
  const a2 = env('alice', T0 + 5);
  const rows = buildRows({
    envelopes: [a1, a2],
    outgoing: [{ clientId: 'x1234567', channel: 'general', text: 'yo', replyTo: null, createdAt: T0 + 9, state: 'sending' }],
    dividerAfterId: null, self: 'me', now: T0, gapsBefore: new Set([a2.id]),
  });
  assert.deepEqual(rows.map((r) => r.kind), ['msg', 'gap', 'msg', 'out']);
});
