// An Ed25519 identity kept in a file: the relay's local-mode key and each virtual client's key. Node only
// (node:fs); browsers keep their key in IndexedDB.
//
// Format: one JSON object `{"secretKey": "<base64url 32-byte seed>"}` plus a newline. Created once with
// mode 0600 (the seed is a secret) and flag 'wx' (never overwrite: a second process that lost the race
// reads the winner's key instead of replacing it, so every party keeps the identity it first got).
//
// Import it as `keyFile.node.js`: without the extension Node's resolver (under tsx) reads `.node` as a
// native addon and fails; TypeScript and esbuild map `.js` back to this file.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fromB64url, toB64url } from '../encoding';

export interface KeyFile {
  /** 32-byte Ed25519 seed. */
  secretKey: Uint8Array;
  /** True when this call generated the key and wrote the file. */
  created: boolean;
  path: string;
}

/** A key file that exists but cannot be used. `code` is stable; the message names the file and the problem. */
export class KeyFileError extends Error {
  readonly code = 'BAD_KEY_FILE' as const;
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path} ${problem}`);
    this.name = 'KeyFileError';
  }
}

/** Reads the seed out of a key file's text; throws KeyFileError naming `path`. */
export function parseKeyFile(text: string, path: string): Uint8Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new KeyFileError(path, 'is not valid JSON');
  }
  const seed = (parsed as { secretKey?: unknown } | null)?.secretKey;
  if (typeof seed !== 'string') throw new KeyFileError(path, 'has no "secretKey"');
  const bytes = fromB64url(seed.trim());
  if (!bytes || bytes.length !== 32) throw new KeyFileError(path, 'must hold a base64url-encoded 32-byte Ed25519 seed');
  return bytes;
}

function readIfExists(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * The key in `path`, generating and writing it (0600, parent directories 0700) when the file does not
 * exist. An existing file is never rewritten, even when it is unusable: that is a KeyFileError for a human.
 */
export function loadOrCreateKeyFile(path: string): KeyFile {
  const text = readIfExists(path);
  if (text !== null) return { secretKey: parseKeyFile(text, path), created: false, path };
  const secretKey = new Uint8Array(randomBytes(32));
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(path, `${JSON.stringify({ secretKey: toB64url(secretKey) })}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process created it between our read and our write: its key wins.
    const theirs = readIfExists(path);
    if (theirs === null) throw err;
    return { secretKey: parseKeyFile(theirs, path), created: false, path };
  }
  return { secretKey, created: true, path };
}
