import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toHex } from '../encoding';
import { PEER_LIMITS, RangeMode, decodeReconcile, encodeReconcile } from '../protocol/peer';
import { MAX_FRAME_BYTES } from '../transport/PeerTransport';
import { IdIndex } from './IdIndex';
import { type Prng, createPrng } from './prng';
import { initiateReconcile, reconcileStep } from './reconcile';

/** Monotonic-ULID-like ids: a 48-bit ms time, then 80 random bits (consecutive within one ms). */
function makeIds(rng: Prng, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let t = 1_700_000_000_000;
  for (let i = 0; i < n; i++) {
    t += rng.int(3);
    const b = new Uint8Array(16);
    let x = t;
    for (let j = 5; j >= 0; j--) {
      b[j] = x % 256;
      x = Math.floor(x / 256);
    }
    for (let j = 6; j < 16; j++) b[j] = rng.int(256);
    out.push(b);
  }
  return out;
}

/** Runs a whole session over the encoded wire form; returns what the initiator learned and the bytes. */
function session(a: IdIndex, b: IdIndex): { need: Set<string>; bytes: number; rounds: number; maxFrame: number } {
  const need = new Set<string>();
  let bytes = 0;
  let rounds = 0;
  let maxFrame = 0;
  let msg = initiateReconcile(a);
  for (;;) {
    rounds++;
    assert.ok(rounds <= PEER_LIMITS.maxReconcileRounds, 'converges within the round bound');
    const out = encodeReconcile(msg);
    bytes += out.length + PEER_LIMITS.headerBytes;
    maxFrame = Math.max(maxFrame, out.length + PEER_LIMITS.headerBytes);
    const reply = reconcileStep(b, decodeReconcile(out)!, 'responder').reply!;
    const back = encodeReconcile(reply);
    bytes += back.length + PEER_LIMITS.headerBytes;
    maxFrame = Math.max(maxFrame, back.length + PEER_LIMITS.headerBytes);
    const step = reconcileStep(a, decodeReconcile(back)!, 'initiator');
    for (const id of step.need) need.add(toHex(id));
    if (!step.reply) return { need, bytes, rounds, maxFrame };
    msg = step.reply;
  }
}

function pair(seed: number, n: number, onlyA: number, onlyB: number) {
  const rng = createPrng(seed);
  const ids = makeIds(rng, n + onlyA + onlyB);
  const order = rng.shuffle(ids.map((_, i) => i));
  const aOnly = new Set(order.slice(0, onlyA));
  const bOnly = new Set(order.slice(onlyA, onlyA + onlyB));
  const a = new IdIndex();
  const b = new IdIndex();
  const expected = new Set<string>();
  ids.forEach((id, i) => {
    if (!bOnly.has(i)) a.add(id);
    if (!aOnly.has(i)) b.add(id);
    if (bOnly.has(i)) expected.add(toHex(id));
  });
  return { a, b, expected };
}

describe('G4 range-based set reconciliation', () => {
  for (const [seed, n, onlyA, onlyB] of [
    [1, 0, 0, 0],
    [2, 0, 0, 40],
    [3, 50, 0, 0],
    [4, 1000, 1, 0],
    [5, 1000, 0, 1],
    [6, 5000, 30, 30],
    [7, 5000, 0, 2000],
    [8, 20_000, 200, 5],
    [9, 3000, 3000, 3000],
  ] as const) {
    it(`G4 the initiator learns exactly the ids it lacks (seed ${seed}: n=${n}, +${onlyA}/-${onlyB})`, () => {
      const { a, b, expected } = pair(seed, n, onlyA, onlyB);
      const r = session(a, b);
      assert.deepEqual([...r.need].sort(), [...expected].sort());
      assert.ok(r.maxFrame <= MAX_FRAME_BYTES, `every message fits a frame (${r.maxFrame})`);
    });
  }

  it('G4 equal sets cost one small round trip', () => {
    const { a, b } = pair(11, 10_000, 0, 0);
    const r = session(a, b);
    assert.equal(r.rounds, 1);
    assert.ok(r.bytes < 100, `${r.bytes} bytes`);
  });

  it('G4 d differences among n ids cost O(d log n) bytes, not O(n)', () => {
    for (const [n, d] of [
      [10_000, 1],
      [10_000, 10],
      [10_000, 100],
      [100_000, 10],
    ] as const) {
      const { a, b } = pair(20 + d, n, 0, d);
      const r = session(a, b);
      // ~1 KiB per scattered difference per 16-way level; a full id list would be 16 bytes x n.
      const bound = 1024 * d * Math.ceil(Math.log(n) / Math.log(16));
      assert.ok(r.bytes <= bound, `n=${n} d=${d}: ${r.bytes} bytes > ${bound}`);
    }
    // Sixteen times the ids, same d: the cost grows with log n (one more level), not with n.
    const small = session(...(Object.values(pair(40, 10_000, 0, 10)).slice(0, 2) as [IdIndex, IdIndex])).bytes;
    const large = session(...(Object.values(pair(40, 160_000, 0, 10)).slice(0, 2) as [IdIndex, IdIndex])).bytes;
    assert.ok(large < small * 1.8, `n x16: ${small} -> ${large} bytes`);
  });

  it('G4 a gap at the newest end (a late joiner) costs about its id list', () => {
    const rng = createPrng(30);
    const ids = makeIds(rng, 2000);
    const a = new IdIndex();
    const b = new IdIndex();
    ids.forEach((id, i) => {
      b.add(id);
      if (i < 1800) a.add(id);
    });
    const r = session(a, b);
    assert.equal(r.need.size, 200);
    assert.ok(r.bytes < 200 * 16 + 2048, `${r.bytes} bytes`);
  });

  it('G4 fingerprints do not collide on consecutive ids minted in one millisecond', () => {
    const base = new Uint8Array(16).fill(1);
    const at = (n: number): Uint8Array => {
      const b = base.slice();
      b[15] = n;
      return b;
    };
    const a = new IdIndex();
    const b = new IdIndex();
    // {x, x+3} and {x+1, x+2} have equal plain sums; hashed elements tell them apart.
    a.add(at(10));
    a.add(at(13));
    b.add(at(11));
    b.add(at(12));
    assert.notDeepEqual(a.fingerprint(0, 2), b.fingerprint(0, 2));
  });

  it('G4 G11 an empty id list over 100k ids is counted, not copied: the responder splits, the initiator lists nothing', () => {
    const rng = createPrng(50);
    const index = new IdIndex();
    for (const id of makeIds(rng, 100_000)) index.add(id);
    const bomb = { lower: new Uint8Array(0), ranges: [{ mode: RangeMode.IDS, upper: null, ids: [] as Uint8Array[] }] };
    const before = index.scanned;
    const step = reconcileStep(index, bomb, 'responder');
    // One pass of the index into 16 bucket fingerprints, no id listed.
    assert.deepEqual(step.reply!.ranges.map((r) => r.mode), Array(16).fill(RangeMode.FINGERPRINT));
    assert.ok(index.scanned - before <= index.size, `${index.scanned - before} ids summed`);
    // The same message from a responder: the initiator pulls only, so it has nothing to list back.
    const back = reconcileStep(index, bomb, 'initiator');
    assert.equal(back.need.length, 0);
    assert.equal(back.reply, null);
  });
});
