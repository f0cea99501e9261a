// SPEC.md R12: configuration and the relay key.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { toB64url } from '../shared/encoding';
import { ConfigError, loadConfig } from './config';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'peerchat-config-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('config', () => {
  it('R12 production without PEERCHAT_RELAY_KEY refuses to start, naming the variable', () => {
    const cwd = tmp();
    assert.throws(
      () => loadConfig({ PEERCHAT_ENV: 'production' }, cwd),
      (err: unknown) => err instanceof ConfigError && err.code === 'MISSING_RELAY_KEY' && /PEERCHAT_RELAY_KEY/.test(err.message),
    );
    assert.throws(() => loadConfig({ NODE_ENV: 'production' }, cwd), ConfigError);
    // Nothing was written: production never generates a key.
    assert.throws(() => statSync(join(cwd, '.data')));
  });

  it('R12 the entry point exits non-zero with a clear message in production without a key', () => {
    const main = fileURLToPath(new URL('./main.ts', import.meta.url));
    // tsx resolved from this repo: the child runs in an empty directory.
    const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), main], {
      cwd: tmp(),
      env: { PATH: process.env.PATH, PEERCHAT_ENV: 'production', PORT: '0' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /refusing to start: PEERCHAT_RELAY_KEY is required/);
  });

  it('R12 a malformed key is refused', () => {
    assert.throws(() => loadConfig({ PEERCHAT_RELAY_KEY: 'short' }, tmp()), (e: unknown) => e instanceof ConfigError && e.code === 'BAD_RELAY_KEY');
  });

  it('R12 local mode generates the key file once (mode 0600) and reuses it', () => {
    const cwd = tmp();
    const first = loadConfig({}, cwd);
    assert.match(first.keyNote, /^generated /);
    const path = join(cwd, '.data', 'relay-key.json');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const second = loadConfig({}, cwd);
    assert.match(second.keyNote, /^reused /);
    assert.deepEqual(second.config.secretKey, first.config.secretKey);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).secretKey, toB64url(first.config.secretKey));
    const elsewhere = loadConfig({ PEERCHAT_DATA_DIR: 'other' }, cwd);
    assert.notDeepEqual(elsewhere.config.secretKey, first.config.secretKey);
  });

  it('R12 env: key, name, channels, ICE servers, port; the JSON file sets limits; defaults otherwise', () => {
    const cwd = tmp();
    const key = toB64url(new Uint8Array(32).fill(9));
    const d = loadConfig({ PEERCHAT_RELAY_KEY: key, PEERCHAT_ENV: 'production', PEERCHAT_PUBLIC_ORIGIN: 'https://chat.example' }, cwd);
    assert.equal(d.config.mode, 'production');
    assert.equal(d.clientIpHeader, undefined);
    assert.deepEqual(d.config.channels.map((c) => c.id), ['general', 'random', 'media']);
    assert.deepEqual(d.config.iceServers, []);
    assert.equal(d.port, 8080);
    writeFileSync(join(cwd, 'peerchat.json'), JSON.stringify({ name: 'from-file', channels: ['a', { id: 'b', title: 'Bee' }], limits: { postsPerMinute: 7 } }));
    const c = loadConfig(
      {
        PEERCHAT_RELAY_KEY: key,
        PEERCHAT_CONFIG: 'peerchat.json',
        PEERCHAT_NAME: 'from-env',
        PEERCHAT_ICE_SERVERS: '[{"urls":"turn:turn.example.org","username":"u","credential":"p"}]',
        PORT: '9000',
      },
      cwd,
    );
    assert.equal(c.config.name, 'from-env');
    assert.deepEqual(c.config.channels, [{ id: 'a', title: 'a' }, { id: 'b', title: 'Bee' }]);
    assert.equal(c.config.limits.postsPerMinute, 7);
    assert.equal(c.config.iceServers[0]!.urls, 'turn:turn.example.org');
    assert.equal(c.port, 9000);
    const e = loadConfig({ PEERCHAT_RELAY_KEY: key, PEERCHAT_CHANNELS: 'x, y' }, cwd);
    assert.deepEqual(e.config.channels.map((ch) => ch.id), ['x', 'y']);
    assert.throws(() => loadConfig({ PEERCHAT_RELAY_KEY: key, PEERCHAT_CHANNELS: 'Bad Channel' }, cwd), ConfigError);
    assert.throws(() => loadConfig({ PEERCHAT_RELAY_KEY: key, PEERCHAT_ICE_SERVERS: 'nope' }, cwd), ConfigError);
  });

  it('R12 L9 production needs PEERCHAT_PUBLIC_ORIGIN; origins are normalized, anything but a bare origin is refused', () => {
    const cwd = tmp();
    const key = toB64url(new Uint8Array(32).fill(9));
    assert.throws(
      () => loadConfig({ PEERCHAT_RELAY_KEY: key, PEERCHAT_ENV: 'production' }, cwd),
      (e: unknown) => e instanceof ConfigError && e.code === 'MISSING_PUBLIC_ORIGIN' && /PEERCHAT_PUBLIC_ORIGIN/.test(e.message),
    );
    const c = loadConfig({ PEERCHAT_RELAY_KEY: key, PEERCHAT_ENV: 'production', PEERCHAT_PUBLIC_ORIGIN: 'https://Chat.Example:443, wss://chat.example:8443,https://chat.example' }, cwd);
    assert.deepEqual(c.config.publicOrigins, ['https://chat.example', 'https://chat.example:8443']);
    assert.deepEqual(loadConfig({ PEERCHAT_RELAY_KEY: key }, cwd).config.publicOrigins, [], 'local mode: none by default');
    for (const bad of ['chat.example', 'https://chat.example/app', 'ftp://chat.example', 'https://u:p@chat.example']) {
      assert.throws(
        () => loadConfig({ PEERCHAT_RELAY_KEY: key, PEERCHAT_PUBLIC_ORIGIN: bad }, cwd),
        (e: unknown) => e instanceof ConfigError && e.code === 'BAD_PUBLIC_ORIGIN',
        bad,
      );
    }
  });

  it('R11 R12 PEERCHAT_CLIENT_IP_HEADER is read; the shipped fly.toml sets it (fly-client-ip) and the public origin', () => {
    const key = toB64url(new Uint8Array(32).fill(9));
    assert.equal(loadConfig({ PEERCHAT_RELAY_KEY: key, PEERCHAT_CLIENT_IP_HEADER: 'Fly-Client-IP' }, tmp()).clientIpHeader, 'Fly-Client-IP');
    const toml = readFileSync(fileURLToPath(new URL('../../fly.toml', import.meta.url)), 'utf8');
    // The [env] table: from its header to the next table header.
    const env = /^\[env\]\s*$([\s\S]*?)(?=^\[)/m.exec(toml)?.[1] ?? '';
    // Basic strings ("...") and literal strings ('...', used for the JSON of the ICE servers).
    const vars = Object.fromEntries([...env.matchAll(/^\s*([A-Z_]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/gm)].map((m) => [m[1], m[2] ?? m[3]]));
    assert.equal(vars.PEERCHAT_CLIENT_IP_HEADER, 'fly-client-ip');
    const loaded = loadConfig({ ...vars, PEERCHAT_RELAY_KEY: key }, tmp());
    assert.equal(loaded.config.mode, 'production');
    assert.equal(loaded.clientIpHeader, 'fly-client-ip');
    assert.deepEqual(loaded.config.publicOrigins, ['https://peerchat-relay.fly.dev']);
    // The deploy file hands clients a STUN server (issue: peers behind home NATs); the code's default is none.
    assert.ok(loaded.config.iceServers.some((s) => [s.urls].flat().some((u) => u.startsWith('stun:'))), 'fly.toml names a STUN server');
    assert.deepEqual(loadConfig({ PEERCHAT_RELAY_KEY: key }, tmp()).config.iceServers, []);
  });

  it('A5 PEERCHAT_MAX_ATTACHMENT_BYTES sets the attachment cap (default 25 MiB); a bad value refuses to start, naming it', () => {
    const cwd = tmp();
    assert.equal(loadConfig({}, cwd).config.limits.maxAttachmentBytes, 25 * 1024 * 1024);
    assert.equal(loadConfig({ PEERCHAT_MAX_ATTACHMENT_BYTES: '1048576' }, cwd).config.limits.maxAttachmentBytes, 1_048_576);
    for (const bad of ['0', '-5', '1.5', 'lots', '25MB', String(64 * 1024 * 1024 + 1)]) {
      assert.throws(
        () => loadConfig({ PEERCHAT_MAX_ATTACHMENT_BYTES: bad }, cwd),
        (e: unknown) => e instanceof ConfigError && e.code === 'BAD_MAX_ATTACHMENT_BYTES' && /PEERCHAT_MAX_ATTACHMENT_BYTES/.test(e.message),
        bad,
      );
    }
    assert.equal(loadConfig({ PEERCHAT_MAX_ATTACHMENT_BYTES: String(64 * 1024 * 1024) }, cwd).config.limits.maxAttachmentBytes, 64 * 1024 * 1024);
  });
});
