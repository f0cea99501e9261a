// The relay protocol's hard limits, apart from relay.ts so that a view showing a bound (the composer's
// text limit) does not load the zod schemas with it: the first paint's chunk stays without zod. relay.ts
// re-exports them; this is their one definition.
/** Hard protocol limits. The relay publishes its effective values in ServerInfo.limits. */
export const LIMITS = {
  /** Max WebSocket frame the relay accepts (ws maxPayload). */
  maxFrameBytes: 256 * 1024,
  /**
   * Most requests of one frame the relay runs (a batch array); the rest are refused TOO_MANY_REQUESTS one by
   * one and the socket is kept (SPEC.md R10). wsLink sends every call queued in one tick as one frame.
   */
  maxRequestsPerFrame: 32,
  /** Max message text, in UTF-16 code units. */
  maxTextLength: 4000,
  maxAttachmentsPerMessage: 4,
  /**
   * The protocol's ceiling on attachment size: 64 MiB = 4096 chunks of 16 KiB (schemas, peer wire). A relay
   * mints at most its own, lower cap, `ServerInfo.limits.maxAttachmentBytes` (SPEC.md A5): read that one.
   */
  maxAttachmentBytes: 64 * 1024 * 1024,
  /** Max decoded thumbnail bytes carried in signed attachment metadata. */
  maxThumbnailBytes: 8 * 1024,
  /**
   * Max decoded placeholder bytes (a ThumbHash is 25-35) in signed attachment metadata (SPEC.md A6). Unlike
   * a thumbnail it is small enough that a photo costs the relay well under 8 KiB whatever its size (issue 9).
   */
  maxPlaceholderBytes: 64,
  /** Peer transfer chunk size; the chunk-hash list commits to chunks of exactly this size. */
  chunkBytes: 16 * 1024,
  maxNameLength: 64,
  maxChannels: 64,
  /**
   * Members per presence page (SPEC.md P9): a stream is shown one page of the online sessions in
   * `comparePresence` order, not the whole roster, so a login storm of N costs N x this, not N x N.
   */
  presencePageSize: 50,
  /** Most user keys one connection may watch outside its page (SPEC.md P10): authors in view, itself. */
  maxPresenceWatch: 256,
  /** Peers in the random sample each presence stream is given to link to (SPEC.md P11). */
  presenceSampleSize: 16,
  /** Highest page a client may ask for: 10,000 x 50 = 500k sessions, far above any one relay. */
  maxPresencePage: 10_000,
} as const;

export const VOICE_LIMITS = {
  /**
   * People in one room. A full mesh: each member holds maxMembers - 1 calls, which is what a phone's
   * uplink and CPU bear for audio (8 = 7 Opus streams up and 7 down). Stated in the UI ("Up to 8 people").
   */
  maxMembers: 8,
} as const;
