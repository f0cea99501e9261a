// SPEC.md R13-R14: health, metrics, relay info, the web app, upgrade routing and graceful shutdown.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { CloseCode, type ServerInfo, zServerInfo } from '../shared/protocol/relay';
import type { Relay } from './createRelay';
import { closed, collectEvents, eventually, identity, loggedIn, login, makePost, rawClient, refusal, startTestRelay } from './testKit';

let relay: Relay;
let dir: string;

/** A raw GET, so paths reach the server exactly as written (fetch would normalize `..`). */
function rawGet(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'peerchat-static-'));
  mkdirSync(join(dir, 'client', 'assets'), { recursive: true });
  writeFileSync(join(dir, 'client', 'index.html'), '<!doctype html><div id="root"></div>');
  writeFileSync(join(dir, 'client', 'assets', 'app-abc123.js'), 'console.log(1)');
  writeFileSync(join(dir, 'client', 'assets', 'style.css'), 'body{}');
  writeFileSync(join(dir, 'secret.txt'), 'outside the web root');
  relay = await startTestRelay({ staticDir: join(dir, 'client'), name: 'ops-test' });
});
after(async () => {
  await relay.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('operations', () => {
  it('R13 GET /healthz answers 200 JSON with live counts', async () => {
    const r = await fetch(`${relay.url}/healthz`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /application\/json/);
    const body = await r.json();
    assert.equal(body.ok, true);
    assert.equal(typeof body.connections, 'number');
  });

  it('R13 GET /.well-known/peerchat.json is the ServerInfo, readable from any origin', async () => {
    const r = await fetch(`${relay.url}/.well-known/peerchat.json`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    const info = zServerInfo.parse(await r.json()) as ServerInfo;
    assert.deepEqual(info, relay.info);
    assert.equal(info.name, 'ops-test');
    assert.deepEqual(info.iceServers, []);
    const pre = await fetch(`${relay.url}/.well-known/peerchat.json`, { method: 'OPTIONS' });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
  });

  it('R13 GET /metrics exposes connections, online users by kind, relayed messages, presence events and turns, bytes per family, rejections', async () => {
    const a = await loggedIn(relay, { kind: 'browser' });
    const b = await loggedIn(relay, { kind: 'virtual' });
    const events = collectEvents(b.client, { presence: false });
    const watcher = collectEvents(a.client, { presence: true });
    await watcher.until(() => watcher.events.some((e) => e.t === 'presence' && e.op === 'snapshot'));
    const env = await a.client.chat.post.mutate(await makePost(a.id));
    await events.until(() => events.envelopes.some((e) => e.id === env.id));
    await refusal(a.client.chat.post.mutate({ ...(await makePost(a.id)), text: 'tampered' }));
    const r = await fetch(`${relay.url}/metrics`);
    assert.match(r.headers.get('content-type')!, /text\/plain/);
    const text = await r.text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    assert.equal(value(/^peerchat_connections (\d+)$/m), 2);
    assert.equal(value(/^peerchat_online_users\{kind="browser"\} (\d+)$/m), 1);
    assert.equal(value(/^peerchat_online_users\{kind="virtual"\} (\d+)$/m), 1);
    assert.ok(value(/^peerchat_messages_relayed_total (\d+)$/m) >= 1);
    assert.ok(value(/^peerchat_bytes_in_total\{family="chat"\} (\d+)$/m) > 0);
    assert.ok(value(/^peerchat_bytes_in_total\{family="auth"\} (\d+)$/m) > 0);
    assert.ok(value(/^peerchat_bytes_out_total\{family="events"\} (\d+)$/m) > 0);
    assert.ok(value(/^peerchat_bytes_out_total\{family="chat"\} (\d+)$/m) > 0);
    assert.equal(value(/^peerchat_rejections_total\{reason="BAD_SIGNATURE"\} (\d+)$/m), 1);
    assert.ok(value(/^peerchat_presence_events_total (\d+)$/m) >= 1, 'the snapshot');
    assert.ok(value(/^peerchat_presence_flushes_total (\d+)$/m) >= 1);
    watcher.stop();
    events.stop();
    await a.close();
    await b.close();
  });

  it('R13 serves the web app with content types; / is index.html; no way out of the web root', async () => {
    const index = await rawGet(relay.port, '/');
    assert.equal(index.status, 200);
    assert.match(index.type, /text\/html/);
    assert.match(index.body, /<div id="root">/);
    const js = await rawGet(relay.port, '/assets/app-abc123.js');
    assert.equal(js.status, 200);
    assert.match(js.type, /text\/javascript/);
    assert.match((await rawGet(relay.port, '/assets/style.css')).type, /text\/css/);
    assert.equal((await rawGet(relay.port, '/assets/missing.js')).status, 404);
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/..%5csecret.txt', '/%00']) {
      const r = await rawGet(relay.port, path);
      assert.ok(r.status === 400 || r.status === 404, `${path} -> ${r.status}`);
      assert.doesNotMatch(r.body, /outside the web root/);
    }
  });

  it('R13 without a built web app, / is a placeholder page', async () => {
    const bare = await startTestRelay({ staticDir: join(dir, 'does-not-exist') });
    try {
      const r = await rawGet(bare.port, '/');
      assert.equal(r.status, 200);
      assert.match(r.body, /peerchat relay is running/);
    } finally {
      await bare.close();
    }
  });

  it('R1 WebSocket upgrades: /trpc is tRPC, registered routes go to their handler, anything else is 404', async () => {
    const seen: string[] = [];
    relay.addUpgradeRoute('/peerjs', (req, socket) => {
      seen.push(req.url!);
      socket.end('HTTP/1.1 418 Teapot\r\nConnection: close\r\n\r\n');
    });
    const status = (path: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${relay.port}${path}`);
        ws.on('unexpected-response', (req, res) => {
          resolve(res.statusCode!);
          req.destroy(); // with this listener, ws leaves the HTTP request to us
        });
        ws.on('error', () => {});
      });
    assert.equal(await status('/nowhere'), 404);
    assert.equal(await status('/peerjs?key=peerchat&id=x&token=y'), 418);
    assert.deepEqual(seen, ['/peerjs?key=peerchat&id=x&token=y']);
  });

  it('R14 graceful shutdown sends bye on every events stream and closes sockets with 1012', async () => {
    const r = await startTestRelay({ timing: { shutdownRetryAfterMs: 1234 } });
    let raw: WebSocket | null = null;
    class Grab extends WebSocket {
      constructor(url: string) {
        super(url);
        raw = this;
      }
    }
    const c = rawClient(r, { WebSocket: Grab });
    await login(c.client, await identity());
    const events = collectEvents(c.client, { presence: false });
    await eventually(() => r.counts().eventStreams === 1, 'the stream to open');
    const socketClosed = closed(raw!);
    await r.close();
    await events.until(() => events.events.some((e) => e.t === 'bye'));
    assert.deepEqual(events.events.find((e) => e.t === 'bye'), { t: 'bye', reason: 'SHUTTING_DOWN', retryAfterMs: 1234 });
    assert.equal((await socketClosed).code, CloseCode.SERVICE_RESTART);
    await c.close();
  });
});
