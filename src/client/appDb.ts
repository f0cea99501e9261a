// The app's own small IndexedDB database (not the history): the identity, the relay keys pinned on first
// contact, and per-channel read markers. Kept apart from the history database so that clearing or
// rebuilding the history can never touch the identity.
import { Dexie, type Table } from 'dexie';

export const APP_DB_NAME = 'peerchat-app';

export interface IdentityRow {
  /** Always 'self': one identity per browser profile. */
  id: 'self';
  /** 32-byte Ed25519 seed. */
  secretKey: Uint8Array;
  publicKey: string;
  name: string;
  createdAt: number;
}

export interface PinRow {
  /** The relay's origin, e.g. `https://chat.example.org`. */
  origin: string;
  publicKey: string;
  fingerprint: string;
  pinnedAt: number;
}

export interface ReadRow {
  channel: string;
  /** Id of the newest envelope the user has seen in this channel; '' when none. */
  lastReadId: string;
}

/** The last display name seen for a key in presence: envelopes carry keys, not names. */
export interface NameRow {
  publicKey: string;
  name: string;
  fingerprint: string;
  kind: 'browser' | 'virtual';
  seenAt: number;
}

export class AppDb extends Dexie {
  names!: Table<NameRow, string>;
  identity!: Table<IdentityRow, string>;
  pins!: Table<PinRow, string>;
  reads!: Table<ReadRow, string>;
  constructor(name = APP_DB_NAME) {
    super(name);
    // Schema history: never edit a released version, add version(n + 1).
    this.version(1).stores({ identity: 'id', pins: 'origin', reads: 'channel', names: 'publicKey' });
  }
}

let shared: AppDb | null = null;
export const appDb = (): AppDb => (shared ??= new AppDb());
