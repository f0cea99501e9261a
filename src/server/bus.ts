// The relay's internal publish/subscribe seam (SPEC.md R8). Procedures publish here and never touch
// sockets; the EventHub subscribes and fans out to local `events` streams. A multi-instance backplane
// (Redis, NATS) implements the same interface without touching the procedures.
import type { Envelope, PresenceUser } from '../shared/protocol/relay';

export type PresenceChange =
  | { op: 'join' | 'update'; user: PresenceUser }
  | { op: 'leave'; sessionId: string };

export interface BusListener {
  /**
   * `json` is `JSON.stringify(envelope)`, made once by the publisher: a backplane sends it as is, and
   * fan-out splices it into batches without serializing again.
   */
  envelope(envelope: Envelope, json: string): void;
  presence(change: PresenceChange): void;
}

export interface RelayBus {
  /** `json` is `JSON.stringify(envelope)` when the publisher has it already (the minter makes it once). */
  publishEnvelope(envelope: Envelope, json?: string): void;
  publishPresence(change: PresenceChange): void;
  /** Returns the disposer. */
  subscribe(listener: BusListener): () => void;
}

/** Single-process bus: synchronous delivery; a throwing listener is isolated from the others. */
export function createInProcessBus(onListenerError: (err: unknown) => void = () => {}): RelayBus {
  const listeners = new Set<BusListener>();
  return {
    publishEnvelope(envelope, json = JSON.stringify(envelope)) {
      for (const l of listeners) {
        try {
          l.envelope(envelope, json);
        } catch (err) {
          onListenerError(err);
        }
      }
    },
    publishPresence(change) {
      for (const l of listeners) {
        try {
          l.presence(change);
        } catch (err) {
          onListenerError(err);
        }
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
