// The Storage section of the identity dialog (UI11): what the app keeps in this browser, and "Clear old
// attachments", which drops attachment content by age while keeping the messages and each attachment's
// signed metadata (thumbnail included): the content is fetched again from peers when viewed (H15).
import { useEffect, useId, useState } from 'react';
import { DexieStore } from '../../shared/store/DexieStore';
import { HISTORY_DB_NAME } from '../history/historyDb';
import { CLEAR_AGES, clearOldAttachments, formatBytes } from './clearOldAttachments';
import { useStorageUsage } from './useStorageUsage';
import styles from './StorageSection.module.css';

export function StorageSection() {
  // Its own connection to the history database, closed with the section: the client's store is inside the
  // client core, and IndexedDB serializes the two connections' transactions. Made in the effect, so the
  // connection an unmount closed (StrictMode mounts twice) is never used again.
  const [store, setStore] = useState<DexieStore | null>(null);
  useEffect(() => {
    const s = new DexieStore(HISTORY_DB_NAME);
    setStore(s);
    return () => void s.close();
  }, []);
  const { usage, refresh } = useStorageUsage(store);
  const [age, setAge] = useState<number>(CLEAR_AGES[0].ms);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const ageId = useId();

  const clear = async () => {
    if (!store) return;
    setBusy(true);
    setResult(null);
    setError(null);
    try {
      const r = await clearOldAttachments(store, age);
      setResult(
        r.attachments === 0
          ? 'Nothing to clear: no attachment of that age is kept here.'
          : `Freed ${formatBytes(r.bytes)} from ${r.attachments} attachment${r.attachments === 1 ? '' : 's'}. The messages stay; the files are fetched again from peers when you open them.`,
      );
    } catch (err) {
      setError(`Could not clear: ${String((err as Error)?.message ?? err)}`);
    } finally {
      setBusy(false);
      refresh();
    }
  };

  const s = usage.store;
  const e = usage.estimate;
  return (
    <section className={styles.section} aria-labelledby={`${ageId}-title`} data-testid="storage-section">
      <h3 id={`${ageId}-title`} className={styles.title}>Storage</h3>
      <dl className={styles.facts}>
        <dt>Messages</dt>
        <dd data-testid="storage-messages">{s ? s.messages.toLocaleString() : '…'}</dd>
        <dt>Attachments kept here</dt>
        <dd data-testid="storage-attachments">
          {s ? `${formatBytes(s.attachmentBytes)} in ${s.attachmentsHeld.toLocaleString()} file${s.attachmentsHeld === 1 ? '' : 's'}` : '…'}
          {s && s.attachments > s.attachmentsHeld && (
            <span className={styles.muted}> · {(s.attachments - s.attachmentsHeld).toLocaleString()} more fetched from peers when viewed</span>
          )}
        </dd>
        <dt>This site in the browser</dt>
        <dd data-testid="storage-quota">
          {e ? `${formatBytes(e.usage)} used of ${formatBytes(e.quota)} allowed` : 'unknown'}
          {usage.persisted !== null && (
            <span className={styles.muted}> · {usage.persisted ? 'kept when space runs low' : 'may be evicted when space runs low'}</span>
          )}
        </dd>
      </dl>
      {e && e.quota > 0 && <meter className={styles.meter} min={0} max={e.quota} value={e.usage} aria-label="Storage used" />}
      {usage.error && <p className={styles.error} role="alert">Could not read the storage: {usage.error}</p>}
      <div className={styles.clear}>
        <label htmlFor={ageId}>Attachments</label>
        <select id={ageId} value={age} onChange={(ev) => setAge(Number(ev.target.value))} disabled={busy}>
          {CLEAR_AGES.map((a) => (
            <option key={a.ms} value={a.ms}>
              {a.label}
            </option>
          ))}
        </select>
        <button type="button" onClick={() => void clear()} disabled={busy || !store}>
          {busy ? 'Clearing…' : 'Clear old attachments'}
        </button>
      </div>
      <p className={styles.muted}>Messages are always kept. Cleared files keep their preview and come back from peers who have them.</p>
      {result && <p role="status" data-testid="storage-result">{result}</p>}
      {error && <p className={styles.error} role="alert">{error}</p>}
    </section>
  );
}
