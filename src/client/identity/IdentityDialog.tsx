// The user's identity: fingerprint, storage persistence, the warning about clearing site data, export to
// a passphrase-protected file and import from one; and what the app stores (the Storage section, UI11).
import { type FormEvent, useEffect, useRef, useState } from 'react';
import { visibleControls } from '../components/RichText';
import type { IdentityRow } from '../appDb';
import styles from '../components/Dialog.module.css';
import { StorageSection } from '../storage/StorageSection';
import { ImportForm } from './ImportForm';
import { type Persistence, fingerprintOfKey, requestPersistence } from './identity';
import { exportIdentity } from './identityFile';

/** Below this the file is too easy to guess offline, scrypt or not. */
export const MIN_PASSPHRASE = 10;

export function IdentityDialog({ identity, onClose }: { identity: IdentityRow; onClose(): void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [persist, setPersist] = useState<Persistence | null>(null);
  const [pass, setPass] = useState('');
  const [pass2, setPass2] = useState('');
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tab, setTab] = useState<'export' | 'import'>('export');
  useEffect(() => {
    ref.current?.showModal();
    void requestPersistence().then(setPersist);
  }, []);
  const fp = fingerprintOfKey(identity.publicKey);
  const doExport = async (e: FormEvent) => {
    e.preventDefault();
    if (pass.length < MIN_PASSPHRASE) return setError(`Use at least ${MIN_PASSPHRASE} characters.`);
    if (pass !== pass2) return setError('The two passphrases differ.');
    setError(null);
    setProgress(0);
    const file = await exportIdentity({ secretKey: identity.secretKey, publicKey: identity.publicKey, name: identity.name, passphrase: pass, onProgress: setProgress });
    setProgress(null);
    const url = URL.createObjectURL(new Blob([JSON.stringify(file, null, 2)], { type: 'application/json' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `peerchat-identity-${fp}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };
  return (
    <dialog ref={ref} className={styles.dialog} onClose={onClose} aria-labelledby="identity-title" data-testid="identity-dialog">
      <h2 id="identity-title">Your identity</h2>
      <p>
        <bdi>{visibleControls(identity.name)}</bdi> · fingerprint <span className={styles.fp} data-testid="own-fingerprint">{fp}</span>
      </p>
      <p className={styles.note}>
        Your key lives only in this browser.{' '}
        <strong>Clearing this site's data (cookies and site data) deletes it for good</strong> unless you exported it.{' '}
        {persist === 'persisted' && 'The browser agreed to keep this site\u2019s storage.'}
        {persist === 'best-effort' && 'The browser may still evict this site\u2019s storage when space runs low.'}
        {persist === 'unsupported' && 'This browser cannot promise to keep the storage.'}
      </p>
      <div className={styles.actions} style={{ justifyContent: 'flex-start' }}>
        <button type="button" aria-pressed={tab === 'export'} onClick={() => setTab('export')}>
          Export
        </button>
        <button type="button" aria-pressed={tab === 'import'} onClick={() => setTab('import')}>
          Import
        </button>
      </div>
      {tab === 'export' ? (
        <form onSubmit={doExport} data-testid="export-form">
          <label className={styles.field}>
            Passphrase (at least {MIN_PASSPHRASE} characters)
            <input type="password" value={pass} onChange={(e) => setPass(e.target.value)} autoComplete="new-password" data-testid="export-passphrase" />
          </label>
          <label className={styles.field}>
            Again
            <input type="password" value={pass2} onChange={(e) => setPass2(e.target.value)} autoComplete="new-password" data-testid="export-passphrase2" />
          </label>
          {error && <p className={styles.error} role="alert">{error}</p>}
          <p className={styles.note}>The file is encrypted with scrypt (128 MiB) and XChaCha20-Poly1305. Without the passphrase it is useless.</p>
          <div className={styles.actions}>
            <button type="button" onClick={() => ref.current?.close()}>
              Close
            </button>
            <button type="submit" className={styles.primary} disabled={progress !== null} data-testid="export-submit">
              {progress !== null ? `Encrypting… ${Math.round(progress * 100)}%` : 'Download identity file'}
            </button>
          </div>
        </form>
      ) : (
        <ImportForm replacing={fp} onDone={() => location.reload()} />
      )}
      <StorageSection />
    </dialog>
  );
}
