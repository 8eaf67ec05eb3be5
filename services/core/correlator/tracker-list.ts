// An insertion-ordered set of a host's device trackers, as a Set keeps them, without the hash table a Set
// reallocates each time it empties and fills again (a host's locked devices go 0 → 1 → 0 at every episode). Items
// are numbered by their host (DeviceTracker.index); a removed item leaves a hole that iteration skips, and holes are
// compacted away at an add once they outnumber the members: amortised O(1) per add and delete. Pure.

export class TrackerList<T extends { readonly index: number }> {
  /** [0, used): members and holes; the array only grows (truncating it would free its storage, to be allocated again
   * at the next add). */
  private items: (T | null)[] = [];
  private used = 0;
  /** Position in `items` by item index; -1: not a member. */
  private slot = new Int32Array(8).fill(-1);
  private holes = 0;
  size = 0;

  has(t: T): boolean { return t.index < this.slot.length && this.slot[t.index]! >= 0; }

  add(t: T): void {
    if (this.has(t)) return;
    if (t.index >= this.slot.length) {
      const wider = new Int32Array(Math.max(this.slot.length * 2, t.index + 1)).fill(-1);
      wider.set(this.slot);
      this.slot = wider;
    }
    if (this.holes > 16 && this.holes > this.size) this.compact();
    this.slot[t.index] = this.used;
    if (this.used === this.items.length) this.items.push(t); else this.items[this.used] = t;
    this.used++;
    this.size++;
  }

  /** Safe while iterating (the item's place becomes a hole). */
  delete(t: T): void {
    if (!this.has(t)) return;
    this.items[this.slot[t.index]!] = null;
    this.slot[t.index] = -1;
    this.size--;
    this.holes++;
    if (this.size === 0) { this.used = 0; this.holes = 0; } // every entry of [0, used) is a hole now
  }

  clear(): void {
    for (let k = 0; k < this.used; k++) { const t = this.items[k]; if (t) { this.slot[t.index] = -1; this.items[k] = null; } }
    this.used = 0;
    this.size = 0;
    this.holes = 0;
  }

  /** Members in the order they were added (an item added during the iteration is visited too, unless every member
   * was deleted meanwhile: the host adds none while it iterates). */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let k = 0; k < this.end; k++) { const t = this.at(k); if (t) yield t; }
  }

  /** The same walk without an iterator object, for the host's per-batch loops: `for (k = 0; k < list.end; k++)` over
   * `at(k)`, skipping nulls (holes); deleting the visited member is safe. */
  get end(): number { return this.used; }
  at(k: number): T | null { return this.items[k]!; }

  private compact(): void {
    let n = 0;
    for (let k = 0; k < this.used; k++) { const t = this.items[k]; if (t) { this.slot[t.index] = n; this.items[n++] = t; } }
    for (let k = n; k < this.used; k++) this.items[k] = null;
    this.used = n;
    this.holes = 0;
  }
}
