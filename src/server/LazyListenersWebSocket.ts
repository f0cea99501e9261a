// The base of the relay's server-side WebSocket classes (RelaySocket, SignalSocket): a ws `WebSocket` that
// has no listener table until something listens. Both classes take their socket's events in `emit` (shared
// hook functions, no listeners), yet EventEmitter's constructor gives every instance a `{ __proto__: null }`
// table, which V8 keeps as a dictionary: ~0.2 KiB per socket, two sockets per client (bench:relay heap
// snapshot at 1,000 clients, SPEC.md R18). EventEmitter itself treats an absent table as empty and makes one
// on the first `on`/`once` (as for a subclass that skips its constructor), so a socket that is given a
// listener (a refused /peerjs socket's timer, a test) still gets one.
import { WebSocket } from 'ws';

export class LazyListenersWebSocket extends WebSocket {
  // Any of ws's constructor overloads: ws's server passes (null, undefined, options), forwarded as they are.
  constructor(...args: any[]) {
    super(...(args as ConstructorParameters<typeof WebSocket>));
    (this as unknown as { _events: object | undefined })._events = undefined;
  }
}
