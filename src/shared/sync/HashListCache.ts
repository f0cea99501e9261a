// Chunk-hash lists of attachments this peer serves (SPEC.md G8): computing one reads the whole content,
// so it is done once per attachment and kept, not redone for every GET_HASHES. Bounded by bytes, the
// least recently used list goes first.

/**
 * Bytes of hash lists kept (32 B per 16 KiB chunk): 32 lists of 16 MiB attachments, or ~1,000 of
 * 512 KiB ones. Each entry also counts ENTRY_OVERHEAD_BYTES, which bounds the entry count.
 */
export const HASH_LIST_CACHE_BYTES = 1024 * 1024;
const ENTRY_OVERHEAD_BYTES = 64;

export class HashListCache {
  private readonly lists = new Map<string, Uint8Array>();
  private used = 0;

  constructor(private readonly maxBytes: number = HASH_LIST_CACHE_BYTES) {}

  get bytes(): number {
    return this.used;
  }
  get size(): number {
    return this.lists.size;
  }

  get(id: string): Uint8Array | undefined {
    const hashes = this.lists.get(id);
    if (hashes) {
      // Map order is the recency order: move it to the newest end.
      this.lists.delete(id);
      this.lists.set(id, hashes);
    }
    return hashes;
  }

  set(id: string, hashes: Uint8Array): void {
    this.delete(id);
    const cost = hashes.length + ENTRY_OVERHEAD_BYTES;
    if (cost > this.maxBytes) return;
    while (this.used + cost > this.maxBytes) this.delete(this.lists.keys().next().value!);
    this.lists.set(id, hashes);
    this.used += cost;
  }

  delete(id: string): void {
    const hashes = this.lists.get(id);
    if (!hashes) return;
    this.lists.delete(id);
    this.used -= hashes.length + ENTRY_OVERHEAD_BYTES;
  }

  clear(): void {
    this.lists.clear();
    this.used = 0;
  }
}
