import { isRetriableError, StorageError } from './errors.js';

/** Backoff between attempts at one failing batch. */
export interface RetryOptions {
  /** Delay before the second attempt; doubles per attempt. @default 100 */
  initialDelayMs?: number;
  /** Ceiling of the delay between attempts. @default 10_000 */
  maxDelayMs?: number;
  /**
   * Attempts per batch before it is abandoned, first attempt included.
   * Retriable failures normally mean the database is away for a while, and
   * backpressure already stops intake, so the default never gives up.
   * @default Infinity
   */
  maxAttempts?: number;
}

/** What {@link BatchWriterOptions.onError} is told about a failed attempt. */
export interface InsertErrorInfo<T> {
  error: unknown;
  /** 1 for the first attempt. */
  attempt: number;
  rows: readonly T[];
  /** Delay before the next attempt, or null when the batch is abandoned. */
  retryInMs: number | null;
}

/** Options of {@link BatchWriter}; validated in the constructor. */
export interface BatchWriterOptions<T> {
  /** Writes one batch durably; rejects to have it retried or abandoned. */
  insert: (rows: readonly T[]) => Promise<void>;
  /** A batch is cut as soon as this many rows are buffered. @default 1000 */
  maxRows?: number;
  /** A batch is cut this long after the first row entered an empty buffer. @default 1000 */
  maxDelayMs?: number;
  /**
   * Rows held (buffered, queued and in flight) beyond which the writer reports
   * backpressure; `add` still accepts rows, callers should await `whenWritable()`.
   * Must be at least `maxRows`. @default the larger of 50_000 and 5 × `maxRows`
   */
  maxBuffered?: number;
  /**
   * When set, the buffer keeps only the newest row per key (later `add`s
   * replace earlier ones not yet cut into a batch). For rows that are full
   * versions of one entity, such as alerts.
   * @default undefined (every row is written)
   */
  coalesceKey?: (row: T) => string;
  /** Backoff of retried batches. */
  retry?: RetryOptions;
  /** Whether a failed insert may be retried. @default isRetriableError (the error's `retriable` flag, or a network error) */
  isRetriable?: (error: unknown) => boolean;
  /**
   * Observes every failed attempt, e.g. to log it; `info.retryInMs` is null
   * when the batch is abandoned. Exceptions it throws are ignored. @default no-op
   */
  onError?: (error: unknown, attempt: number, info: InsertErrorInfo<T>) => void;
  /** Names the writer in error messages. @default 'batch writer' */
  name?: string;
}

interface Batch<T> {
  seq: number;
  rows: T[];
}

interface FlushWaiter {
  /** Settles once every batch up to this sequence number has been written or abandoned. */
  upTo: number;
  failures: StorageError[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Buffers rows and writes them in batches: a batch of `maxRows` is cut as
 * soon as that many rows are buffered, and whatever is buffered is cut
 * `maxDelayMs` after the first row entered an empty buffer, whichever comes
 * first. Batches are written one at a time, in order; a failing batch is
 * retried with exponential backoff while its error is retriable, and rows are
 * kept meanwhile.
 *
 * Nothing is dropped silently: a batch given up on (non-retriable error, or
 * `maxAttempts` exhausted) rejects every pending `flush()` that covers it, or,
 * when none is pending, the next `flush()`/`close()`.
 */
export class BatchWriter<T> {
  readonly #insert: (rows: readonly T[]) => Promise<void>;
  readonly #maxRows: number;
  readonly #maxDelayMs: number;
  readonly #maxBuffered: number;
  readonly #coalesceKey: ((row: T) => string) | undefined;
  readonly #initialDelayMs: number;
  readonly #maxRetryDelayMs: number;
  readonly #maxAttempts: number;
  readonly #isRetriable: (error: unknown) => boolean;
  readonly #onError: (error: unknown, attempt: number, info: InsertErrorInfo<T>) => void;
  readonly #name: string;

  #buffer: T[] = [];
  /** Coalescing only: position in `#buffer` of each key's row. */
  #positions = new Map<string, number>();
  /** Batches cut and not yet settled; the head is the one being written. */
  readonly #queue: Batch<T>[] = [];
  /** Rows in the buffer and the queue. */
  #held = 0;
  #lastCut = 0;
  #lastSettled = 0;
  #timer: NodeJS.Timeout | null = null;
  #writing = false;
  #waiters: FlushWaiter[] = [];
  /** `durable()` callers whose rows are still in the buffer; they get a batch number at the next full cut. */
  #bufferWaiters: FlushWaiter[] = [];
  /** Abandoned batches no flush was waiting for: the next flush reports them. */
  #unreported: StorageError[] = [];
  #writableWaiters: (() => void)[] = [];
  #closing: Promise<void> | null = null;

  /** @throws StorageError `AW_STORAGE_INVALID_CONFIG` naming the bad option and its bound. */
  constructor(options: BatchWriterOptions<T>) {
    this.#name = options.name ?? 'batch writer';
    this.#insert = options.insert;
    this.#maxRows = this.#check('maxRows', options.maxRows ?? 1000, 1);
    this.#maxDelayMs = this.#check('maxDelayMs', options.maxDelayMs ?? 1000, 0);
    this.#maxBuffered = this.#check('maxBuffered', options.maxBuffered ?? Math.max(50_000, 5 * this.#maxRows), this.#maxRows);
    this.#initialDelayMs = this.#check('retry.initialDelayMs', options.retry?.initialDelayMs ?? 100, 0);
    this.#maxRetryDelayMs = this.#check('retry.maxDelayMs', options.retry?.maxDelayMs ?? 10_000, this.#initialDelayMs);
    this.#maxAttempts = this.#check('retry.maxAttempts', options.retry?.maxAttempts ?? Infinity, 1);
    this.#coalesceKey = options.coalesceKey;
    this.#isRetriable = options.isRetriable ?? isRetriableError;
    this.#onError = options.onError ?? (() => undefined);
  }

  /** Rows held and not yet durable: buffered, queued and in flight. */
  get heldRows(): number {
    return this.#held;
  }

  /**
   * Buffers rows for writing. Never waits: when {@link pressure} turns true the
   * caller should stop taking input until {@link whenWritable} resolves.
   *
   * @throws StorageError `AW_STORAGE_WRITER_CLOSED` after `close()`.
   */
  add(rows: readonly T[]): void {
    if (this.#closing !== null) {
      throw new StorageError('AW_STORAGE_WRITER_CLOSED', `${this.#name}: add() after close()`);
    }
    for (const row of rows) this.#hold(row);
    // Only full batches leave on size: the remainder waits for more rows or
    // for the clock, so ClickHouse gets fewer, larger inserts.
    if (this.#buffer.length >= this.#maxRows) this.#cut(false);
    if (this.#buffer.length > 0 && this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#cut(true);
      }, this.#maxDelayMs);
    }
  }

  /** True while more than `maxBuffered` rows are held. */
  pressure(): boolean {
    return this.#held > this.#maxBuffered;
  }

  /** Resolves once the writer holds at most `maxBuffered` rows (at once if it already does). */
  whenWritable(): Promise<void> {
    if (!this.pressure()) return Promise.resolve();
    return new Promise((resolve) => this.#writableWaiters.push(resolve));
  }

  /**
   * Writes the buffer now. Resolves when every row added before the call is
   * durable; rejects with `AW_STORAGE_WRITE_ABANDONED` if any of them, or an
   * abandoned batch not yet reported, was given up on.
   */
  /**
   * Resolves when every row added so far is durable, without forcing an early
   * insert: rows still buffered leave with the next size or time cut. Consumers
   * await this before committing their input offsets, so inserts stay large.
   */
  durable(): Promise<void> {
    const failures = this.#unreported;
    this.#unreported = [];
    return new Promise((resolve, reject) => {
      const waiter: FlushWaiter = { upTo: this.#lastCut, failures, resolve, reject };
      if (this.#buffer.length > 0) this.#bufferWaiters.push(waiter);
      else this.#waiters.push(waiter);
      this.#settleWaiters();
    });
  }

  flush(): Promise<void> {
    this.#cut(true);
    const failures = this.#unreported;
    this.#unreported = [];
    if (this.#lastSettled >= this.#lastCut) {
      return failures.length === 0 ? Promise.resolve() : Promise.reject(combine(failures, this.#name));
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ upTo: this.#lastCut, failures, resolve, reject });
    });
  }

  /** Stops accepting rows, stops the timer and flushes; idempotent. */
  close(): Promise<void> {
    // flush() empties the buffer, which clears the delay timer, and add()
    // refuses rows from now on, so no timer can be armed again.
    this.#closing ??= this.flush();
    return this.#closing;
  }

  #hold(row: T): void {
    if (this.#coalesceKey === undefined) {
      this.#buffer.push(row);
      this.#held++;
      return;
    }
    const key = this.#coalesceKey(row);
    const position = this.#positions.get(key);
    if (position === undefined) {
      this.#positions.set(key, this.#buffer.length);
      this.#buffer.push(row);
      this.#held++;
    } else {
      this.#buffer[position] = row;
    }
  }

  /**
   * Moves buffered rows into the queue as batches of `maxRows`, plus the
   * partial remainder when `all` is set (flush, timer), and starts writing.
   */
  #cut(all: boolean): void {
    const end = all ? this.#buffer.length : this.#buffer.length - (this.#buffer.length % this.#maxRows);
    if (end === 0) return;
    for (let start = 0; start < end; start += this.#maxRows) {
      this.#queue.push({ seq: ++this.#lastCut, rows: this.#buffer.slice(start, Math.min(start + this.#maxRows, end)) });
    }
    this.#buffer = this.#buffer.slice(end);
    if (this.#buffer.length === 0 && this.#bufferWaiters.length > 0) {
      for (const waiter of this.#bufferWaiters) waiter.upTo = this.#lastCut;
      this.#waiters.push(...this.#bufferWaiters);
      this.#bufferWaiters = [];
    }
    if (this.#coalesceKey !== undefined) {
      const key = this.#coalesceKey;
      this.#positions = new Map(this.#buffer.map((row, position) => [key(row), position]));
    }
    if (this.#buffer.length === 0 && this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    void this.#drain();
  }

  /** Writes queued batches one at a time; never rejects. */
  async #drain(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      for (let batch = this.#queue[0]; batch !== undefined; batch = this.#queue[0]) {
        const failure = await this.#write(batch);
        this.#queue.shift();
        this.#held -= batch.rows.length;
        this.#lastSettled = batch.seq;
        if (failure !== null) this.#recordFailure(batch, failure);
        this.#settleWaiters();
      }
    } finally {
      this.#writing = false;
    }
  }

  /** Inserts one batch, retrying while allowed; returns the error it gave up on, or null. */
  async #write(batch: Batch<T>): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#insert(batch.rows);
        return null;
      } catch (error) {
        const retry = attempt < this.#maxAttempts && this.#safely(() => this.#isRetriable(error), false);
        const delay = retry ? this.#backoff(attempt) : null;
        this.#safely(() => this.#onError(error, attempt, { error, attempt, rows: batch.rows, retryInMs: delay }), undefined);
        if (delay === null) return error ?? new Error('insert rejected without a reason');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Exponential backoff with jitter over the upper half, so writers that failed together retry apart. */
  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#maxRetryDelayMs, this.#initialDelayMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  #recordFailure(batch: Batch<T>, cause: unknown): void {
    const error = new StorageError(
      'AW_STORAGE_WRITE_ABANDONED',
      `${this.#name}: gave up on a batch of ${batch.rows.length} row(s): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause, retriable: this.#safely(() => this.#isRetriable(cause), false), details: { rows: batch.rows.length } },
    );
    const covering = this.#waiters.filter((waiter) => waiter.upTo >= batch.seq);
    if (covering.length === 0) this.#unreported.push(error);
    for (const waiter of covering) waiter.failures.push(error);
  }

  #settleWaiters(): void {
    const pending: FlushWaiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.upTo > this.#lastSettled) pending.push(waiter);
      else if (waiter.failures.length === 0) waiter.resolve();
      else waiter.reject(combine(waiter.failures, this.#name));
    }
    this.#waiters = pending;
    if (!this.pressure()) {
      const writable = this.#writableWaiters;
      this.#writableWaiters = [];
      for (const resolve of writable) resolve();
    }
  }

  #check(key: string, value: number, min: number): number {
    if (Number.isNaN(value) || value < min || (value !== Infinity && !Number.isInteger(value))) {
      throw new StorageError('AW_STORAGE_INVALID_CONFIG', `${this.#name}: ${key} must be an integer >= ${min} (got ${value})`);
    }
    return value;
  }

  /** Runs a caller-supplied callback; a throwing callback must not wedge the writer. */
  #safely<R>(callback: () => R, fallback: R): R {
    try {
      return callback();
    } catch {
      return fallback;
    }
  }
}

function combine(failures: readonly StorageError[], name: string): StorageError {
  const [first] = failures;
  if (failures.length === 1 && first !== undefined) return first;
  const rows = failures.reduce((sum, failure) => sum + ((failure.details as { rows: number }).rows ?? 0), 0);
  return new StorageError('AW_STORAGE_WRITE_ABANDONED', `${name}: gave up on ${failures.length} batches (${rows} rows)`, {
    cause: new AggregateError(failures),
    retriable: failures.every((failure) => failure.retriable),
    details: { rows },
  });
}
