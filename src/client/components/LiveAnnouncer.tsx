// Screen readers hear new messages, and only new ones: one visually hidden polite region outside the
// virtualized list, fed with messages that arrive while the channel is open. Loading older history or
// switching channels never reaches it (the list itself is never live).
import styles from './LiveAnnouncer.module.css';

export function LiveAnnouncer({ text }: { text: string }) {
  return (
    <div className={styles.hidden} aria-live="polite" aria-atomic="false" data-testid="live-region">
      {text}
    </div>
  );
}
