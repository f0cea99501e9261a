// The photo viewer (MD10): a modal <dialog> over the channel's loaded photos. Fit by default, zoom in
// steps (the picture then scrolls), Previous/Next and ArrowLeft/ArrowRight across the photos, Escape (the
// dialog's own cancel) closes, focus goes back to the photo that opened it. Shows the thumbnail until the
// full bytes are fetched and sniffed; Download saves opaque bytes under the sanitized name.
import { useEffect, useMemo, useRef, useState } from 'react';
import type { SignedAttachment } from '../../shared/protocol/relay';
import { attachmentView } from '../media/attachmentView';
import { saveBytes } from '../media/saveBytes';
import { useAttachment } from '../hooks/useAttachment';
import { useBlobUrl } from '../hooks/useBlobUrl';
import type { ClientLike } from '../session/ClientLike';
import styles from './Lightbox.module.css';
import { visibleControls } from './RichText';

/** Zoom steps; 1 = fit the window. */
export const ZOOM_STEPS = [1, 1.5, 2, 3, 4] as const;

export function Lightbox(props: { client: ClientLike; photos: readonly SignedAttachment[]; index: number; onIndex(i: number): void; onClose(): void }) {
  const { photos, index, onIndex } = props;
  const ref = useRef<HTMLDialogElement>(null);
  const [zoom, setZoom] = useState(0);
  const att = photos[index]!;
  useEffect(() => setZoom(0), [att.id]);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);

  const prev = index > 0 ? () => onIndex(index - 1) : undefined;
  const next = index < photos.length - 1 ? () => onIndex(index + 1) : undefined;
  const onKey = (e: React.KeyboardEvent) => {
    if (e.key === 'ArrowLeft' && prev) {
      e.preventDefault();
      prev();
    } else if (e.key === 'ArrowRight' && next) {
      e.preventDefault();
      next();
    } else if ((e.key === '+' || e.key === '=') && zoom < ZOOM_STEPS.length - 1) setZoom(zoom + 1);
    else if (e.key === '-' && zoom > 0) setZoom(zoom - 1);
  };
  const download = async () => {
    const r = await props.client.fetchAttachment(att.id);
    if (r.ok) saveBytes(r.bytes, att.meta.name);
  };
  return (
    <dialog
      ref={ref}
      className={styles.dialog}
      aria-label="Photo viewer"
      onKeyDown={onKey}
      // Escape: the dialog's cancel; the owner unmounts it and returns focus.
      onCancel={(e) => {
        e.preventDefault();
        props.onClose();
      }}
    >
      <div className={styles.bar}>
        <bdi className={styles.title}>{visibleControls(att.meta.name)}</bdi>
        <span className={styles.count}>
          {index + 1} / {photos.length}
        </span>
        <button type="button" onClick={() => setZoom(zoom - 1)} disabled={zoom === 0} aria-label="Zoom out">
          −
        </button>
        <span className={styles.zoom}>{Math.round(ZOOM_STEPS[zoom]! * 100)}%</span>
        <button type="button" onClick={() => setZoom(zoom + 1)} disabled={zoom === ZOOM_STEPS.length - 1} aria-label="Zoom in">
          +
        </button>
        <button type="button" onClick={() => void download()}>
          Download
        </button>
        <button type="button" onClick={props.onClose} aria-label="Close" autoFocus>
          ✕
        </button>
      </div>
      <div className={styles.stage} data-zoomed={zoom > 0}>
        <Picture key={att.id} client={props.client} att={att} zoom={ZOOM_STEPS[zoom]!} />
      </div>
      <button type="button" className={`${styles.nav} ${styles.prev}`} onClick={prev} disabled={!prev} aria-label="Previous photo">
        ‹
      </button>
      <button type="button" className={`${styles.nav} ${styles.next}`} onClick={next} disabled={!next} aria-label="Next photo">
        ›
      </button>
    </dialog>
  );
}

function Picture({ client, att, zoom }: { client: ClientLike; att: SignedAttachment; zoom: number }) {
  // Keyed by id: the metadata an id names never changes (the window re-reads envelopes as new objects).
  const view = useMemo(() => attachmentView(att.meta), [att.id]);
  const thumb = view.kind === 'image' ? view.thumbnail : null;
  const thumbUrl = useBlobUrl(thumb?.bytes ?? null, thumb?.mime ?? '');
  const { state } = useAttachment(client, att, { auto: true, image: true });
  const full = state.phase === 'ready' ? state.url : null;
  const w = view.kind === 'image' ? view.width : 1;
  const h = view.kind === 'image' ? view.height : 1;
  const src = full ?? thumbUrl ?? (view.kind === 'image' ? view.placeholder : null);
  // Fit: the whole picture inside the stage, never above its own size; zoomed: that times the fitted size.
  const style =
    zoom === 1
      ? { width: `min(${w}px, 100%, calc((100dvh - 6rem) * ${w / h}))`, aspectRatio: `${w} / ${h}` }
      : { width: `calc(min(${w}px, 100vw, calc((100dvh - 6rem) * ${w / h})) * ${zoom})`, aspectRatio: `${w} / ${h}` };
  return (
    <div className={styles.picture} style={style}>
      {src && <img src={src} alt={att.meta.name} data-full={full ? 'true' : 'false'} className={styles.img} />}
      {state.phase === 'fetching' && (
        <div className={styles.progress} role="progressbar" aria-label={`Downloading ${att.meta.name}`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(state.progress * 100)}>
          <div style={{ width: `${Math.round(state.progress * 100)}%` }} />
        </div>
      )}
      {state.phase === 'waiting' && <p className={styles.note}>Waiting for a peer that has it</p>}
      {state.phase === 'ready' && !full && <p className={styles.note}>These bytes are not the signed image; download it from the message instead.</p>}
    </div>
  );
}
