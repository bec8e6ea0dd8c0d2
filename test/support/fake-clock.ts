import type { SchedulerClock } from '../../export/scheduler.js';

/** A scheduler clock whose timers fire only when the test moves time forward, so minutes of backoff take no wall time. */
export class FakeClock implements SchedulerClock {
  #timers = new Map<number, { at: number; run: () => void }>();
  #ids = 0;
  constructor(public time: number) {}
  now(): number {
    return this.time;
  }
  setTimeout(run: () => void, ms: number): unknown {
    const id = ++this.#ids;
    this.#timers.set(id, { at: this.time + ms, run });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  /** The earliest timer's time, or null. */
  nextTimerAt(): number | null {
    const times = [...this.#timers.values()].map((t) => t.at);
    return times.length === 0 ? null : Math.min(...times);
  }
  /** Moves to the earliest timer and fires it (its run awaited via `settle`); returns the new time. */
  async fireNext(settle: () => Promise<void>): Promise<number> {
    const next = this.#earliest(Infinity);
    if (next === undefined) throw new Error('no timer armed');
    await this.#fire(next, settle);
    return this.time;
  }
  /** Moves to `time`, firing due timers in order (each one's run awaited via `settle`). */
  async advanceTo(time: number, settle: () => Promise<void>): Promise<void> {
    for (let due = this.#earliest(time); due !== undefined; due = this.#earliest(time)) await this.#fire(due, settle);
    this.time = time;
  }
  #earliest(notAfter: number): [number, { at: number; run: () => void }] | undefined {
    return [...this.#timers.entries()].filter(([, t]) => t.at <= notAfter).sort((a, b) => a[1].at - b[1].at)[0];
  }
  async #fire([id, timer]: [number, { at: number; run: () => void }], settle: () => Promise<void>): Promise<void> {
    this.#timers.delete(id);
    this.time = Math.max(this.time, timer.at);
    timer.run();
    await settle();
  }
}
