export interface AdversaryResult {
  /** Share of honest peers' wanted items (messages or attachment) delivered, 0..1. */
  honestDelivery: number;
  /** Bans the victim put on honest peers (must be 0). */
  honestBans: number;
  /** Peak bytes the victim held for the attacker's sake (inboxes, sessions, buffers), as the engine accounts them. */
  victimPeakBytes: number;
  /** Victim CPU milliseconds per second of attack (process.cpuUsage around the victim's handlers, or the sim's accounting). */
  victimCpuMsPerAttackSecond: number;
}
export interface AdversaryScenario {
  name: string;
  run(seed: number): Promise<AdversaryResult>;
}
