import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { sha256B64 } from '../crypto/hash';
import type { SignedAttachment } from '../protocol/relay';
import { chunkHashes } from '../protocol/signed';
import { Download } from './Download';
import { ManualClock } from './testing/ManualClock';
import { type SyncFixtures, content, createSyncFixtures } from './testing/fixtures';

const CHUNK = 16 * 1024;
let fx: SyncFixtures;
before(async () => {
  fx = await createSyncFixtures(() => new ManualClock().now());
});

const chunk = (data: Uint8Array, i: number): Uint8Array => data.subarray(i * CHUNK, (i + 1) * CHUNK);

describe('G8 verified chunked transfer state', () => {
  let data: Uint8Array;
  let meta: SignedAttachment;
  before(async () => {
    data = content(5 * CHUNK + 100, 3);
    meta = await fx.attachment(data);
  });

  it('G8 a hash list that matches chunkRoot, then verified chunks, assemble to content matching sha256', () => {
    const dl = new Download(meta);
    assert.equal(dl.chunkCount, 6);
    assert.deepEqual(dl.takeChunks(4), [], 'no chunk is asked before the hash list is verified');
    assert.deepEqual(dl.acceptHashPage(0, 6, chunkHashes(data)), { ok: true });
    assert.ok(dl.hasHashes);
    const asked = dl.takeChunks(16);
    assert.deepEqual(asked, [0, 1, 2, 3, 4, 5]);
    for (const i of asked.reverse()) assert.deepEqual(dl.acceptChunk(i, chunk(data, i)), { ok: true });
    assert.ok(dl.done);
    const whole = dl.assemble();
    assert.ok(whole.ok);
    assert.equal(sha256B64(whole.bytes), meta.meta.sha256);
  });

  it('G8 G13 a bogus chunk count or a hash list that misses chunkRoot is refused', () => {
    const dl = new Download(meta);
    assert.deepEqual(dl.acceptHashPage(0, 7, chunkHashes(data)), { ok: false, reason: 'BAD_CHUNK_COUNT' });
    const wrong = chunkHashes(data);
    wrong[40]! ^= 1;
    assert.deepEqual(dl.acceptHashPage(0, 6, wrong), { ok: false, reason: 'WRONG_DIGEST' });
    assert.ok(!dl.hasHashes);
    assert.deepEqual(dl.acceptHashPage(2, 6, chunkHashes(data).subarray(64)), { ok: false, reason: 'BAD_FRAME' }, 'pages come in order');
    assert.deepEqual(dl.acceptHashPage(0, 6, chunkHashes(data)), { ok: true }, 'an honest list still works after');
  });

  it('G8 a bad chunk is caught on arrival; verified chunks survive a change of source', () => {
    const dl = new Download(meta);
    dl.acceptHashPage(0, 6, chunkHashes(data));
    const first = dl.takeChunks(3);
    assert.deepEqual(dl.acceptChunk(0, chunk(data, 0)), { ok: true });
    assert.deepEqual(dl.acceptChunk(1, chunk(data, 1)), { ok: true });
    const bad = chunk(data, 2).slice();
    bad[5]! ^= 0xff;
    assert.deepEqual(dl.acceptChunk(2, bad), { ok: false, reason: 'WRONG_DIGEST' });
    assert.deepEqual(dl.acceptChunk(3, chunk(data, 3)), { ok: false, reason: 'UNSOLICITED' }, 'not asked yet');
    assert.deepEqual(first, [0, 1, 2]);
    // The liar is dropped: its outstanding chunk goes back, the next source resumes at chunk 2.
    dl.releaseInFlight();
    assert.equal(dl.receivedBytes, 2 * CHUNK);
    assert.deepEqual(dl.takeChunks(16), [2, 3, 4, 5]);
    for (const i of [2, 3, 4, 5]) assert.deepEqual(dl.acceptChunk(i, chunk(data, i)), { ok: true });
    assert.ok(dl.assemble().ok);
  });

  it('G13 a chunk sent twice is a replay', () => {
    const dl = new Download(meta);
    dl.acceptHashPage(0, 6, chunkHashes(data));
    dl.takeChunks(1);
    assert.deepEqual(dl.acceptChunk(0, chunk(data, 0)), { ok: true });
    assert.deepEqual(dl.acceptChunk(0, chunk(data, 0)), { ok: false, reason: 'UNSOLICITED' });
  });

  it('G8 metadata whose sha256 disagrees with its chunkRoot never assembles', async () => {
    const liedMeta = await fx.attachment(data, { lieSha256: true });
    const dl = new Download(liedMeta);
    dl.acceptHashPage(0, 6, chunkHashes(data));
    for (const i of dl.takeChunks(16)) dl.acceptChunk(i, chunk(data, i));
    assert.ok(dl.done);
    assert.deepEqual(dl.assemble(), { ok: false, reason: 'WRONG_DIGEST' });
  });

  it('G8 empty content is one empty chunk', async () => {
    const empty = new Uint8Array(0);
    const dl = new Download(await fx.attachment(empty));
    assert.equal(dl.chunkCount, 1);
    assert.deepEqual(dl.acceptHashPage(0, 1, chunkHashes(empty)), { ok: true });
    assert.deepEqual(dl.takeChunks(4), [0]);
    assert.deepEqual(dl.acceptChunk(0, empty), { ok: true });
    assert.ok(dl.assemble().ok);
  });
});

describe('G8 a download that restarts on a link', () => {
  it('G8 G13 takeChunks leaves out what may not be asked again where the caller asks; the verified list is exposed', async () => {
    const data = content(4 * CHUNK, 5);
    const meta = await fx.attachment(data);
    const dl = new Download(meta);
    assert.equal(dl.hashes, null);
    assert.deepEqual(dl.acceptHashPage(0, 4, chunkHashes(data)), { ok: true });
    assert.deepEqual(dl.hashes, chunkHashes(data));
    assert.deepEqual(dl.takeChunks(4, (i) => i === 0 || i === 2), [1, 3]);
    assert.equal(dl.chunksMissing, 2, 'skipped chunks stay missing, not in flight');
    assert.deepEqual(dl.takeChunks(4), [0, 2]);
    assert.equal(dl.chunksMissing, 0);
  });
});
