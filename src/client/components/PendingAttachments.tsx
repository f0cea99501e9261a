// The composer's files waiting to be sent: a preview (the prepared thumbnail, never the picked bytes: a
// bomb or a non-image is never decoded here), name, state, and a remove button each.
import { useMemo } from 'react';
import { fromB64url } from '../../shared/encoding';
import { checkImage } from '../media/imageHeader';
import { useBlobUrl } from '../hooks/useBlobUrl';
import type { PendingFile } from '../hooks/usePendingAttachments';
import { formatBytes } from './MessageAttachments';
import styles from './PendingAttachments.module.css';
import { visibleControls } from './RichText';

export function PendingAttachments(props: { items: readonly PendingFile[]; onRemove(key: number): void }) {
  if (props.items.length === 0) return null;
  return (
    <ul className={styles.list} aria-label="Attachments to send">
      {props.items.map((i) => (
        <Item key={i.key} item={i} onRemove={() => props.onRemove(i.key)} />
      ))}
    </ul>
  );
}

const STATUS: Record<PendingFile['status'], string> = { preparing: 'Preparing…', uploading: 'Uploading…', ready: '', failed: 'Not uploaded' };

function Item({ item, onRemove }: { item: PendingFile; onRemove(): void }) {
  const thumb = useMemo(() => {
    const t = item.prepared?.meta.thumbnail;
    const bytes = t ? fromB64url(t.data) : null;
    const h = bytes ? checkImage(bytes) : null;
    return bytes && h?.ok ? { bytes, mime: h.type } : null;
  }, [item.prepared]);
  const url = useBlobUrl(thumb?.bytes ?? null, thumb?.mime ?? '');
  const removed = item.prepared?.removed.length ?? 0;
  return (
    <li className={styles.item} data-status={item.status}>
      {url ? (
        <img className={styles.preview} src={url} alt="" />
      ) : (
        <span className={styles.icon} aria-hidden>
          {item.status === 'preparing' ? '…' : '📄'}
        </span>
      )}
      <span className={styles.text}>
        <bdi className={styles.name} title={item.name}>
          {visibleControls(item.name)}
        </bdi>
        <span className={styles.meta}>
          {formatBytes(item.prepared?.bytes.length ?? item.file.size)}
          {removed > 0 && ' · metadata removed'}
          {STATUS[item.status] && ` · ${STATUS[item.status]}`}
          {item.signed && item.status === 'ready' && ' · uploaded'}
        </span>
        {item.error && (
          <span className={styles.error}>
            {item.name}: {item.error}. Send again to retry.
          </span>
        )}
      </span>
      <button type="button" className={styles.remove} onClick={onRemove} aria-label={`Remove ${item.name}`} disabled={item.status === 'uploading'}>
        ✕
      </button>
    </li>
  );
}
