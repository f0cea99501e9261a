// The browser's voice media (levels, microphones) for the views; null in page tests with a scripted client.
import { createContext, useContext, useEffect, useState, useSyncExternalStore } from 'react';
import type { BrowserVoiceMedia, Level } from './browserVoiceMedia';

export const VoiceMediaContext = createContext<BrowserVoiceMedia | null>(null);

const NO_LEVELS: Readonly<Record<string, Level>> = Object.freeze({});
const noop = () => () => {};

/** Speaking levels by peerId (and 'self'); re-renders when one changes. */
export function useVoiceLevels(): Readonly<Record<string, Level>> {
  const media = useContext(VoiceMediaContext);
  return useSyncExternalStore(media ? media.subscribeLevels : noop, media ? media.getLevels : () => NO_LEVELS);
}

/** The microphones to choose from, listed again when `refresh` changes (labels come with permission). */
export function useMicrophones(refresh: unknown): { deviceId: string; label: string }[] {
  const media = useContext(VoiceMediaContext);
  const [mics, setMics] = useState<{ deviceId: string; label: string }[]>([]);
  useEffect(() => {
    if (!media) return;
    let live = true;
    const load = () => void media.listMicrophones().then((m) => live && setMics(m));
    load();
    navigator.mediaDevices?.addEventListener?.('devicechange', load);
    return () => {
      live = false;
      navigator.mediaDevices?.removeEventListener?.('devicechange', load);
    };
  }, [media, refresh]);
  return mics;
}
