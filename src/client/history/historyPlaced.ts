// The moment the page first shows history in place (the message list positioned, MessageList.tsx). The
// client core's start (engine index load, relay login, PeerJS, the verify workers) waits for it: started at
// the first idle moment instead, it ran between the list's placement frames and pushed the first placed
// message back (a navigation trace of a 10,000-message channel showed the WebSocket, RTCPeerConnection and
// device enumeration inside those frames).

let resolvePlaced: () => void = () => {};
const placed = new Promise<void>((resolve) => {
  resolvePlaced = resolve;
});

/** Called by the message list once it has placed its rows and shown them; later calls do nothing. */
export function markHistoryPlaced(): void {
  resolvePlaced();
}

/**
 * Resolves once history has been placed, or after `maxMs` (a channel with nothing to show never places a
 * list; the client must start anyway).
 */
export function historyPlaced(maxMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, maxMs);
    void placed.then(() => {
      clearTimeout(timer); // a timer left behind would hold its page (or a test process) for maxMs
      resolve();
    });
  });
}
