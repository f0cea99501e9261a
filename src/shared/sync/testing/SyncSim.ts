// The sync simulator: N SyncEngines with MemoryStores on one SimNetwork and one ManualClock, driven in
// gossip rounds (advance the clock one gossip interval, then let the network settle). Used by the
// engine tests and by bench/gossip.bench.ts, so both measure the same code the apps run.
import { jsDigest } from '../../crypto/hash';
import { MemoryStore } from '../../store/MemoryStore';
import type { ClientKind } from '../../protocol/relay';
import type { EnvelopeVerifier } from '../../protocol/signed';
import type { PeerTransport } from '../../transport/PeerTransport';
import { SYNC_DEFAULTS, SyncEngine, type SyncTuning } from '../SyncEngine';
import type { RosterPeer } from '../SyncContext';
import { type SyncFixtures, createSyncFixtures, peerId } from './fixtures';
import { ManualClock } from './ManualClock';
import { SimNetwork, type SimNetworkOptions } from './SimNetwork';
import { type Prng, createPrng } from '../prng';

export interface SimPeer {
  id: string;
  kind: ClientKind;
  engine: SyncEngine;
  store: MemoryStore;
  transport: PeerTransport;
  online: boolean;
}

export interface SyncSimOptions extends SimNetworkOptions {
  seed?: number;
  /** Tuning for every engine (each addPeer may override). */
  tuning?: SyncTuning;
}

export class SyncSim {
  readonly net: SimNetwork;
  readonly clock = new ManualClock();
  readonly peers = new Map<string, SimPeer>();
  /** Roster entries of peers that are not engines (adversaries speaking raw frames). */
  readonly extras = new Map<string, RosterPeer>();
  fx!: SyncFixtures;
  /** Background failures the engines reported (stopAll fails the test if any). */
  readonly errors: { peer: string; where: string; err: unknown }[] = [];
  private readonly seed: number;
  private readonly tuning: SyncTuning;
  private nextIndex = 0;
  private driver: Prng | null = null;

  private constructor(opts: SyncSimOptions) {
    this.net = new SimNetwork(opts);
    this.seed = opts.seed ?? 1;
    this.tuning = opts.tuning ?? {};
  }

  static async create(opts: SyncSimOptions = {}): Promise<SyncSim> {
    const sim = new SyncSim(opts);
    sim.fx = await createSyncFixtures(() => sim.clock.now(), sim.seed);
    return sim;
  }

  /** The driver's own seeded randomness (who leaves, which ids go missing). */
  rng(): Prng {
    return (this.driver ??= createPrng(this.seed ^ 0x5eed));
  }

  get intervalMs(): number {
    return this.tuning.gossipIntervalMs ?? SYNC_DEFAULTS.gossipIntervalMs;
  }

  /** Creates a peer; unless start: false, it starts at once and everyone learns the new roster. */
  async addPeer(
    opts: {
      kind?: ClientKind;
      tuning?: SyncTuning;
      start?: boolean;
      /**
       * With start: false, list the peer in presence now anyway, before its engine starts (a login is
       * announced before its engine is listening; peers may link to it while it loads, G5 / item 13).
       */
      announce?: boolean;
      store?: MemoryStore;
      /** How the peer verifies envelopes (a test watching or pacing verification). @default the engine's */
      verifyEnvelopes?: EnvelopeVerifier;
      /** Wraps the peer's transport (an adversary bending what it sends). */
      wrap?: (t: PeerTransport) => PeerTransport;
    } = {},
  ): Promise<SimPeer> {
    const i = this.nextIndex++;
    const id = peerId(i);
    const transport = opts.wrap ? opts.wrap(this.net.add(id)) : this.net.add(id);
    const store = opts.store ?? new MemoryStore({ now: () => this.clock.now() });
    const engine = new SyncEngine({
      store,
      crypto: this.fx.backend,
      digest: jsDigest,
      relayKey: this.fx.relayKey,
      transport,
      selfKind: opts.kind ?? 'browser',
      clock: this.clock,
      seed: this.seed * 7919 + i,
      onError: (err, where) => this.errors.push({ peer: id, where, err }),
      ...(opts.verifyEnvelopes ? { verifyEnvelopes: opts.verifyEnvelopes } : {}),
      ...this.tuning,
      ...opts.tuning,
    });
    // Not in the roster until started (or announced): nobody links to an engine that is not listening yet.
    const peer: SimPeer = { id, kind: opts.kind ?? 'browser', engine, store, transport, online: false };
    this.peers.set(id, peer);
    if (opts.start !== false) await this.start(peer);
    else if (opts.announce) this.announce(peer);
    return peer;
  }

  /** Lists a peer in presence without starting its engine: others may link to it from now on. */
  announce(peer: SimPeer): void {
    peer.online = true;
    this.publishRoster();
  }

  /**
   * A raw transport on the network for a hand-written (adversarial) peer, listed in the roster. `id`
   * picks its peer id: several sessions of one user share the key prefix (peerId(i, tag), SPEC.md P1).
   */
  addRaw(kind: ClientKind = 'browser', id: string = peerId(this.nextIndex++)): { id: string; transport: PeerTransport } {
    const transport = this.net.add(id);
    this.extras.set(id, { peerId: id, kind, userId: `user-${id}` });
    this.publishRoster();
    return { id, transport };
  }

  async start(peer: SimPeer): Promise<void> {
    peer.online = true;
    this.publishRoster();
    await peer.engine.start();
  }

  roster(): RosterPeer[] {
    const out: RosterPeer[] = [...this.extras.values()].filter((p) => this.net.isOnline(p.peerId));
    for (const p of this.peers.values()) if (p.online) out.push({ peerId: p.id, kind: p.kind, userId: `user-${p.id}` });
    return out;
  }

  /** What presence would do: every online engine learns the current roster. */
  publishRoster(): void {
    const roster = this.roster();
    for (const p of this.peers.values()) if (p.online) p.engine.setRoster(roster);
  }

  /** A peer vanishes (its links die on both ends), as a closed tab would. */
  async leave(peer: SimPeer): Promise<void> {
    peer.online = false;
    await this.net.leave(peer.id);
    await peer.engine.stop();
    this.publishRoster();
  }

  /** One gossip round: timers due within one interval fire, then the network settles. */
  async round(onStep?: (step: number) => void): Promise<number> {
    this.clock.advance(this.intervalMs);
    return this.net.settle({ onStep });
  }

  async stopAll(): Promise<void> {
    for (const p of this.peers.values()) {
      await p.engine.stop();
      await p.store.close();
    }
    for (const p of this.peers.values()) await this.net.leave(p.id);
    for (const id of this.extras.keys()) await this.net.leave(id);
    await this.net.settle();
    const failures = [...this.errors, ...this.net.errors.map((err) => ({ peer: '?', where: 'transport handler', err }))];
    if (failures.length > 0) {
      throw new Error(`background failures: ${failures.map((f) => `${f.peer} ${f.where}: ${String(f.err)}`).join('; ')}`);
    }
  }
}
