// Item 9's link hog: one user opens links from many sessions (peer ids that share its key prefix, P1)
// and fills each link's inbox: a request whose handler awaits the store, then as many 64 KiB frames as
// the link carries in one turn. Before the fix one user could hold all 32 links at 512 frames x 64 KiB
// each (~1 GiB). Now a user gets at most MAX_LINKS_PER_USER links, an inbox holds at most
// INBOX_MAX_BYTES, and the hog is dropped (FLOOD) when it passes that.
import { PEER_PROTOCOL_VERSION, PeerKind, encodeControl, encodeFrame } from '../../../protocol/peer';
import type { PeerLink, PeerTransport } from '../../../transport/PeerTransport';
import { MAX_FRAME_BYTES } from '../../../transport/PeerTransport';
import type { Envelope } from '../../../protocol/relay';
import { MemoryStore } from '../../../store/MemoryStore';
import { peerId } from '../fixtures';
import { INBOX_MAX_BYTES } from '../../Conn';
import { SyncSim } from '../SyncSim';
import { addVictim, attack, honestHolders, result } from './harness';
import type { AdversaryResult, AdversaryScenario } from './types';

/** Sessions of the hog's one user trying at once, and in all. */
const SESSIONS = 8;
const MAX_SESSIONS = 200;
const HOG_USER = 9000;
const HOG_PREFIX = peerId(HOG_USER).split('-')[0]!;
/** 64 KiB frames each hog link sends at once: 8 (512 KiB) more than an inbox holds (3 MiB). */
const BURST_FRAMES = Math.ceil(INBOX_MAX_BYTES / (MAX_FRAME_BYTES - 8)) + 8;

/** A MemoryStore whose message reads wait until the driver releases them (once per step). */
class GatedStore extends MemoryStore {
  gated = false;
  private waiters: (() => void)[] = [];
  override async getMessages(ids: readonly string[]): Promise<(Envelope | undefined)[]> {
    if (this.gated) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return super.getMessages(ids);
  }
  release(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

export async function runLinkHog(seed: number): Promise<{ result: AdversaryResult; sessions: number; flooded: number; maxOpenLinks: number }> {
  // Fast links: one turn carries a whole burst, so the inbox really fills before the handler runs.
  const sim = await SyncSim.create({ seed, bytesPerTurn: 4 * 1024 * 1024 });
  const all = await sim.fx.envelopes(200);
  const honest = await honestHolders(sim, 1, all);
  await sim.net.settle();
  // The victim's store answers reads a turn late (IndexedDB under load): its handlers lag its links.
  const store = new GatedStore({ now: () => sim.clock.now() });
  const victim = await addVictim(sim, { store });
  await sim.start(victim.peer);
  store.gated = true;
  // A control kind whose body is read only when handled: unasked CHUNK/HASHES frames are refused on
  // arrival (G8, G11) and never wait in the inbox, so the inbox bound is tested with requests.
  const junk = encodeFrame(PeerKind.OFFER, 1, new Uint8Array(MAX_FRAME_BYTES - 8).fill(7));
  // HELLO, a request the victim's (slow) store answers a turn later, then 64 KiB frames as fast as the
  // link takes them (it refuses above its high-water mark; the hog goes on after each drain).
  const flood = (link: PeerLink): void => {
    for (const f of encodeControl(PeerKind.HELLO, 0, { protocol: PEER_PROTOCOL_VERSION })!) link.send(f);
    for (const f of encodeControl(PeerKind.GET_MSGS, 1, { ids: [all[0]!.id] })!) link.send(f);
    let sent = 0;
    const more = (): void => {
      while (sent < BURST_FRAMES && !link.closed && link.send(junk)) sent++;
    };
    link.onDrain(more);
    more();
  };
  // Hog links the victim accepted (and dropped for flooding) vs refused at the door.
  const flooded = new Set<string>();
  victim.peer.engine.on('peerDropped', (e) => {
    if (e.peerId.startsWith(HOG_PREFIX) && e.reason === 'FLOOD') flooded.add(e.peerId);
  });
  // Each attempt is a fresh login of the same user: a new peer id, so a ban on one id does not stop it.
  let made = 0;
  const live = new Set<PeerLink>();
  const accepted = new Set<PeerLink>();
  let maxOpen = 0;
  let connecting = 0;
  const wanted = all.map((e) => e.id);
  const run = await attack(sim, {
    maxMs: 30_000,
    done: async () => false,
    each: () => {
      store.release();
      for (const l of live) if (l.closed) live.delete(l);
      let open = 0;
      for (const l of accepted) if (!l.closed) open++;
      maxOpen = Math.max(maxOpen, open);
      while (live.size + connecting < SESSIONS && made < MAX_SESSIONS) {
        const raw = sim.addRaw('browser', peerId(HOG_USER, `hog${(made++).toString(36)}`));
        connecting++;
        raw.transport.connect(victim.peer.id).then(
          (link) => {
            connecting--;
            live.add(link);
            // The victim says HELLO on a link it accepts, only BYE on one it refuses.
            link.onFrame((bytes) => {
              if (bytes[1] === PeerKind.HELLO) accepted.add(link);
            });
            flood(link);
          },
          () => connecting--,
        );
      }
    },
  });
  store.gated = false;
  store.release();
  const r = await result(victim, honest, wanted, run);
  await sim.stopAll();
  return { result: r, sessions: made, flooded: flooded.size, maxOpenLinks: maxOpen };
}

export const scenario: AdversaryScenario = {
  name: 'link hog',
  run: async (seed) => (await runLinkHog(seed)).result,
};
