// SPEC.md R18: a burst of upgrades does not leave hundreds of idle HTTP parsers (~10 KiB each) behind.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { WebSocket } from 'ws';
import { boundHttpParserPool, httpParserPool } from './httpParserPool';
import { rawSocket, startTestRelay } from './testKit';

it('R18 after a burst of upgrades at most the bound of idle HTTP parsers is kept', async () => {
  const pool = httpParserPool();
  assert.ok(pool, 'this Node has no _http_common parser pool');
  const before = pool.max;
  const relay = await startTestRelay();
  const sockets: WebSocket[] = [];
  try {
    assert.equal(boundHttpParserPool(4), true);
    // 24 upgrades in flight at once: each holds a parser until its upgrade, then gives it back.
    sockets.push(...(await Promise.all(Array.from({ length: 24 }, () => rawSocket(relay)))));
    assert.ok(pool.list.length <= 4, `${pool.list.length} idle parsers kept`);
  } finally {
    for (const ws of sockets) ws.terminate();
    await relay.close();
    pool.max = before;
  }
});
