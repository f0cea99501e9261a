// The box a photo takes in a message, from its signed size alone (MD7): known before any byte loads, so
// the virtualized list measures the row once and never jumps when the thumbnail or the full image lands.

/** Longest side of a photo in the message list, in CSS px; phones shrink it to the column (max-width). */
export const PHOTO_BOX_MAX = 320;
/** A sliver (a 1 x 4000 strip) still gets a box one can see and click. */
export const PHOTO_BOX_MIN = 48;

export function photoBox(width: number, height: number, max = PHOTO_BOX_MAX): { width: number; height: number } {
  const scale = Math.min(1, max / Math.max(width, height));
  return {
    width: Math.max(PHOTO_BOX_MIN, Math.round(width * scale)),
    height: Math.max(PHOTO_BOX_MIN, Math.round(height * scale)),
  };
}
