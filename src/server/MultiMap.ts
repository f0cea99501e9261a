// A map from a key to a set of values that stores a lone value as itself and a few values as an array.
// Presence keeps several such indexes per online client (sessions per key, streams per watched key, per
// sampled session, per connection). Nearly every key holds one value, where a `Set` for it costs ~150
// bytes (the object and its smallest hash table) for a pointer already held elsewhere: at 1,000 clients
// that was ~1 KiB per client (bench:relay heap snapshot: 4,000 one-entry Sets under PresenceFanout). The
// samplers index holds ~16 values per key (each stream samples 16 sessions): as a Set ~0.55 KiB per client,
// as an array ~0.2 KiB. Past ARRAY_MAX values a key gets a Set, so a key held by thousands (a popular
// author's watchers) still adds and deletes in O(1).

/** Most values a key keeps in an array (each add and delete scans it); beyond, a Set. */
const ARRAY_MAX = 32;

export class MultiMap<K, V> {
  // V must never itself be an Array or a Set: those are the stored forms of two or more values.
  private readonly map = new Map<K, V | V[] | Set<V>>();

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
    return v === undefined ? 0 : v instanceof Set ? v.size : Array.isArray(v) ? v.length : 1;
  }

  /**
   * The values of `key`: a snapshot array for a lone value, else the live array or Set (do not change this
   * key while iterating).
   */
  get(key: K): Iterable<V> {
    const v = this.map.get(key);
    return v === undefined ? [] : v instanceof Set || Array.isArray(v) ? v : [v as V];
  }

  add(key: K, value: V): void {
    const v = this.map.get(key);
    if (v === undefined) this.map.set(key, value);
    else if (v instanceof Set) v.add(value);
    else if (Array.isArray(v)) {
      if (v.includes(value)) return;
      if (v.length < ARRAY_MAX) v.push(value);
      else this.map.set(key, new Set([...v, value]));
    } else if (v !== value) this.map.set(key, [v as V, value]);
  }

  delete(key: K, value: V): void {
    const v = this.map.get(key);
    if (v === undefined) return;
    if (v instanceof Set) {
      v.delete(value);
      // Back to an array once it is half that bound: a key that once held many must not keep its table.
      if (v.size <= ARRAY_MAX / 2) this.map.set(key, [...v]);
      return;
    }
    if (!Array.isArray(v)) {
      if (v === value) this.map.delete(key);
      return;
    }
    const at = v.indexOf(value);
    if (at < 0) return;
    v.splice(at, 1);
    if (v.length === 1) this.map.set(key, v[0]!); // back to the lone form
  }

  /** Drops `key` and all its values. */
  deleteKey(key: K): void {
    this.map.delete(key);
  }
}
