import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { prefetchFirstPage } from './hooks/useChannelWindow';
import { channelFromPath } from './hooks/useRoute';
import './global.css';

// The newest page of the channel in the URL is read now, beside the identity read, not after the client
// core has started (useChannelWindow.ts).
const routed = channelFromPath(location.pathname);
if (routed) void prefetchFirstPage(routed);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

// The service worker caches the app shell so a reload with the relay down still opens the app (and the
// history, which is in IndexedDB). Not in dev: Vite's hot reload and a caching worker fight.
if ('serviceWorker' in navigator && import.meta.env.PROD) {
  window.addEventListener('load', () => void navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => {}));
}
