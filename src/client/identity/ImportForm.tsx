// Import an identity file: pick it, type its passphrase. A wrong passphrase or a hostile file is refused
// with a sentence; nothing is replaced until the file decrypted and its key matched.
import { type FormEvent, useState } from 'react';
import { detectBackend } from '../../shared/crypto/ed25519';
import styles from '../components/Dialog.module.css';
import { importIdentity } from './identityFile';
import { fingerprintOfKey, replaceIdentity } from './identity';

export function ImportForm({ onDone, replacing }: { onDone(): void; replacing?: string }) {
  const [file, setFile] = useState<File | null>(null);
  const [pass, setPass] = useState('');
  const [busy, setBusy] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    setError(null);
    setBusy(0);
    const r = await importIdentity(await file.text(), pass, await detectBackend(), (f) => setBusy(f));
    setBusy(null);
    if (!r.ok) {
      setError(r.message);
      return;
    }
    if (replacing && !confirm(`Replace your identity ${replacing} with ${fingerprintOfKey(r.publicKey)} (“${r.name}”)?`)) return;
    await replaceIdentity(r.secretKey, r.publicKey, r.name);
    onDone();
  };
  return (
    <form onSubmit={submit} data-testid="import-form">
      <h2>Import an identity</h2>
      <label className={styles.field}>
        Identity file
        <input type="file" accept=".json,application/json" onChange={(e) => setFile(e.target.files?.[0] ?? null)} data-testid="import-file" />
      </label>
      <label className={styles.field}>
        Passphrase
        <input type="password" value={pass} onChange={(e) => setPass(e.target.value)} autoComplete="current-password" data-testid="import-passphrase" />
      </label>
      {error && (
        <p className={styles.error} role="alert" data-testid="import-error">
          {error}
        </p>
      )}
      <div className={styles.actions}>
        <button type="submit" className={styles.primary} disabled={!file || busy !== null} data-testid="import-submit">
          {busy !== null ? `Unlocking… ${Math.round(busy * 100)}%` : 'Import'}
        </button>
      </div>
    </form>
  );
}
