// SPEC.md R11: in production with no PEERCHAT_CLIENT_IP_HEADER, the relay warns once when connections look
// proxied (private address, or loopback with a forwarding header), and never when the header is set.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toB64url } from '../shared/encoding';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { isPrivateAddress } from './origins';
import { warnOnProxiedClients } from './proxyWarning';

const fakeReq = (remoteAddress: string, headers: Record<string, string> = {}) => ({ socket: { remoteAddress }, headers }) as unknown as IncomingMessage;

function recorder() {
  const events: { event: string; fields: Record<string, unknown> }[] = [];
  return { events, warn: (event: string, fields: Record<string, unknown>) => events.push({ event, fields }) };
}

describe('client address behind a proxy', () => {
  it('R11 private, CGNAT, unique-local and loopback addresses are private; public ones are not', () => {
    for (const a of ['10.0.0.1', '172.16.0.9', '172.31.255.1', '192.168.1.1', '100.64.0.1', '127.0.0.1', '::1', '::ffff:10.1.2.3', 'fdaa:0:1::2', 'fe80::1', '169.254.1.1']) {
      assert.equal(isPrivateAddress(a), true, a);
    }
    for (const a of ['8.8.8.8', '172.32.0.1', '100.128.0.1', '2a01:4f8::1', '::ffff:203.0.113.5', '', 'garbage']) assert.equal(isPrivateAddress(a), false, a);
  });

  it('R11 production, no header: one warning at the first private-address connection, none for public ones', () => {
    const server = new EventEmitter();
    const r = recorder();
    warnOnProxiedClients(server as never, { mode: 'production', clientIpHeader: undefined, warn: r.warn });
    server.emit('request', fakeReq('203.0.113.5'));
    assert.equal(r.events.length, 0);
    server.emit('upgrade', fakeReq('172.16.3.4'));
    server.emit('upgrade', fakeReq('172.16.3.5'));
    server.emit('request', fakeReq('fdaa:0:1::2'));
    assert.equal(r.events.length, 1);
    assert.equal(r.events[0]!.event, 'client_ip_header_unset');
    assert.equal(r.events[0]!.fields.addr, '172.16.3.4');
    assert.match(String(r.events[0]!.fields.message), /PEERCHAT_CLIENT_IP_HEADER/);
    assert.equal(server.listenerCount('request') + server.listenerCount('upgrade'), 0, 'stops watching after warning');
  });

  it('R11 no warning with the header set, or in local mode', () => {
    for (const opts of [{ mode: 'production' as const, clientIpHeader: 'fly-client-ip' }, { mode: 'local' as const, clientIpHeader: undefined }]) {
      const server = new EventEmitter();
      const r = recorder();
      warnOnProxiedClients(server as never, { ...opts, warn: r.warn });
      server.emit('upgrade', fakeReq('10.0.0.7', { 'fly-client-ip': '203.0.113.5' }));
      server.emit('request', fakeReq('127.0.0.1', { 'x-forwarded-for': '203.0.113.5' }));
      assert.equal(r.events.length, 0);
    }
  });

  it('R11 over a real socket: loopback alone is not a proxy; loopback with X-Forwarded-For warns once', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    const r = recorder();
    warnOnProxiedClients(server, { mode: 'production', clientIpHeader: undefined, warn: r.warn });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
    try {
      await (await fetch(url)).text();
      assert.equal(r.events.length, 0, 'virtual clients and local tools connect over loopback');
      for (let i = 0; i < 3; i++) await (await fetch(url, { headers: { 'X-Forwarded-For': '203.0.113.5' } })).text();
      assert.equal(r.events.length, 1);
      assert.equal(r.events[0]!.fields.forwardingHeader, 'x-forwarded-for');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('R11 the entry point in production, header unset: client_ip_header_unset logged once; not with the header set', async () => {
    const lines = async (extraEnv: Record<string, string>) => {
      const dir = mkdtempSync(join(tmpdir(), 'peerchat-proxywarn-'));
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('./main.ts', import.meta.url))], {
        cwd: dir,
        env: {
          PATH: process.env.PATH,
          PEERCHAT_ENV: 'production',
          PEERCHAT_RELAY_KEY: toB64url(new Uint8Array(32).fill(4)),
          PEERCHAT_PUBLIC_ORIGIN: 'https://chat.example',
          PORT: '0',
          HOST: '127.0.0.1',
          ...extraEnv,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      try {
        const port = await new Promise<number>((resolve, reject) => {
          child.on('exit', (code) => reject(new Error(`relay exited ${code}: ${out}`)));
          child.stdout.on('data', () => {
            const m = /"event":"relay_started".*?"port":(\d+)/.exec(out);
            if (m) resolve(Number(m[1]));
          });
        });
        for (let i = 0; i < 3; i++) await (await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { 'X-Forwarded-For': '203.0.113.5' } })).text();
        // A request the relay answers after those: their log lines are out by then.
        await (await fetch(`http://127.0.0.1:${port}/healthz`)).text();
      } finally {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
        rmSync(dir, { recursive: true, force: true });
      }
      return out.split('\n').filter((l) => l.includes('"client_ip_header_unset"'));
    };
    const warned = await lines({});
    assert.equal(warned.length, 1, 'once, whatever number of proxied connections');
    assert.equal(JSON.parse(warned[0]!).level, 'warn');
    assert.deepEqual(await lines({ PEERCHAT_CLIENT_IP_HEADER: 'fly-client-ip' }), []);
  });
});
