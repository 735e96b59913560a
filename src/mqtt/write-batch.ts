/**
 * The packets of one turn of the event loop, gathered into one buffer and handed on as one write. A write per packet
 * costs a system call each and, on loopback, a wake-up of the broker per message; one write per turn is what lets the
 * connector keep up with a bare publisher.
 *
 * Packets are encoded straight into the batch: `room(size)` returns a buffer with at least `size` free bytes from
 * `offset`, the caller writes the packet there and reports where it ended with `commit`. A flush hands over the
 * filled part and keeps the rest of the buffer for the next batch, so a steady stream of small packets does not
 * allocate a buffer per turn; a packet that does not fit what is left gets a buffer of its own size.
 */

/** The size of a fresh batch buffer: large enough for hundreds of typical records, small enough to stay in cache. */
export const BATCH_BYTES = 64 * 1024;
/** A remainder smaller than this is dropped rather than kept for the next batch: it would soon force a new buffer. */
export const MIN_REMAINDER = 4096;

export class WriteBatch {
  private buffer: Buffer | undefined;
  private used = 0;
  /** Where the packet being encoded must end: `room` sets it, `commit` checks it. */
  private expectedEnd = -1;
  private flushScheduled = false;

  /** `flushed` receives each filled chunk, in order; the chunk belongs to it from then on. */
  constructor(private readonly flushed: (chunk: Buffer) => void) {}

  /** Where the next packet starts in the buffer `room` returned. */
  get offset(): number {
    return this.used;
  }

  /** Bytes waiting to be flushed. */
  get pending(): number {
    return this.used;
  }

  /**
   * A buffer with `size` free bytes from `offset`. What is already batched is flushed first when the packet does not
   * fit behind it, and the flush of this turn's batch is scheduled.
   */
  room(size: number): Buffer {
    if (this.buffer && this.used + size > this.buffer.length) this.flush();
    // After a flush the buffer is only what was left of it, which may be smaller than this packet.
    if (!this.buffer || this.used + size > this.buffer.length) {
      this.buffer = Buffer.allocUnsafe(Math.max(BATCH_BYTES, size));
      this.used = 0;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
    this.expectedEnd = this.used + size;
    return this.buffer;
  }

  /** The packet ends at `end`, which must be exactly `size` bytes after `offset`: sizes are computed, not measured. */
  commit(end: number): void {
    if (end !== this.expectedEnd)
      throw new Error(
        `a packet was encoded into ${end - this.used} bytes where ${this.expectedEnd - this.used} were computed`,
      );
    this.used = end;
    this.expectedEnd = -1;
  }

  /** Hands whatever is batched to `flushed` now. */
  flush(): void {
    this.flushScheduled = false;
    if (!this.buffer || this.used === 0) return;
    const chunk = this.buffer.subarray(0, this.used);
    this.buffer = this.buffer.length - this.used >= MIN_REMAINDER ? this.buffer.subarray(this.used) : undefined;
    this.used = 0;
    this.flushed(chunk);
  }

  /** Drops what is batched and not yet flushed (its connection is gone). */
  clear(): void {
    this.buffer = undefined;
    this.used = 0;
    this.expectedEnd = -1;
  }
}
