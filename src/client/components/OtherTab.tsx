import styles from '../identity/Welcome.module.css';

export function OtherTab({ onUseHere }: { onUseHere(): void }) {
  return (
    <main className={styles.welcome}>
      <div className={styles.card} data-testid="other-tab">
        <h1>peerchat is open in another tab</h1>
        <p className={styles.note}>
          One tab at a time holds your session (the relay login and the peer connections), so your history is synced
          once and you appear once in everyone's member list.
        </p>
        <button type="button" className={styles.primary} onClick={onUseHere} autoFocus data-testid="use-here">
          Use here
        </button>
      </div>
    </main>
  );
}
