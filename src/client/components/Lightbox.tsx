// The photo viewer (MD10): a modal <dialog> over the channel's loaded photos. Fit by default, zoom in
// steps (the picture then scrolls) or by touch (pinch, drag, double tap: usePinchZoom), Previous/Next and ArrowLeft/ArrowRight across the photos, Escape (the
// dialog's own cancel) closes, focus goes back to the photo that opened it. Shows the thumbnail until the
// full bytes are fetched and sniffed; Download saves opaque bytes under the sanitized name.
import { useEffect, useMemo, useRef, useState } from 'react';
import type { SignedAttachment } from '../../shared/protocol/relay';
import { attachmentView } from '../media/attachmentView';
import { saveBytes } from '../media/saveBytes';
import { useAttachment } from '../hooks/useAttachment';
import { useBlobUrl } from '../hooks/useBlobUrl';
import { MAX_ZOOM, MIN_ZOOM, usePinchZoom } from '../hooks/usePinchZoom';
import type { ClientLike } from '../session/ClientLike';
import styles from './Lightbox.module.css';
import { visibleControls } from './RichText';

/** The zoom buttons' and keys' steps; 1 = fit the window. A pinch zooms anywhere between them. */
export const ZOOM_STEPS = [MIN_ZOOM, 1.5, 2, 3, MAX_ZOOM] as const;
/** A pinch may leave the zoom between two steps: the buttons go to the next one in their direction. */
const stepUp = (z: number): number => ZOOM_STEPS.find((s) => s > z + 1e-3) ?? MAX_ZOOM;
const stepDown = (z: number): number => [...ZOOM_STEPS].reverse().find((s) => s < z - 1e-3) ?? MIN_ZOOM;

export function Lightbox(props: { client: ClientLike; photos: readonly SignedAttachment[]; index: number; onIndex(i: number): void; onClose(): void }) {
  const { photos, index, onIndex } = props;
  const ref = useRef<HTMLDialogElement>(null);
  const stage = useRef<HTMLDivElement>(null);
  const [zoom, setZoom] = useState<number>(MIN_ZOOM);
  const touch = usePinchZoom(stage, zoom, setZoom);
  const att = photos[index]!;
  useEffect(() => setZoom(MIN_ZOOM), [att.id]);
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
    } else if (e.key === '+' || e.key === '=') setZoom(stepUp(zoom));
    else if (e.key === '-') setZoom(stepDown(zoom));
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
        <button type="button" onClick={() => setZoom(stepDown(zoom))} disabled={zoom <= MIN_ZOOM} aria-label="Zoom out">
          −
        </button>
        <span className={styles.zoom} data-testid="zoom">
          {Math.round(zoom * 100)}%
        </span>
        <button type="button" onClick={() => setZoom(stepUp(zoom))} disabled={zoom >= MAX_ZOOM} aria-label="Zoom in">
          +
        </button>
        <button type="button" onClick={() => void download()}>
          Download
        </button>
        <button type="button" onClick={props.onClose} aria-label="Close" autoFocus>
          ✕
        </button>
      </div>
      <div ref={stage} className={styles.stage} data-zoomed={zoom > MIN_ZOOM} data-testid="photo-stage" {...touch}>
        <Picture key={att.id} client={props.client} att={att} zoom={zoom} />
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
      {src && <img src={src} alt={att.meta.name} data-full={full ? 'true' : 'false'} className={styles.img} draggable={false} />}
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
