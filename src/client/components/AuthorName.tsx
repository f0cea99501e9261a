// A display name is never trusted alone: it is bidi-isolated, coloured from the key, and always followed
// by the short fingerprint, so two "alice"s (or one named with a right-to-left override) are told apart.
import { visibleControls } from './RichText';
import styles from './AuthorName.module.css';

/** Hue from the public key's characters: stable per key, spread around the wheel. */
export function authorHue(publicKey: string): number {
  let h = 2166136261;
  for (let i = 0; i < publicKey.length; i++) h = Math.imul(h ^ publicKey.charCodeAt(i), 16777619);
  return (h >>> 0) % 360;
}

export function AuthorName({ name, publicKey, fingerprint, self }: { name: string; publicKey: string; fingerprint: string; self?: boolean }) {
  return (
    <span className={styles.author}>
      <bdi className={styles.name} style={{ color: `hsl(${authorHue(publicKey)} 65% var(--name-lightness))` }}>
        {visibleControls(name)}
      </bdi>
      <span className={styles.fp} title="Key fingerprint: tells apart people with the same name">
        {fingerprint}
      </span>
      {self && <span className={styles.you}>you</span>}
    </span>
  );
}
