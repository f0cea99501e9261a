import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DOWNLOAD_MIME, fileKind, MAX_FILENAME_LENGTH, sanitizeFilename } from './fileKind';
import { bytesOf, jfif, jpeg, png, sof0 } from './testing/craft';

describe('MD4 bytes decide how an attachment is shown', () => {
  it('MD4 sniffed PNG and JPEG are images with their sniffed type and size', () => {
    assert.deepEqual(fileKind(png(10, 20)), { kind: 'image', mime: 'image/png', width: 10, height: 20 });
    assert.deepEqual(fileKind(jpeg([jfif(), sof0(3, 4)])), { kind: 'image', mime: 'image/jpeg', width: 3, height: 4 });
  });

  it('MD4 a renamed SVG, HTML, XML, JS or PDF is an opaque download', () => {
    const active = ['<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', '<html><script>alert(1)</script>', '<?xml version="1.0"?><x/>', 'alert(document.cookie)', '%PDF-1.4\n', '\u00ef\u00bb\u00bf<svg/>'];
    for (const text of active) {
      const k = fileKind(bytesOf(text));
      assert.equal(k.kind, 'download', text);
      assert.equal(k.mime, DOWNLOAD_MIME);
    }
  });

  it('MD4 an image bomb is a download, not an image', () => {
    const k = fileKind(png(60_000, 60_000));
    assert.equal(k.kind, 'download');
    assert.match(k.kind === 'download' ? k.why : '', /16384/);
  });
});

describe('MD5 safe download names', () => {
  it('MD5 path separators, Windows-forbidden characters and traversal are neutralised', () => {
    assert.equal(sanitizeFilename('../../etc/passwd'), '_.._etc_passwd');
    assert.equal(sanitizeFilename('..\\..\\boot.ini'), '_.._boot.ini');
    assert.equal(sanitizeFilename('a:b*c?d"e<f>g|h.txt'), 'a_b_c_d_e_f_g_h.txt');
  });

  it('MD5 control characters and bidi overrides are removed', () => {
    assert.equal(sanitizeFilename('invoice\u202Efdp.exe'), 'invoicefdp.exe');
    assert.equal(sanitizeFilename('a\u0000b\nc\u0007\u200Fd\u2066e\u2069.png'), 'abcde.png');
  });

  it('MD5 reserved names, dots and spaces, empty names', () => {
    assert.equal(sanitizeFilename('CON'), '_CON');
    assert.equal(sanitizeFilename('lpt1.txt'), '_lpt1.txt');
    assert.equal(sanitizeFilename('console.txt'), 'console.txt');
    assert.equal(sanitizeFilename('  .hidden. . '), 'hidden');
    assert.equal(sanitizeFilename('...'), 'download');
    assert.equal(sanitizeFilename('\u202E'), 'download');
  });

  it('MD5 long names are cut to the bound keeping the extension and whole characters', () => {
    const s = sanitizeFilename(`${'a'.repeat(300)}.jpeg`);
    assert.equal(s.length, MAX_FILENAME_LENGTH);
    assert.ok(s.endsWith('.jpeg'));
    const emoji = sanitizeFilename(`${'😀'.repeat(100)}.png`);
    assert.ok(emoji.length <= MAX_FILENAME_LENGTH && emoji.endsWith('.png'));
    assert.doesNotMatch(emoji, /[\ud800-\udbff](?![\udc00-\udfff])/);
  });
});
