/**
 * When the next message may go: input is read only while the record's channel has room and the rate limit allows
 * (`max_messages_per_second`, `max_bytes_per_second`), so memory stays bounded however large the sync, and a quota
 * is never exceeded. The sync's own messages (clearing stale keys) wait for the same.
 */
import type { Readable } from 'node:stream';
import type { SyncSettings } from '../config/settings.js';
import type { PublishTarget } from '../mqtt/packets.js';
import type { Channel } from './channel.js';
import { type RateLimit, rateLimit } from './rate-limit.js';

export class Pacing {
  private readonly rate: RateLimit | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(settings: Pick<SyncSettings, 'maxMessagesPerSecond' | 'maxBytesPerSecond'>) {
    this.rate = rateLimit(settings);
  }

  /**
   * A record of `bytes` went to `channel`: pauses `input` until the channel has room again, and until the rate limit
   * allows the next message. Only the channel the last record went to is asked: records spread evenly, so when one
   * window is full the others are nearly full too, and a paused reader keeps memory bounded whatever the input.
   */
  after(input: Readable, channel: Channel, bytes: number, messages = 1): void {
    const resume = (): void => {
      if (!this.stopped) input.resume();
    };
    if (channel.hasRoom) {
      this.spend(input, messages, bytes, resume, false);
      return;
    }
    input.pause();
    channel.whenRoom(() => this.spend(input, messages, bytes, resume, true));
  }

  /**
   * A message went out that no record paced (a batch closing): counts it against the rate limit, pausing `input`
   * while the limit says wait.
   */
  charge(input: Readable, bytes: number): void {
    const resume = (): void => {
      if (!this.stopped) input.resume();
    };
    this.spend(input, 1, bytes, resume, false);
  }

  /**
   * Sends the sync's own empty messages to `topics` over `channel` (targets made by `targetOf`), each once the channel
   * has room and the rate limit allows: a quota does not care why a message was sent. Stops early when pacing stops.
   */
  async sendOwn(
    channel: Channel,
    topics: readonly string[],
    targetOf: (topic: string) => PublishTarget,
  ): Promise<void> {
    for (const topic of topics) {
      if (!channel.hasRoom) await new Promise<void>((resume) => channel.whenRoom(resume));
      const wait = this.rate?.spend(0) ?? 0;
      if (wait > 0) await new Promise((resume) => setTimeout(resume, Math.ceil(wait)));
      if (this.stopped) return;
      channel.sendOwn(targetOf(topic));
    }
  }

  /** No more waiting: a paused input stays paused. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private spend(input: Readable, messages: number, bytes: number, resume: () => void, paused: boolean): void {
    const wait = messages === 0 ? 0 : (this.rate?.spend(bytes) ?? 0);
    if (wait <= 0) {
      if (paused) resume();
      return;
    }
    input.pause();
    this.timer = setTimeout(resume, Math.ceil(wait));
  }
}
