// Touch zoom and pan for the photo viewer (MD10): two fingers pinch (the point between them stays under
// them), one finger (or a mouse) drags a zoomed picture, a double tap toggles fit and DOUBLE_TAP_ZOOM at
// the tapped point. Pointer events on the stage, whose `touch-action: none` keeps the browser from
// zooming the whole page instead; panning scrolls the stage, so the scroll bars and keys still work.
import { useLayoutEffect, useRef } from 'react';

/** Zoom limits; 1 = fit the window. */
export const MIN_ZOOM = 1;
export const MAX_ZOOM = 4;
/** What a double tap on a fitted picture zooms to. */
export const DOUBLE_TAP_ZOOM = 2;
/** Two taps this close in time (ms) and place (px) are a double tap; a tap moves less than TAP_SLOP_PX. */
const DOUBLE_TAP_MS = 300;
const TAP_SLOP_PX = 10;
const DOUBLE_TAP_PX = 40;

const clamp = (z: number): number => Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, z));

/**
 * Where the zoom is anchored: the picture point (in fitted pixels) that must end under `client` once the
 * new zoom is laid out.
 */
interface Anchor {
  clientX: number;
  clientY: number;
  u: number;
  v: number;
}

/**
 * Pointer handlers for the stage. `stage` scrolls; its first child is the picture whose size follows
 * `zoom`. The handlers never throw; gestures end with their pointers (up, cancel, lost capture).
 */
export function usePinchZoom(stage: React.RefObject<HTMLElement | null>, zoom: number, setZoom: (z: number) => void) {
  const pointers = useRef(new Map<number, { x: number; y: number; downX: number; downY: number; at: number }>());
  const pinch = useRef<{ dist: number; zoom: number; u: number; v: number } | null>(null);
  const anchor = useRef<Anchor | null>(null);
  const lastTap = useRef<{ x: number; y: number; at: number } | null>(null);
  const zoomRef = useRef(zoom);
  zoomRef.current = zoom;

  // After a zoom is laid out, scroll so the anchored picture point is back under the finger(s).
  useLayoutEffect(() => {
    const a = anchor.current;
    const s = stage.current;
    const pic = s?.firstElementChild;
    if (!a || !s || !pic) return;
    anchor.current = null;
    const r = pic.getBoundingClientRect();
    s.scrollLeft += r.left + a.u * zoom - a.clientX;
    s.scrollTop += r.top + a.v * zoom - a.clientY;
  }, [zoom, stage]);

  /** Zooms to `z` keeping the picture point now under (x, y) there. */
  const zoomAt = (z: number, x: number, y: number, u?: number, v?: number): void => {
    const pic = stage.current?.firstElementChild;
    if (!pic) return;
    const r = pic.getBoundingClientRect();
    const now = zoomRef.current;
    anchor.current = { clientX: x, clientY: y, u: u ?? (x - r.left) / now, v: v ?? (y - r.top) / now };
    if (z === now) anchor.current = null;
    else setZoom(z);
  };

  const midpoint = () => {
    const [a, b] = [...pointers.current.values()];
    return { x: (a!.x + b!.x) / 2, y: (a!.y + b!.y) / 2, dist: Math.hypot(a!.x - b!.x, a!.y - b!.y) };
  };

  const onPointerDown = (e: React.PointerEvent<HTMLElement>): void => {
    if (e.pointerType === 'mouse' && e.button !== 0) return;
    if ((e.target as Element).closest('button')) return;
    pointers.current.set(e.pointerId, { x: e.clientX, y: e.clientY, downX: e.clientX, downY: e.clientY, at: e.timeStamp });
    e.currentTarget.setPointerCapture?.(e.pointerId);
    if (pointers.current.size === 2) {
      const m = midpoint();
      const pic = stage.current?.firstElementChild;
      if (!pic || m.dist === 0) return;
      const r = pic.getBoundingClientRect();
      pinch.current = { dist: m.dist, zoom: zoomRef.current, u: (m.x - r.left) / zoomRef.current, v: (m.y - r.top) / zoomRef.current };
    }
  };

  const onPointerMove = (e: React.PointerEvent<HTMLElement>): void => {
    const p = pointers.current.get(e.pointerId);
    if (!p) return;
    const dx = e.clientX - p.x;
    const dy = e.clientY - p.y;
    p.x = e.clientX;
    p.y = e.clientY;
    const g = pinch.current;
    if (g && pointers.current.size === 2) {
      const m = midpoint();
      // The picture point that was between the fingers follows their midpoint: pinch and two-finger pan.
      zoomAt(clamp((g.zoom * m.dist) / g.dist), m.x, m.y, g.u, g.v);
    } else if (pointers.current.size === 1 && zoomRef.current > MIN_ZOOM && stage.current) {
      stage.current.scrollLeft -= dx;
      stage.current.scrollTop -= dy;
    }
  };

  const onPointerEnd = (e: React.PointerEvent<HTMLElement>): void => {
    const p = pointers.current.get(e.pointerId);
    if (!p) return;
    pointers.current.delete(e.pointerId);
    if (pointers.current.size < 2) pinch.current = null;
    const tap = e.type === 'pointerup' && Math.hypot(e.clientX - p.downX, e.clientY - p.downY) < TAP_SLOP_PX && pointers.current.size === 0;
    if (!tap) {
      lastTap.current = null;
      return;
    }
    const prev = lastTap.current;
    if (prev && e.timeStamp - prev.at < DOUBLE_TAP_MS && Math.hypot(e.clientX - prev.x, e.clientY - prev.y) < DOUBLE_TAP_PX) {
      lastTap.current = null;
      zoomAt(zoomRef.current > MIN_ZOOM ? MIN_ZOOM : DOUBLE_TAP_ZOOM, e.clientX, e.clientY);
    } else lastTap.current = { x: e.clientX, y: e.clientY, at: e.timeStamp };
  };

  return { onPointerDown, onPointerMove, onPointerUp: onPointerEnd, onPointerCancel: onPointerEnd, onLostPointerCapture: onPointerEnd };
}
