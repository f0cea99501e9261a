// A map from a key to a set of values that stores a lone value as itself. Presence keeps several such
// indexes per online client (sessions per key, streams per watched key, per sampled session, per
// connection), and nearly every key holds one value: a `Set` for it costs ~150 bytes (the object and
// its smallest hash table) where the value itself is a pointer already held elsewhere. At 1,000 clients
// that was ~1 KiB per client (bench:relay heap snapshot: 4,000 one-entry Sets under PresenceFanout).

export class MultiMap<K, V> {
  // A Set only once a key holds two or more values; V must never itself be a Set.
  private readonly map = new Map<K, V | Set<V>>();

  /** Keys with at least one value. */
  get size(): number {
    return this.map.size;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** How many values `key` holds. */
  count(key: K): number {
    const v = this.map.get(key);
    return v === undefined ? 0 : v instanceof Set ? v.size : 1;
  }

  /** The values of `key`: a snapshot array for a lone value, else the live Set (do not change it while iterating). */
  get(key: K): Iterable<V> {
    const v = this.map.get(key);
    return v === undefined ? [] : v instanceof Set ? v : [v];
  }

  add(key: K, value: V): void {
    const v = this.map.get(key);
    if (v === undefined) this.map.set(key, value);
    else if (v instanceof Set) v.add(value);
    else if (v !== value) this.map.set(key, new Set([v, value]));
  }

  delete(key: K, value: V): void {
    const v = this.map.get(key);
    if (v === undefined) return;
    if (!(v instanceof Set)) {
      if (v === value) this.map.delete(key);
      return;
    }
    v.delete(value);
    // Back to the lone form: a key that once held many must not keep a table it no longer needs.
    if (v.size === 1) this.map.set(key, v.values().next().value!);
  }

  /** Drops `key` and all its values. */
  deleteKey(key: K): void {
    this.map.delete(key);
  }
}
