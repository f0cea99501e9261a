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
  /** Max attachment size: 64 MiB = 4096 chunks of 16 KiB. */
  maxAttachmentBytes: 64 * 1024 * 1024,
  /** Max decoded thumbnail bytes carried in signed attachment metadata. */
  maxThumbnailBytes: 8 * 1024,
  /** Peer transfer chunk size; the chunk-hash list commits to chunks of exactly this size. */
  chunkBytes: 16 * 1024,
  maxNameLength: 64,
  maxChannels: 64,
} as const;
