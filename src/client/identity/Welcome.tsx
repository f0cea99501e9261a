// First visit: a display name, nothing else. The key pair is made in the browser.
import { type FormEvent, useState } from 'react';
import { zDisplayName } from '../../shared/protocol/relay';
import { ImportForm } from './ImportForm';
import { createIdentity } from './identity';
import styles from './Welcome.module.css';

export function Welcome({ onDone }: { onDone(): void }) {
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [importing, setImporting] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const parsed = zDisplayName.safeParse(name);
    if (!parsed.success) {
      setError('Pick a name of 1 to 64 characters, without control characters.');
      return;
    }
    await createIdentity(parsed.data);
    onDone();
  };
  return (
    <main className={styles.welcome}>
      <div className={styles.card}>
        <h1>peerchat</h1>
        {!importing ? (
          <form onSubmit={submit}>
            <label className={styles.label} htmlFor="display-name">
              What should people call you?
            </label>
            <input
              id="display-name"
              className={styles.input}
              value={name}
              onChange={(e) => setName(e.target.value)}
              maxLength={64}
              autoFocus
              autoComplete="nickname"
              data-testid="display-name"
            />
            {error && (
              <p className={styles.error} role="alert">
                {error}
              </p>
            )}
            <button type="submit" className={styles.primary} data-testid="create-identity">
              Start chatting
            </button>
            <p className={styles.note}>
              A key pair is made in this browser and kept only here. Names are not unique: people tell you apart by your
              key's fingerprint. Clearing this site's data deletes your identity, so export it afterwards (Identity →
              Export) if you want to keep it.
            </p>
            <button type="button" className={styles.link} onClick={() => setImporting(true)}>
              I have an identity file
            </button>
          </form>
        ) : (
          <>
            <ImportForm onDone={onDone} />
            <button type="button" className={styles.link} onClick={() => setImporting(false)}>
              Back
            </button>
          </>
        )}
      </div>
    </main>
  );
}
