/**
 * The publishing rate a broker or a cloud quota allows (`max_messages_per_second`, `max_bytes_per_second`), shared by
 * every connection of the sync. A token bucket per limit: each message spends a token (and its payload bytes); the
 * sync reads no further input while a bucket is in debt. The buckets hold at most a tenth of a second's worth, so over
 * any ten seconds the sync sends at most 1% more than the limit allows, plus one message: a short burst, never a
 * sustained excess that would get the connection cut.
 */

/** The burst a bucket allows, in seconds of its rate. */
const BURST_SECONDS = 0.1;

class Bucket {
  private tokens: number;
  private readonly capacity: number;

  constructor(private readonly perSecond: number) {
    this.capacity = Math.max(1, perSecond * BURST_SECONDS);
    this.tokens = this.capacity;
  }

  refill(elapsedMs: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + (elapsedMs * this.perSecond) / 1000);
  }

  /** Spends `amount`; returns how long to wait, in ms, until the bucket is out of debt. */
  spend(amount: number): number {
    this.tokens -= amount;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.perSecond;
  }
}

export class RateLimit {
  private readonly messages: Bucket | undefined;
  private readonly bytes: Bucket | undefined;
  private last: number;

  constructor(
    messagesPerSecond: number | undefined,
    bytesPerSecond: number | undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.messages = messagesPerSecond === undefined ? undefined : new Bucket(messagesPerSecond);
    this.bytes = bytesPerSecond === undefined ? undefined : new Bucket(bytesPerSecond);
    this.last = now();
  }

  /** Counts one message of `payloadBytes` as sent; returns how many ms to wait before sending the next (0: none). */
  spend(payloadBytes: number): number {
    const now = this.now();
    const elapsed = now - this.last;
    this.last = now;
    this.messages?.refill(elapsed);
    this.bytes?.refill(elapsed);
    return Math.max(this.messages?.spend(1) ?? 0, this.bytes?.spend(payloadBytes) ?? 0);
  }
}

/** A rate limit when the settings set one, else undefined: the unlimited path pays nothing per message. */
export function rateLimit(settings: {
  readonly maxMessagesPerSecond: number | undefined;
  readonly maxBytesPerSecond: number | undefined;
}): RateLimit | undefined {
  if (settings.maxMessagesPerSecond === undefined && settings.maxBytesPerSecond === undefined) return undefined;
  return new RateLimit(settings.maxMessagesPerSecond, settings.maxBytesPerSecond);
}
