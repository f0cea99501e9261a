import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { HistoryReader } from '../history/historyDb';
import type { Envelope } from '../../shared/protocol/relay';
import { PAGE, prefetchFirstPage, takeFirstPage } from './useChannelWindow';

const page = (channel: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${channel}${i}`, post: { channel } }) as unknown as Envelope);

/** A reader whose `latest` answers when the test says so, and records what it was asked. */
function reader() {
  const asked: [string, number][] = [];
  let answer: (() => void) | null = null;
  const r = {
    latest(channel: string, limit: number) {
      asked.push([channel, limit]);
      return new Promise<Envelope[]>((resolve) => (answer = () => resolve(page(channel, 3))));
    },
  } as unknown as HistoryReader;
  return { r, asked, answer: () => answer!() };
}

it('UI13 boot page: the channel in the URL is read at boot (newest PAGE envelopes) and handed to its view once', async () => {
  const { r, asked, answer } = reader();
  const read = prefetchFirstPage('general', r);
  assert.deepEqual(asked, [['general', PAGE]]);
  answer();
  await read;
  assert.equal(takeFirstPage('random'), undefined, 'another channel gets nothing');
  assert.deepEqual(takeFirstPage('general')?.map((e) => e.id), ['general0', 'general1', 'general2']);
  // Taken once: a later visit to the channel reads afresh through its live query.
  assert.equal(takeFirstPage('general'), undefined);
});

it('UI13 boot page: an answer that comes after the view mounted is dropped, never shown on a later visit', async () => {
  const { r, answer } = reader();
  const read = prefetchFirstPage('general', r);
  assert.equal(takeFirstPage('general'), undefined, 'not read yet: the view reads for itself');
  answer();
  await read;
  assert.equal(takeFirstPage('general'), undefined);
});

it('UI13 boot page: a failed boot read leaves the view to its own read', async () => {
  const r = { latest: () => Promise.reject(new Error('IndexedDB unavailable')) } as unknown as HistoryReader;
  await prefetchFirstPage('general', r);
  assert.equal(takeFirstPage('general'), undefined);
});
