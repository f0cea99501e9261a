import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_FRAME_BYTES } from '../transport/PeerTransport';
import {
  ControlAssembler,
  PEER_LIMITS,
  PEER_PROTOCOL_VERSION,
  PeerKind,
  RangeMode,
  decodeChunk,
  decodeFrame,
  decodeHashes,
  decodeReconcile,
  encodeChunk,
  encodeControl,
  encodeFrame,
  encodeHashes,
  encodeReconcile,
  parseControl,
} from './peer';

const id = (n: number): Uint8Array => {
  const b = new Uint8Array(16);
  b[0] = 1;
  b[15] = n;
  return b;
};

describe('G3 peer frames', () => {
  it('G3 a frame carries version, kind and request id; another version is refused by name', () => {
    const f = encodeFrame(PeerKind.GET_MSGS, 77, new Uint8Array([1, 2, 3]));
    const d = decodeFrame(f);
    assert.ok(d.ok);
    assert.equal(d.frame.version, PEER_PROTOCOL_VERSION);
    assert.equal(d.frame.kind, PeerKind.GET_MSGS);
    assert.equal(d.frame.reqId, 77);
    assert.deepEqual([...d.frame.body], [1, 2, 3]);
    const other = f.slice();
    other[0] = PEER_PROTOCOL_VERSION + 1;
    assert.deepEqual(decodeFrame(other), { ok: false, reason: 'PROTOCOL_MISMATCH' });
    const unknownKind = f.slice();
    unknownKind[1] = 200;
    assert.deepEqual(decodeFrame(unknownKind), { ok: false, reason: 'BAD_FRAME' });
    assert.deepEqual(decodeFrame(new Uint8Array(3)), { ok: false, reason: 'BAD_FRAME' });
    assert.deepEqual(decodeFrame(new Uint8Array(MAX_FRAME_BYTES + 1)), { ok: false, reason: 'BAD_FRAME' });
  });

  it('G3 G11 a long control body is split into frames of at most MAX_FRAME_BYTES and reassembled', () => {
    const ids = Array.from({ length: 100 }, (_, i) => `01HZX3K8Q9ABCDEFGHJKMN${String(i).padStart(4, '0')}`);
    const frames = encodeControl(PeerKind.WANT, 5, { ids })!;
    assert.equal(frames.length, 1);
    // A body above one frame: a big NACK reason is capped by the schema, so use raw JSON over MSGS.
    const big = { envs: [], missing: [], last: true, pad: 'x'.repeat(150_000) } as never;
    const parts = encodeControl(PeerKind.MSGS, 9, big)!;
    assert.equal(parts.length, 3);
    for (const p of parts) assert.ok(p.length <= MAX_FRAME_BYTES);
    const asm = new ControlAssembler();
    let whole: Uint8Array | 'pending' | null = null;
    for (const p of parts) {
      const d = decodeFrame(p);
      assert.ok(d.ok);
      whole = asm.push(d.frame);
    }
    assert.ok(whole instanceof Uint8Array);
    assert.deepEqual(parseControl(PeerKind.MSGS, whole), { envs: [], missing: [], last: true });
  });

  it('G11 a control body above maxControlBodyBytes is not encoded, nor reassembled', () => {
    const huge = { envs: [], missing: [], last: true, pad: 'x'.repeat(PEER_LIMITS.maxControlBodyBytes) } as never;
    assert.equal(encodeControl(PeerKind.MSGS, 1, huge), null);
    const asm = new ControlAssembler();
    const piece = encodeFrame(PeerKind.MSGS, 1, new Uint8Array(60_000), true);
    let r: Uint8Array | 'pending' | null = 'pending';
    for (let i = 0; i < 6 && r === 'pending'; i++) r = asm.push((decodeFrame(piece) as { ok: true; frame: never }).frame);
    assert.equal(r, null);
  });

  it('G3 an interleaved piece of another request breaks reassembly', () => {
    const asm = new ControlAssembler();
    const a = decodeFrame(encodeFrame(PeerKind.MSGS, 1, new Uint8Array(10), true));
    const b = decodeFrame(encodeFrame(PeerKind.MSGS, 2, new Uint8Array(10)));
    assert.ok(a.ok && b.ok);
    assert.equal(asm.push(a.frame), 'pending');
    assert.equal(asm.push(b.frame), null);
  });

  it('G3 control bodies are checked against their schema', () => {
    const ok = encodeControl(PeerKind.GET_MSGS, 1, { ids: ['01HZX3K8Q9ABCDEFGHJKMNPQRS'] })![0]!;
    const d = decodeFrame(ok);
    assert.ok(d.ok);
    assert.ok(parseControl(PeerKind.GET_MSGS, d.frame.body));
    const tooMany = new TextEncoder().encode(JSON.stringify({ ids: Array(PEER_LIMITS.maxIdsPerRequest + 1).fill('01HZX3K8Q9ABCDEFGHJKMNPQRS') }));
    assert.equal(parseControl(PeerKind.GET_MSGS, tooMany), null);
    assert.equal(parseControl(PeerKind.GET_MSGS, new TextEncoder().encode('{"ids":["not-a-ulid"]}')), null);
    assert.equal(parseControl(PeerKind.GET_MSGS, new Uint8Array([0xff, 0xfe])), null);
  });

  it('G8 chunk and hash-list frames round-trip and fit in one frame', () => {
    const data = new Uint8Array(16 * 1024).fill(3);
    const f = encodeChunk(4, id(1), 7, data);
    assert.ok(f.length <= MAX_FRAME_BYTES);
    const d = decodeFrame(f);
    assert.ok(d.ok);
    const c = decodeChunk(d.frame.body)!;
    assert.equal(c.index, 7);
    assert.deepEqual(c.id, id(1));
    assert.equal(c.data.length, data.length);
    assert.equal(decodeChunk(new Uint8Array(16 + 4 + 16 * 1024 + 1)), null, 'a chunk above chunkBytes is refused');
    const hashes = new Uint8Array(32 * PEER_LIMITS.maxHashesPerFrame);
    const hf = encodeHashes(2, { id: id(2), from: 1024, total: 4096, hashes });
    assert.ok(hf.length <= MAX_FRAME_BYTES);
    const hd = decodeFrame(hf);
    assert.ok(hd.ok);
    const h = decodeHashes(hd.frame.body)!;
    assert.equal(h.from, 1024);
    assert.equal(h.total, 4096);
    assert.equal(decodeHashes(new Uint8Array(16 + 8 + 33)), null, 'a partial hash is refused');
  });
});

describe('G4 reconciliation messages', () => {
  it('G4 round-trips every range mode', () => {
    const msg = {
      lower: new Uint8Array([1]),
      ranges: [
        { mode: RangeMode.SKIP, upper: new Uint8Array([1, 0, 5]) },
        { mode: RangeMode.FINGERPRINT, upper: new Uint8Array([1, 0, 9]), fp: new Uint8Array(16).fill(9) },
        { mode: RangeMode.IDS, upper: new Uint8Array([1, 0, 0x20]), ids: [id(10), id(20)].map((k) => (k[2] = 0x10, k)) },
        { mode: RangeMode.MISSING, upper: null, ids: [] },
      ],
    } as const;
    const back = decodeReconcile(encodeReconcile(msg as never));
    assert.ok(back);
    assert.equal(back.ranges.length, 4);
    assert.deepEqual(back.ranges.map((r) => r.mode), [0, 1, 2, 3]);
    assert.equal(back.ranges[3]!.upper, null);
  });

  it('G4 G13 refuses unsorted or out-of-range ids and bounds that go backwards', () => {
    const unsorted = encodeReconcile({ lower: new Uint8Array(0), ranges: [{ mode: RangeMode.IDS, upper: null, ids: [id(5), id(3)] }] });
    assert.equal(decodeReconcile(unsorted), null);
    const dup = encodeReconcile({ lower: new Uint8Array(0), ranges: [{ mode: RangeMode.IDS, upper: null, ids: [id(5), id(5)] }] });
    assert.equal(decodeReconcile(dup), null);
    const outside = encodeReconcile({ lower: new Uint8Array(0), ranges: [{ mode: RangeMode.IDS, upper: id(4), ids: [id(5)] }] });
    assert.equal(decodeReconcile(outside), null);
    const backwards = encodeReconcile({
      lower: new Uint8Array(0),
      ranges: [
        { mode: RangeMode.SKIP, upper: id(9) },
        { mode: RangeMode.SKIP, upper: id(3) },
      ],
    });
    assert.equal(decodeReconcile(backwards), null);
    assert.equal(decodeReconcile(new Uint8Array([0, 0x81])), null, 'truncated fingerprint');
  });
});
