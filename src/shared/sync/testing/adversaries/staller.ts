// Item 7's staller: holds every message and claims them in reconciliation like an honest peer, but
// answers each GET_MSGS with a non-final MSGS carrying one envelope every 20 s (empty once it runs out)
// and never the last part. Before absolute deadlines this kept a victim at a few of 200 messages for
// as long as it liked, although an honest holder was linked: each part reset the request's timeout, and
// the catch-up waited for that request before reconciling with anyone else.
import { ControlAssembler, PeerKind, decodeFrame, encodeControl, parseControl } from '../../../protocol/peer';
import type { Envelope } from '../../../protocol/relay';
import type { PeerLink, PeerTransport } from '../../../transport/PeerTransport';
import { SyncSim } from '../SyncSim';
import { addVictim, attack, honestHolders, result } from './harness';
import type { AdversaryResult, AdversaryScenario } from './types';

/** How often the staller sends a part. */
const DRIBBLE_MS = 20_000;

interface Held {
  link: PeerLink;
  reqId: number;
  envs: Envelope[];
}

/** Wraps a peer's transport so that its MSGS answers are held back and dribbled out by `nudge`. */
export function stallerTransport(inner: PeerTransport): { transport: PeerTransport; nudge(): void; asked(): number } {
  const held: Held[] = [];
  let asked = 0;
  const wrap = (link: PeerLink): PeerLink => {
    const assembler = new ControlAssembler();
    return {
      get remotePeerId() {
        return link.remotePeerId;
      },
      get closed() {
        return link.closed;
      },
      send(frame) {
        const d = decodeFrame(frame);
        if (!d.ok || d.frame.kind !== PeerKind.MSGS) return link.send(frame);
        const whole = assembler.push(d.frame);
        if (whole === 'pending' || whole === null) return true;
        const body = parseControl(PeerKind.MSGS, whole);
        if (!body) return true;
        let h = held.find((x) => x.link === link && x.reqId === d.frame.reqId);
        if (!h) {
          asked++;
          held.push((h = { link, reqId: d.frame.reqId, envs: [] }));
        }
        h.envs.push(...body.envs);
        return true;
      },
      bufferedAmount: () => link.bufferedAmount(),
      onFrame: (h) => link.onFrame(h),
      onDrain: (h) => link.onDrain(h),
      onClose: (h) => link.onClose(h),
      close: (reason) => link.close(reason),
    };
  };
  return {
    transport: {
      get localPeerId() {
        return inner.localPeerId;
      },
      connect: async (remote, opts) => wrap(await inner.connect(remote, opts)),
      onLink: (handler) => inner.onLink((link) => handler(wrap(link))),
      close: () => inner.close(),
    },
    nudge() {
      for (const h of held) {
        if (h.link.closed) continue;
        const envs = h.envs.length > 0 ? [h.envs.shift()!] : [];
        for (const f of encodeControl(PeerKind.MSGS, h.reqId, { envs, missing: [], last: false })!) h.link.send(f);
      }
    },
    asked: () => asked,
  };
}

/** The scenario, with what the tests check beyond the result: how long it took, how often stallers were asked. */
export async function runStaller(seed: number): Promise<{ result: AdversaryResult; elapsedMs: number; stallerAsked: number }> {
  {
    const sim = await SyncSim.create({ seed });
    const all = await sim.fx.envelopes(200);
    const stallers: ReturnType<typeof stallerTransport>[] = [];
    // Two stallers and one honest holder: whichever the victim reconciles with first, the stallers
    // claim everything too.
    for (let i = 0; i < 2; i++) {
      let s: ReturnType<typeof stallerTransport> | undefined;
      const p = await sim.addPeer({
        start: false,
        // Its engine believes it answered; a staller keeps the link open instead of letting it idle out.
        tuning: { idleLinkMs: 24 * 60 * 60 * 1000 },
        wrap: (t) => {
          s = stallerTransport(t);
          return s.transport;
        },
      });
      stallers.push(s!);
      await p.engine.addMessages(all);
      await sim.start(p);
    }
    const honest = await honestHolders(sim, 1, all);
    await sim.net.settle();
    const victim = await addVictim(sim);
    await sim.start(victim.peer);
    const wanted = all.map((e) => e.id);
    let nextNudge = DRIBBLE_MS;
    const run = await attack(sim, {
      maxMs: 20 * 60 * 1000,
      stepMs: 1000,
      done: async () => (await victim.peer.store.hasMessages(wanted)).every(Boolean),
      each: (elapsed) => {
        if (elapsed < nextNudge) return;
        nextNudge += DRIBBLE_MS;
        for (const s of stallers) s.nudge();
      },
    });
    const r = await result(victim, honest, wanted, run);
    await sim.stopAll();
    return { result: r, elapsedMs: run.elapsedMs, stallerAsked: stallers.reduce((n, s) => n + s.asked(), 0) };
  }
}

export const scenario: AdversaryScenario = {
  name: 'staller',
  run: async (seed) => (await runStaller(seed)).result,
};
