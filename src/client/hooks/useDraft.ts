// A draft per channel, kept in localStorage so a reload or a channel switch never loses typed text.
import { useCallback, useEffect, useState } from 'react';

const key = (channel: string) => `peerchat:draft:${channel}`;

export function useDraft(channel: string): [string, (text: string) => void] {
  const [text, setText] = useState(() => localStorage.getItem(key(channel)) ?? '');
  useEffect(() => setText(localStorage.getItem(key(channel)) ?? ''), [channel]);
  const set = useCallback(
    (t: string) => {
      setText(t);
      if (t) localStorage.setItem(key(channel), t);
      else localStorage.removeItem(key(channel));
    },
    [channel],
  );
  return [text, set];
}
