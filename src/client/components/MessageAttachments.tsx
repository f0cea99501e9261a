// A message's attachments (MD4, MD6-MD9): photos as a box of their signed size with the placeholder (or an
// old message's thumbnail) at once
// and the full image once fetched and sniffed; everything else as a download card. Nothing here renders
// sender bytes as anything but a sniffed raster image; names are text, bidi-isolated.
import { useMemo, useRef } from 'react';
import type { SignedAttachment } from '../../shared/protocol/relay';
import { attachmentView } from '../media/attachmentView';
import { photoBox } from '../media/photoBox';
import { saveBytes } from '../media/saveBytes';
import { useAttachment } from '../hooks/useAttachment';
import { useBlobUrl } from '../hooks/useBlobUrl';
import { useDelayed } from '../hooks/useDelayed';
import { usePhotoViewer } from './PhotoViewerContext';
import styles from './MessageAttachments.module.css';
import { visibleControls } from './RichText';

/** A fetch shows its progress bar once it has taken this long (a store read does not). */
export const PROGRESS_AFTER_MS = 250;

export function MessageAttachments({ attachments }: { attachments: readonly SignedAttachment[] }) {
  if (attachments.length === 0) return null;
  // Several photos share the row (two to a line on a phone) instead of stacking at full width.
  const multi = attachments.filter((a) => attachmentView(a.meta).kind === 'image').length > 1;
  return (
    <div className={`${styles.list} ${multi ? styles.multi : ''}`}>
      {attachments.map((a) => (
        <Attachment key={a.id} att={a} />
      ))}
    </div>
  );
}

function Attachment({ att }: { att: SignedAttachment }) {
  // Keyed by id: the metadata an id names never changes (the window re-reads envelopes as new objects).
  const view = useMemo(() => attachmentView(att.meta), [att.id]);
  return view.kind === 'image' ? <PhotoTile att={att} width={view.width} height={view.height} thumbnail={view.thumbnail} placeholder={view.placeholder} /> : <FileCard att={att} />;
}

function PhotoTile(props: {
  att: SignedAttachment;
  width: number;
  height: number;
  thumbnail: { mime: string; bytes: Uint8Array } | null;
  /** A decoded `data:image/png` URL (attachmentView); nothing to revoke. */
  placeholder: string | null;
}) {
  const viewer = usePhotoViewer();
  const { att } = props;
  const name = att.meta.name;
  const { state } = useAttachment(viewer!.client, att, { auto: true, image: true });
  const thumbUrl = useBlobUrl(props.thumbnail?.bytes ?? null, props.thumbnail?.mime ?? '');
  const box = photoBox(props.width, props.height);
  const ref = useRef<HTMLButtonElement>(null);
  const slow = useDelayed(state.phase === 'fetching', PROGRESS_AFTER_MS);
  // The bytes turned out not to be the signed image (MD4): a download card, never an <img> of them.
  if (state.phase === 'ready' && !state.url) return <FileCard att={att} />;
  const full = state.phase === 'ready' ? state.url : null;
  const src = full ?? thumbUrl;
  const blurred = !full && !thumbUrl ? props.placeholder : null;
  return (
    <figure className={styles.photo} style={{ width: box.width, aspectRatio: `${box.width} / ${box.height}` }}>
      <button
        ref={ref}
        type="button"
        className={styles.photoButton}
        aria-label={`Open photo ${name}`}
        onClick={() => viewer?.open(att, ref.current)}
      >
        {src ? (
          <img src={src} alt={name} width={box.width} height={box.height} data-full={full ? 'true' : 'false'} className={styles.img} draggable={false} />
        ) : blurred ? (
          <img src={blurred} alt={name} width={box.width} height={box.height} data-full="false" data-placeholder="true" className={`${styles.img} ${styles.placeholder}`} draggable={false} />
        ) : (
          <span className={styles.noThumb} aria-hidden>
            ▧
          </span>
        )}
      </button>
      {state.phase === 'fetching' && (slow || state.progress > 0) && <DownloadProgress name={name} progress={state.progress} />}
      {state.phase === 'waiting' && <figcaption className={styles.waiting}>Waiting for a peer that has it</figcaption>}
      {state.phase === 'failed' && <figcaption className={styles.failed}>Could not load: {state.message}</figcaption>}
    </figure>
  );
}

/** A download's progress (0..1), for a photo and a file card alike; a span, so it may sit in the card's text. */
function DownloadProgress({ name, progress }: { name: string; progress: number }) {
  const percent = Math.round(progress * 100);
  return (
    <span className={styles.progress} role="progressbar" aria-label={`Downloading ${name}`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent}>
      <span className={styles.bar} style={{ width: `${percent}%` }} />
    </span>
  );
}

/** A short type label for the icon: the extension the name shows, else the signed mime's subtype. */
function typeLabel(name: string, mime: string): string {
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= 6 ? name.slice(dot + 1) : (mime.split('/')[1] ?? 'file');
  return ext.slice(0, 5).toUpperCase();
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function FileCard({ att }: { att: SignedAttachment }) {
  const viewer = usePhotoViewer();
  const name = att.meta.name;
  const { state, load } = useAttachment(viewer!.client, att, { auto: false, image: false, onBytes: (b) => saveBytes(b, name) });
  return (
    <div role="group" aria-label={`File ${name}`} className={styles.file} data-testid="file-card">
      <span className={styles.icon} aria-hidden>
        {typeLabel(name, att.meta.mime)}
      </span>
      <span className={styles.fileText}>
        <bdi className={styles.fileName} title={name}>
          {visibleControls(name)}
        </bdi>
        <span className={styles.fileMeta}>
          {formatBytes(att.meta.size)} · <bdi>{att.meta.mime}</bdi>
          {state.phase === 'waiting' && <> · Waiting for a peer that has it</>}
          {state.phase === 'failed' && <> · Could not load: {state.message}</>}
        </span>
        {state.phase === 'fetching' && <DownloadProgress name={name} progress={state.progress} />}
      </span>
      <button type="button" className={styles.download} aria-label={`Download ${name}`} onClick={load} disabled={state.phase === 'fetching'}>
        ↓
      </button>
    </div>
  );
}

/** A file card's height in px (MessageAttachments.module.css), for the list's size estimate. */
const FILE_CARD_PX = 62;

/** The list's estimate of what a message's attachments add to its row (the real size is measured). */
export function attachmentsHeight(atts: readonly SignedAttachment[]): number {
  if (atts.length === 0) return 0;
  let photo = 0;
  let files = 0;
  for (const a of atts) {
    const v = attachmentView(a.meta);
    if (v.kind === 'image') photo = Math.max(photo, photoBox(v.width, v.height).height);
    else files++;
  }
  return 8 + photo + files * (FILE_CARD_PX + 6);
}
