// Page entry: the media pipeline (src/client/media) on Chromium's real decoder and encoders: a generated
// photo with GPS EXIF injected goes through prepareAttachment; the stripped bytes must still decode and the
// thumbnail must fit the relay's bound.
import { fromB64url } from '../../../src/shared/encoding';
import { LIMITS, zAttachmentMeta } from '../../../src/shared/protocol/relay';
import { readImageHeader } from '../../../src/client/media/imageHeader';
import { prepareAttachment } from '../../../src/client/media/prepareAttachment';
import { makeThumbnail, THUMB_MAX_SIDE } from '../../../src/client/media/thumbnail';
import { contains, exifWithGps, pngChunk } from '../../../src/client/media/testing/craft';
import { type PageCase, registerCases } from '../pageCases';

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(what);
}

/** A photo-like picture: gradients plus per-pixel noise, so a 320 px WebP at quality 0.8 is well over 8 KiB. */
async function photo(width: number, height: number, type: 'image/jpeg' | 'image/png'): Promise<Uint8Array> {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d')!;
  const g = ctx.createLinearGradient(0, 0, width, height);
  g.addColorStop(0, '#1e6091');
  g.addColorStop(0.5, '#f9c74f');
  g.addColorStop(1, '#90be6d');
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, width, height);
  const img = ctx.getImageData(0, 0, width, height);
  let seed = 12345;
  for (let i = 0; i < img.data.length; i += 4) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const n = (seed >>> 24) - 128;
    img.data[i] = Math.max(0, Math.min(255, img.data[i]! + n));
    img.data[i + 1] = Math.max(0, Math.min(255, img.data[i + 1]! - n));
  }
  ctx.putImageData(img, 0, 0);
  const blob = await canvas.convertToBlob({ type, quality: 0.92 });
  check(blob.type === type, `Chromium encoded ${blob.type}, not ${type}`);
  return new Uint8Array(await blob.arrayBuffer());
}

async function decodedSize(bytes: Uint8Array, type: string): Promise<[number, number]> {
  const bmp = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
  const size: [number, number] = [bmp.width, bmp.height];
  bmp.close();
  return size;
}

const cases: PageCase[] = [
  {
    name: 'MD3 MD6 A6 a 1600x1200 JPEG with GPS EXIF: shared without GPS, still decodes at its size, a placeholder and no thumbnail; inlineThumbnail within the 8 KiB bound',
    async run() {
      const encoded = await photo(1600, 1200, 'image/jpeg');
      // Chromium writes no EXIF: insert an APP1 with a GPS IFD right after SOI, as a phone camera does.
      const withGps = new Uint8Array([0xff, 0xd8, ...exifWithGps(), ...encoded.subarray(2)]);
      check(contains(withGps, 'GPSMARK'), 'the crafted EXIF is in the input');
      check((await decodedSize(withGps, 'image/jpeg')).join('x') === '1600x1200', 'the input with EXIF decodes');

      const r = await prepareAttachment(withGps, { name: 'IMG_2041.JPG' });
      check(r.ok, `prepareAttachment refused: ${!r.ok ? r.message : ''}`);
      check(r.kind === 'image', `kind ${r.kind}`);
      check(!contains(r.bytes, 'GPSMARK') && !contains(r.bytes, 'Exif'), 'GPS EXIF is gone from the shared bytes');
      check((await decodedSize(r.bytes, 'image/jpeg')).join('x') === '1600x1200', 'the stripped bytes decode at 1600x1200');
      check(r.meta.width === 1600 && r.meta.height === 1200, `signed size ${r.meta.width}x${r.meta.height}`);
      check(zAttachmentMeta.safeParse(r.meta).success, 'meta passes the mint schema');

      const ph = r.meta.placeholder;
      const phBytes = ph && fromB64url(ph.data);
      check(ph?.kind === 'thumbhash' && phBytes && phBytes.length >= 5 && phBytes.length <= LIMITS.maxPlaceholderBytes, `placeholder is ${phBytes?.length} bytes`);
      check(r.meta.thumbnail === undefined, 'no inline thumbnail by default');

      const inline = await prepareAttachment(withGps, { name: 'IMG_2041.JPG', inlineThumbnail: true });
      check(inline.ok, 'inline prepared');
      const thumb = inline.meta.thumbnail;
      check(thumb, 'a thumbnail was made');
      const data = fromB64url(thumb.data);
      check(data && data.length <= LIMITS.maxThumbnailBytes, `thumbnail is ${data?.length} bytes, bound ${LIMITS.maxThumbnailBytes}`);
      const readBack = readImageHeader(data);
      check(readBack.ok && readBack.type === thumb.mime, `thumbnail sniffs as ${readBack.ok ? readBack.type : readBack.reason}, says ${thumb.mime}`);
      const [tw, th] = await decodedSize(data, thumb.mime);
      check(Math.max(tw, th) <= THUMB_MAX_SIDE && Math.abs(tw / th - 4 / 3) < 0.05, `thumbnail ${tw}x${th} keeps the 4:3 shape within ${THUMB_MAX_SIDE} px`);
    },
  },
  {
    name: 'MD6 a tighter bound makes the thumbnailer step size and quality down until it fits',
    async run() {
      const bytes = await photo(800, 600, 'image/jpeg');
      const header = readImageHeader(bytes);
      check(header.ok, 'header');
      const loose = await makeThumbnail(bytes, header, { inline: true });
      const tight = await makeThumbnail(bytes, header, { inline: true, maxBytes: 1500 });
      check(loose.ok && tight.ok, 'both fit');
      check(tight.bytes <= 1500 && tight.bytes < loose.bytes, `tight ${tight.bytes} vs loose ${loose.bytes}`);
    },
  },
  {
    name: 'MD2 a decode whose size disagrees with the header is refused',
    async run() {
      const bytes = await photo(64, 48, 'image/png');
      const r = await makeThumbnail(bytes, { type: 'image/png', width: 65, height: 48 });
      check(!r.ok && r.reason === 'SIZE_MISMATCH', `got ${JSON.stringify(r)}`);
    },
  },
  {
    name: 'MD3 a PNG with text metadata is stripped and still decodes',
    async run() {
      const encoded = await photo(120, 90, 'image/png');
      const ihdrEnd = 8 + 25;
      const withText = new Uint8Array([...encoded.subarray(0, ihdrEnd), ...pngChunk('tEXt', [...new TextEncoder().encode('GPS\0GPSMARK')]), ...encoded.subarray(ihdrEnd)]);
      check((await decodedSize(withText, 'image/png')).join('x') === '120x90', 'input decodes');
      const r = await prepareAttachment(withText, { name: 'shot.png' });
      check(r.ok && r.kind === 'image' && !contains(r.bytes, 'GPSMARK'), 'tEXt gone');
      check((await decodedSize(r.bytes, 'image/png')).join('x') === '120x90', 'stripped PNG decodes');
    },
  },
  {
    name: 'MD4 a renamed SVG is prepared as a file, never decoded',
    async run() {
      const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" onload="globalThis.pwned=1"><rect width="9" height="9"/></svg>');
      const r = await prepareAttachment(svg, { name: 'cat.png', claimedMime: 'image/png' });
      check(r.ok && r.kind === 'file' && r.meta.thumbnail === undefined, 'a file');
      check((globalThis as { pwned?: number }).pwned === undefined, 'no script ran');
    },
  },
];

registerCases(cases);
