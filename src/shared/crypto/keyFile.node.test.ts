// SPEC.md VC6: identities kept in key files (relay local mode, virtual clients).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { toB64url } from '../encoding';
import { KeyFileError, loadOrCreateKeyFile } from './keyFile.node.js';

const root = mkdtempSync(join(tmpdir(), 'peerchat-keyfile-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('keyFile', () => {
  it('VC6 creates the key once (file 0600, directory 0700) and returns the same key after', () => {
    const path = join(root, 'a', 'b', 'virtual-1.key');
    const first = loadOrCreateKeyFile(path);
    assert.equal(first.created, true);
    assert.equal(first.secretKey.length, 32);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, 'a', 'b')).mode & 0o777, 0o700);
    const again = loadOrCreateKeyFile(path);
    assert.equal(again.created, false);
    assert.deepEqual(again.secretKey, first.secretKey);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).secretKey, toB64url(first.secretKey));
  });

  it('VC6 an unusable file is an error naming it, and is never overwritten', () => {
    const path = join(root, 'broken.key');
    for (const text of ['not json', '{}', '{"secretKey":"short"}']) {
      writeFileSync(path, text);
      assert.throws(
        () => loadOrCreateKeyFile(path),
        (e: unknown) => e instanceof KeyFileError && e.code === 'BAD_KEY_FILE' && e.message.startsWith(path),
      );
      assert.equal(readFileSync(path, 'utf8'), text);
    }
  });
});
