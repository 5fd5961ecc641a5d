// A Map whose oldest entry (insertion order) can be removed in O(1), for bounded tables that
// evict the oldest entry once full.
//
// `map.delete(map.keys().next().value)` is O(deleted entries): V8 leaves deleted entries in
// place until the table is rehashed, and a fresh iterator walks over all of them. On a table
// that keeps 100,000 entries by evicting the oldest, that cost 40 µs per eviction (the reference
// sandbox's table of applied actions slowed `npm start` by a third once it filled). One iterator
// kept across evictions has already passed the deleted entries: 0.9 µs.

export class OldestFirstMap<K, V> extends Map<K, V> {
  #oldest: MapIterator<[K, V]> | undefined;

  /** Removes and returns the oldest entry, or undefined when the map is empty. */
  shift(): [K, V] | undefined {
    if (this.size === 0) return undefined;
    // Every entry before the iterator's position was shifted out, so a live entry lies ahead of
    // it and it never runs out while the map has one (an iterator that once reports done would
    // stay done). Entries added later are appended, ahead of it too.
    this.#oldest ??= this.entries();
    const next = this.#oldest.next();
    const entry = next.value as [K, V];
    this.delete(entry[0]);
    return entry;
  }

  override clear(): void {
    super.clear();
    this.#oldest = undefined;
  }
}
