// Message text as text: React text nodes and <a> elements only, never HTML. Links only for http(s).
// Control and bidi-override characters are replaced by visible stand-ins so they can neither hide nor
// reorder what the reader sees; the whole text sits in its own bidi-isolated box (dir="auto").
import { find } from 'linkifyjs';
import { type ReactNode, memo } from 'react';
import styles from './RichText.module.css';

/** Bidi controls (embeddings, overrides, isolates, marks) and C0/C1 controls except tab and newline. */
// eslint-disable-next-line no-control-regex
const HARMFUL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Longest link text shown; the full address is in the title. */
const MAX_LINK_CHARS = 80;

export function visibleControls(text: string): ReactNode[] {
  const out: ReactNode[] = [];
  let last = 0;
  for (const m of text.matchAll(HARMFUL)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const code = m[0].codePointAt(0)!;
    // C0 controls have Unicode "control pictures" (U+2400 + code); the rest are shown by code point.
    const shown = code < 0x20 ? String.fromCodePoint(0x2400 + code) : code === 0x7f ? '\u2421' : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
    out.push(
      <span key={`c${m.index}`} className={styles.control} title={`control character U+${code.toString(16).toUpperCase().padStart(4, '0')}`}>
        {shown}
      </span>,
    );
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

export function safeHref(href: string): string | null {
  try {
    const u = new URL(href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

export const RichText = memo(function RichText({ text }: { text: string }) {
  const parts: ReactNode[] = [];
  let last = 0;
  for (const link of find(text, 'url')) {
    const href = safeHref(link.href);
    if (!href) continue;
    if (link.start > last) parts.push(...visibleControls(text.slice(last, link.start)));
    const label = link.value.length > MAX_LINK_CHARS ? `${link.value.slice(0, MAX_LINK_CHARS - 1)}…` : link.value;
    parts.push(
      <a key={`l${link.start}`} href={href} target="_blank" rel="noopener noreferrer" title={href}>
        {visibleControls(label)}
      </a>,
    );
    last = link.end;
  }
  if (last < text.length) parts.push(...visibleControls(text.slice(last)));
  return (
    <bdi className={styles.text} dir="auto">
      {parts}
    </bdi>
  );
});
