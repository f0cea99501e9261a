// A changed relay key blocks everything: the client has signed nothing for the new key, and the user
// decides. The honest default is "don't trust"; trusting re-pins (the old history stays verified against
// the key that signed it).
import { useEffect, useRef } from 'react';
import styles from './Dialog.module.css';

export function KeyChangedDialog(props: {
  pinnedFingerprint: string;
  offeredFingerprint: string;
  onTrust(): void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog
      ref={ref}
      className={styles.dialog}
      aria-labelledby="key-changed-title"
      data-testid="key-changed"
      // Esc must not dismiss it: the warning stays until the user decides.
      onCancel={(e) => e.preventDefault()}
    >
      <h2 id="key-changed-title" className={styles.danger}>
        This relay's key has changed
      </h2>
      <p>
        The relay you used before identified itself with the key <code>{props.pinnedFingerprint}</code>. It now shows
        <code> {props.offeredFingerprint}</code>. This happens when the operator moved the relay to a new key, and also
        when someone else is pretending to be it.
      </p>
      <p>Nothing has been sent. Ask the operator (outside this app) whether the new key is right.</p>
      <div className={styles.actions}>
        <button type="button" onClick={() => location.reload()}>
          Check again
        </button>
        <button type="button" className={styles.dangerButton} onClick={props.onTrust}>
          Trust the new key {props.offeredFingerprint}
        </button>
      </div>
    </dialog>
  );
}
