// Turns a verified post into a countersigned envelope (SPEC.md M3, R5, R6): relay-minted ULID and timestamp,
// the hash link to the channel's previous envelope in this epoch, and the relay's signature.
import { randomFillSync } from 'node:crypto';
import { decodeTime, monotonicFactory } from 'ulidx';
import type { Ed25519Backend } from '../shared/crypto/ed25519';
import type { Envelope, Post } from '../shared/protocol/relay';
import { countersign, postDigest } from '../shared/protocol/signed';

/**
 * Monotonic ULIDs with `ts` read back from the id, so id order and timestamp order can never disagree,
 * even if the wall clock steps back (the factory then keeps the last time and increments).
 */
export function createIdMinter(now: () => number = Date.now): () => { id: string; ts: number } {
  const ulid = monotonicFactory(pooledRandom());
  return () => {
    const id = ulid(now());
    return { id, ts: decodeTime(id) };
  };
}

/**
 * ulidx's default PRNG makes one `randomFillSync` call per character (16 per new millisecond), ~2.6% of
 * the relay's CPU under a post stream (bench:relay profile). The same CSPRNG, drawn from a pool refilled
 * once per 1,024 numbers (a fixed 4 KiB buffer).
 */
function pooledRandom(): () => number {
  const pool = new Uint32Array(1024);
  let next = pool.length;
  return () => {
    if (next === pool.length) {
      randomFillSync(pool);
      next = 0;
    }
    return pool[next++]! / 2 ** 32; // in [0, 1), as a PRNG for ulidx must be
  };
}

/**
 * A countersigned envelope and its JSON, made once: the bus fans that text out and the poster's reply
 * splices it in (trpcWsAdapter's fast path), so a post is serialized once, not once per use.
 */
export class Minted {
  readonly #env: Envelope | null;

  constructor(
    env: Envelope,
    readonly json: string,
    /** The post held only JSON values (input without superjson meta): `json` is the envelope's exact serialized form. */
    readonly exact: boolean,
  ) {
    // The idempotency map (SPEC.md R4) holds every minted post for up to 10 minutes or 10,000 posts. An
    // exact envelope is its JSON, so only that flat string is kept: the object graph (envelope, post, prev,
    // a dozen strings) was traced and copied by every scavenge until promoted, and then by every old-space
    // mark -- most of the relay's GC under a post stream (bench:relay profile).
    this.#env = exact ? null : env;
  }

  /** The envelope; for an exact one parsed back from `json` (equal to the one minted), on the rare use. */
  get env(): Envelope {
    return this.#env ?? (JSON.parse(this.json) as Envelope);
  }
}

interface ChannelChain {
  last: { id: string; hash: string } | null;
  /** Serializes minting per channel: `prev` needs the previous envelope's signature. */
  tail: Promise<unknown>;
}

export class EnvelopeMinter {
  private readonly chains = new Map<string, ChannelChain>();

  constructor(
    private readonly opts: {
      backend: Ed25519Backend;
      secretKey: Uint8Array;
      relayKey: string;
      /** This relay run's id: `prev` chains restart at null in each epoch. */
      epoch: string;
      mintId: () => { id: string; ts: number };
      /** Called in chain order, so subscribers see a channel's envelopes in `prev` order. `json` is the envelope's JSON. */
      publish: (env: Envelope, json: string) => void;
    },
  ) {}

  /**
   * `digest` is `postDigest(post)`, passed by a caller that computed it already (the idempotency key).
   * `authorName`: the name the author's session logged in with, which the relay verified (SPEC.md M7).
   */
  mint(post: Post, digest: string = postDigest(post), exact = false, authorName?: string): Promise<Minted> {
    let chain = this.chains.get(post.channel);
    if (!chain) this.chains.set(post.channel, (chain = { last: null, tail: Promise.resolve() }));
    const c = chain;
    const result = c.tail.then(async () => {
      // Minted inside the chain, so within a channel id order == chain order == publish order.
      const { id, ts } = this.opts.mintId();
      // The one place an envelope's fields are assembled: a new signed field goes here and in envelopeFields.
      const { env, hash } = await countersign(
        this.opts.backend,
        this.opts.secretKey,
        { id, ts, epoch: this.opts.epoch, prev: c.last, post, ...(authorName === undefined ? {} : { authorName }), relay: this.opts.relayKey },
        digest,
      );
      c.last = { id: env.id, hash };
      const json = JSON.stringify(env);
      this.opts.publish(env, json);
      return new Minted(env, json, exact);
    });
    // A failed signing must not wedge the channel.
    c.tail = result.catch(() => undefined);
    return result;
  }
}
