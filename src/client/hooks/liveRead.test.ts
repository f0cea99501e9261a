import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { DexieStore } from '../../shared/store/DexieStore';
import { createFixtures } from '../../shared/store/testing/fixtures';
import { HistoryReader } from '../history/historyDb';
import { liveRead } from './liveRead';

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let t = Date.now(); !cond(); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() - t > 10_000) throw new Error(`timed out: ${what}`);
  }
};

it('UI1 a window live read re-reads after a write to its channel range, not after one elsewhere; reads never overlap; nothing after dispose', async () => {
  const fx = await createFixtures();
  const envs = await fx.envelopes(30);
  const other = await fx.envelopes(5, { channel: 'random' });
  const store = new DexieStore('peerchat-history');
  const reader = new HistoryReader('peerchat-history');
  await store.putMessages(envs.slice(0, 10));
  const channel = envs[0]!.post.channel;
  const values: number[] = [];
  let reads = 0;
  let inRead = 0;
  let overlapped = false;
  const off = liveRead(
    () => reader.windowSize(channel, ''),
    async () => {
      reads++;
      overlapped ||= inRead > 0;
      inRead++;
      try {
        return (await reader.fromNewest(channel, '', 1000)).length;
      } finally {
        inRead--;
      }
    },
    (n) => values.push(n),
    (err) => assert.fail(String(err)),
  );
  await until(() => values.at(-1) === 10, 'the first read');
  await store.putMessages(envs.slice(10, 20));
  await until(() => values.at(-1) === 20, 'a read after the write');
  const readsBefore = reads;
  await store.putMessages(other);
  // A write into the channel after it: whatever ran for the other channel, the window's reads saw 25.
  await store.putMessages(envs.slice(20, 25));
  await until(() => values.at(-1) === 25, 'a read after the second write');
  assert.ok(reads - readsBefore <= 2, `${reads - readsBefore} reads for one write to the channel (and one elsewhere)`);
  // Writes in quick succession: reads do not overlap, and the last one sees them all.
  await Promise.all([store.putMessages([envs[25]!]), store.putMessages([envs[26]!]), store.putMessages([envs[27]!])]);
  await until(() => values.at(-1) === 28, 'the last read sees every write');
  assert.equal(overlapped, false, 'reads never overlap');
  off();
  const after = reads;
  await store.putMessages(envs.slice(28));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(reads, after, 'nothing read after dispose');
  await store.close();
  reader.db.close();
});
