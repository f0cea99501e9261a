import assert from 'node:assert/strict';
import { it } from 'node:test';
import { historyPlaced, markHistoryPlaced } from './historyPlaced';

it('UI1 the client core waits for the history to be placed, or for maxMs when there is none to place', async () => {
  // Nothing placed yet: the bound lets the client start anyway.
  let done = false;
  const waited = historyPlaced(30).then(() => (done = true));
  assert.equal(done, false);
  await waited;
  // Placed: every wait, earlier or later, ends at once (the long bound is never reached).
  const long = historyPlaced(600_000);
  markHistoryPlaced();
  await long;
  await historyPlaced(600_000);
  markHistoryPlaced(); // a second placement (another channel) changes nothing
});
