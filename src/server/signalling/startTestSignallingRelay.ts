// A minimal HTTP server on 127.0.0.1 that routes `/peerjs` upgrades to the signalling endpoint, the way
// the relay does. For tests and e2e only; the relay wires `handleUpgrade` into its own server.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type SignallingServer, type SignallingServerOptions, createSignallingServer } from './createSignallingServer';
import { FakePeerAuth } from './FakePeerAuth';

export interface TestSignallingRelay {
  port: number;
  auth: FakePeerAuth;
  signalling: SignallingServer;
  close(): Promise<void>;
}

export async function startTestSignallingRelay(
  opts: Partial<Omit<SignallingServerOptions, 'auth'>> = {},
): Promise<TestSignallingRelay> {
  const auth = new FakePeerAuth();
  const signalling = createSignallingServer({ log: () => {}, ...opts, auth });
  const server = createServer((_req, res) => {
    res.writeHead(404).end();
  });
  server.on('upgrade', (req, socket, head) => {
    if (req.url?.startsWith('/peerjs')) signalling.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    auth,
    signalling,
    async close() {
      await signalling.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
