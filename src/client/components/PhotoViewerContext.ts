// Rows open the lightbox through this (it lives in ChannelView, above the virtualized list, so a row
// that scrolls out of the window does not take an open viewer with it).
import { createContext, useContext } from 'react';
import type { SignedAttachment } from '../../shared/protocol/relay';
import type { ClientLike } from '../session/ClientLike';

export interface PhotoViewer {
  client: ClientLike;
  /** Opens the viewer on attachment `id`; focus goes back to `opener` (if still there) when it closes. */
  open(att: SignedAttachment, opener: HTMLElement | null): void;
}

export const PhotoViewerContext = createContext<PhotoViewer | null>(null);

export function usePhotoViewer(): PhotoViewer | null {
  return useContext(PhotoViewerContext);
}
