// The composer's files waiting to be sent: a preview, name, state, and a remove button each. The preview is
// the prepared bytes only of a prepared image: they passed the header check and one decode whose size
// matched it (MD1-MD2, MD6), and were stripped; a bomb or a non-image is never decoded here. (Photos no
// longer sign an inline thumbnail to show instead, A6.)
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
  const image = item.prepared?.kind === 'image' ? item.prepared : null;
  // meta.mime of a prepared image is the sniffed type (prepareAttachment), not the browser's claim.
  const url = useBlobUrl(image?.bytes ?? null, image?.meta.mime ?? '');
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
