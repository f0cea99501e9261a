import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The web app is built into dist/client and served by the relay itself (one port, one origin), so the
// browser reaches tRPC at /trpc and PeerJS signalling at /peerjs on the page's own host.
/** Where `npm run dev` runs the relay (scripts/dev.mjs). */
const relay = `localhost:${process.env.PEERCHAT_RELAY_PORT ?? '8080'}`;

export default defineConfig({
  root: 'src/client',
  plugins: [react()],
  build: {
    outDir: '../../dist/client',
    emptyOutDir: true,
    target: 'es2022',
  },
  server: {
    port: 5173,
    proxy: {
      '/trpc': { target: `ws://${relay}`, ws: true },
      '/peerjs': { target: `ws://${relay}`, ws: true },
      '/.well-known': `http://${relay}`,
    },
  },
});
