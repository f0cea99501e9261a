// A full browser storage (QUOTA_EXCEEDED, SPEC.md H16, UI11) is said, not swallowed: new messages and
// files are not kept on this device until the user frees space. One alert for the newest such error,
// until dismissed; a later one shows it again.
import { useState } from 'react';
import type { ClientError } from '../../shared/client/PeerchatClient';
import styles from './QuotaAlert.module.css';

export function QuotaAlert({ errors, onOpenStorage }: { errors: readonly ClientError[]; onOpenStorage(): void }) {
  const [dismissedAt, setDismissedAt] = useState(-Infinity);
  const last = errors.findLast((e) => e.reason === 'QUOTA_EXCEEDED');
  if (!last || last.at <= dismissedAt) return null;
  return (
    <div className={styles.alert} role="alert" data-testid="quota-alert">
      <span>
        <strong>Storage is full.</strong> New messages and files are not being saved in this browser. Free space with
        “Clear old attachments” in Storage.
      </span>
      <span className={styles.actions}>
        <button type="button" onClick={onOpenStorage}>
          Open storage
        </button>
        <button type="button" onClick={() => setDismissedAt(last.at)} aria-label="Dismiss storage warning">
          ✕
        </button>
      </span>
    </div>
  );
}
