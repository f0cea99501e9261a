// An object URL for small bytes already in memory (a thumbnail), revoked when the view unmounts or the
// bytes change. Callers pass only sniffed raster types (MD4).
import { useEffect, useState } from 'react';

export function useBlobUrl(bytes: Uint8Array | null, mime: string): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!bytes) return setUrl(null);
    const u = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: mime }));
    setUrl(u);
    return () => URL.revokeObjectURL(u);
  }, [bytes, mime]);
  return url;
}
