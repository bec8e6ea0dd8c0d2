/**
 * A bounded set of recently seen ids (FIFO eviction). The detection worker
 * uses it to drop an `event_id` delivered twice (a producer retry) before it
 * can count twice in a window; the alert book to drop a verdict republished
 * after a worker restart before it bumps an alert twice.
 */
export class RecentIds {
  private readonly set = new Set<string>();
  private readonly ring: (string | undefined)[];
  private next = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<string | undefined>(capacity);
  }

  has(id: string): boolean {
    return this.set.has(id);
  }

  /** Adds the id; returns false when it was already present. */
  add(id: string): boolean {
    if (this.set.has(id)) return false;
    const evicted = this.ring[this.next];
    if (evicted !== undefined) this.set.delete(evicted);
    this.ring[this.next] = id;
    this.next = (this.next + 1) % this.capacity;
    this.set.add(id);
    return true;
  }

  get size(): number {
    return this.set.size;
  }
}
