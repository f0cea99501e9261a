// Screen readers hear new messages, and only new ones: one visually hidden polite region outside the
// virtualized list, fed with messages that arrive while the channel is open. Loading older history or
// switching channels never reaches it (the list itself is never live).
// The announcement carries names and text of others: like every other place they show (UI7), bidi and
// control characters become visible stand-ins, inside an isolated box, so a right-to-left override in
// one message cannot reorder what a braille display or the accessibility tree shows after it.
import { visibleControls } from './RichText';
import styles from './LiveAnnouncer.module.css';

export function LiveAnnouncer({ text }: { text: string }) {
  return (
    <div className={styles.hidden} aria-live="polite" aria-atomic="false" data-testid="live-region">
      <bdi dir="auto">{visibleControls(text)}</bdi>
    </div>
  );
}
