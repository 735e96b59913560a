/**
 * Pacing over a fake input (it records each pause and resume) and a fake channel whose room the test gives and takes,
 * with node:test's mocked timers and a mocked `performance.now` that move together: the rate limit's clock and its
 * waits advance only when the test says so.
 */
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { PublishTarget } from '../../../src/mqtt/packets.js';
import { publishTarget } from '../../../src/mqtt/packets.js';
import type { Channel } from '../../../src/sync/channel.js';
import { Pacing } from '../../../src/sync/pacing.js';

/** An input that records what it is told: `pause` and `resume`, in order. */
class FakeInput {
  readonly calls: string[] = [];

  pause(): this {
    this.calls.push('pause');
    return this;
  }

  resume(): this {
    this.calls.push('resume');
    return this;
  }

  get input(): Readable {
    return this as unknown as Readable;
  }
}

/** A channel whose room the test sets; `room()` gives room back and calls whoever waits for it. */
class FakeChannel {
  hasRoom = true;
  /** Own messages sent, by topic. */
  readonly own: string[] = [];
  /** How many own messages it takes before it is full; unlimited unless set. */
  window = Number.POSITIVE_INFINITY;
  private waiting: (() => void)[] = [];

  whenRoom(resume: () => void): void {
    this.waiting.push(resume);
  }

  get waiters(): number {
    return this.waiting.length;
  }

  room(): void {
    this.hasRoom = true;
    for (const resume of this.waiting.splice(0)) resume();
  }

  sendOwn(target: PublishTarget): void {
    this.own.push(target.topic);
    if (this.own.length % this.window === 0) this.hasRoom = false;
  }

  get channel(): Channel {
    return this as unknown as Channel;
  }
}

const NO_LIMIT = { maxMessagesPerSecond: undefined, maxBytesPerSecond: undefined };

let clock = 0;

/** Moves the rate limit's clock and the timers by `ms`. */
function advance(ms: number): void {
  clock += ms;
  mock.timers.tick(ms);
}

/** Lets promise callbacks run (setImmediate is not mocked). */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const targetOf = (topic: string): PublishTarget => publishTarget(topic, { mqtt5: false });

describe('Pacing', () => {
  beforeEach(() => {
    clock = 1000;
    mock.method(performance, 'now', () => clock);
    mock.timers.enable({ apis: ['setTimeout'] });
  });

  afterEach(() => {
    mock.timers.reset();
    mock.restoreAll();
  });

  describe('after a record', () => {
    it('leaves the input alone while the channel has room and no rate limit is set', () => {
      const pacing = new Pacing(NO_LIMIT);
      const input = new FakeInput();
      const channel = new FakeChannel();
      for (let i = 0; i < 100; i++) pacing.after(input.input, channel.channel, 1_000_000);
      assert.deepEqual(input.calls, []);
      assert.equal(channel.waiters, 0);
    });

    it('pauses the input while the channel is full and resumes it once there is room', () => {
      const pacing = new Pacing(NO_LIMIT);
      const input = new FakeInput();
      const channel = new FakeChannel();
      channel.hasRoom = false;
      pacing.after(input.input, channel.channel, 10);
      assert.deepEqual(input.calls, ['pause']);
      assert.equal(channel.waiters, 1);
      channel.room();
      assert.deepEqual(input.calls, ['pause', 'resume']);
    });

    it('pauses while the message rate limit says wait, for exactly the time it says', () => {
      const pacing = new Pacing({ maxMessagesPerSecond: 10, maxBytesPerSecond: undefined });
      const input = new FakeInput();
      const channel = new FakeChannel();
      pacing.after(input.input, channel.channel, 10);
      assert.deepEqual(input.calls, [], 'the first message has its token');
      pacing.after(input.input, channel.channel, 10);
      assert.deepEqual(input.calls, ['pause']);
      advance(99);
      assert.deepEqual(input.calls, ['pause']);
      advance(1);
      assert.deepEqual(input.calls, ['pause', 'resume']);
    });

    it('goes on without pausing once the time of a message has passed', () => {
      const pacing = new Pacing({ maxMessagesPerSecond: 10, maxBytesPerSecond: undefined });
      const input = new FakeInput();
      const channel = new FakeChannel();
      for (let i = 0; i < 5; i++) {
        pacing.after(input.input, channel.channel, 10);
        advance(100);
      }
      assert.deepEqual(input.calls, []);
    });

    it('rounds a wait up to whole milliseconds', () => {
      const pacing = new Pacing({ maxMessagesPerSecond: 3, maxBytesPerSecond: undefined });
      const input = new FakeInput();
      const channel = new FakeChannel();
      pacing.after(input.input, channel.channel, 10);
      pacing.after(input.input, channel.channel, 10);
      advance(333);
      assert.deepEqual(input.calls, ['pause'], '333.3 ms have not passed');
      advance(1);
      assert.deepEqual(input.calls, ['pause', 'resume']);
    });

    it('counts payload bytes against max_bytes_per_second', () => {
      const pacing = new Pacing({ maxMessagesPerSecond: undefined, maxBytesPerSecond: 1000 });
      const input = new FakeInput();
      const channel = new FakeChannel();
      pacing.after(input.input, channel.channel, 60);
      assert.deepEqual(input.calls, [], 'within the burst of a tenth of a second');
      pacing.after(input.input, channel.channel, 240);
      assert.deepEqual(input.calls, ['pause']);
      advance(199);
      assert.deepEqual(input.calls, ['pause'], '200 bytes in debt at 1000 a second: 200 ms');
      advance(1);
      assert.deepEqual(input.calls, ['pause', 'resume']);
    });

    it('resumes after room comes back only once the rate limit allows too', () => {
      const pacing = new Pacing({ maxMessagesPerSecond: 10, maxBytesPerSecond: undefined });
      const input = new FakeInput();
      const channel = new FakeChannel();
      pacing.after(input.input, channel.channel, 10);
      channel.hasRoom = false;
      pacing.after(input.input, channel.channel, 10);
      assert.deepEqual(input.calls, ['pause']);
      advance(30);
      channel.room();
      assert.equal(input.calls.includes('resume'), false, 'the limit still says wait');
      advance(69);
      assert.equal(input.calls.includes('resume'), false);
      advance(1);
      assert.equal(input.calls.at(-1), 'resume');
      assert.equal(input.calls.filter((call) => call === 'resume').length, 1);
    });

    it('does not charge a record that went into a batch: its batch is charged when it closes', () => {
      const pacing = new Pacing({ maxMessagesPerSecond: 10, maxBytesPerSecond: 100 });
      const input = new FakeInput();
      const channel = new FakeChannel();
      for (let i = 0; i < 20; i++) pacing.after(input.input, channel.channel, 1000, 0);
      assert.deepEqual(input.calls, []);
      pacing.after(input.input, channel.channel, 10);
      assert.deepEqual(input.calls, [], 'the buckets are still full');
    });

    it('still waits for room for a record that went into a batch', () => {
      const pacing = new Pacing(NO_LIMIT);
      const input = new FakeInput();
      const channel = new FakeChannel();
      channel.hasRoom = false;
      pacing.after(input.input, channel.channel, 10, 0);
      assert.deepEqual(input.calls, ['pause']);
      channel.room();
      assert.deepEqual(input.calls, ['pause', 'resume']);
    });
  });

  describe('charge', () => {
    it('counts a closing batch as a message, pausing the input while the limit says wait', () => {
      const pacing = new Pacing({ maxMessagesPerSecond: 10, maxBytesPerSecond: undefined });
      const input = new FakeInput();
      pacing.charge(input.input, 500);
      assert.deepEqual(input.calls, []);
      pacing.charge(input.input, 500);
      assert.deepEqual(input.calls, ['pause']);
      advance(99);
      assert.deepEqual(input.calls, ['pause']);
      advance(1);
      assert.deepEqual(input.calls, ['pause', 'resume']);
    });

    it('counts the batch payload against max_bytes_per_second', () => {
      const pacing = new Pacing({ maxMessagesPerSecond: undefined, maxBytesPerSecond: 1000 });
      const input = new FakeInput();
      pacing.charge(input.input, 150);
      assert.deepEqual(input.calls, ['pause']);
      advance(49);
      assert.deepEqual(input.calls, ['pause']);
      advance(1);
      assert.deepEqual(input.calls, ['pause', 'resume']);
    });

    it('does nothing without a rate limit', () => {
      const pacing = new Pacing(NO_LIMIT);
      const input = new FakeInput();
      for (let i = 0; i < 10; i++) pacing.charge(input.input, 1_000_000);
      assert.deepEqual(input.calls, []);
    });
  });

  describe('stop', () => {
    it('keeps an input paused by the rate limit paused', () => {
      const pacing = new Pacing({ maxMessagesPerSecond: 10, maxBytesPerSecond: undefined });
      const input = new FakeInput();
      const channel = new FakeChannel();
      pacing.after(input.input, channel.channel, 10);
      pacing.after(input.input, channel.channel, 10);
      pacing.stop();
      advance(10_000);
      assert.deepEqual(input.calls, ['pause']);
    });

    it('keeps an input paused by a batch charge paused, even when an earlier wait runs out', () => {
      const pacing = new Pacing({ maxMessagesPerSecond: 10, maxBytesPerSecond: undefined });
      const input = new FakeInput();
      pacing.charge(input.input, 1);
      pacing.charge(input.input, 1);
      pacing.charge(input.input, 1);
      pacing.stop();
      advance(10_000);
      assert.deepEqual(input.calls, ['pause', 'pause']);
    });

    it('keeps an input paused for a full channel paused when room comes back', () => {
      const pacing = new Pacing(NO_LIMIT);
      const input = new FakeInput();
      const channel = new FakeChannel();
      channel.hasRoom = false;
      pacing.after(input.input, channel.channel, 10);
      pacing.stop();
      channel.room();
      assert.deepEqual(input.calls, ['pause']);
    });
  });

  describe("the sync's own messages", () => {
    it('sends each once the channel has room', async () => {
      const pacing = new Pacing(NO_LIMIT);
      const channel = new FakeChannel();
      channel.window = 2;
      const done = pacing.sendOwn(channel.channel, ['a', 'b', 'c', 'd', 'e'], targetOf);
      await settled();
      assert.deepEqual(channel.own, ['a', 'b']);
      assert.equal(channel.waiters, 1);
      channel.room();
      await settled();
      assert.deepEqual(channel.own, ['a', 'b', 'c', 'd']);
      channel.room();
      await done;
      assert.deepEqual(channel.own, ['a', 'b', 'c', 'd', 'e']);
    });

    it('waits for the message rate limit between them', async () => {
      const pacing = new Pacing({ maxMessagesPerSecond: 10, maxBytesPerSecond: undefined });
      const channel = new FakeChannel();
      const done = pacing.sendOwn(channel.channel, ['a', 'b', 'c'], targetOf);
      await settled();
      assert.deepEqual(channel.own, ['a'], 'the first goes with the token in the bucket');
      advance(99);
      await settled();
      assert.deepEqual(channel.own, ['a']);
      advance(1);
      await settled();
      assert.deepEqual(channel.own, ['a', 'b']);
      advance(100);
      await done;
      assert.deepEqual(channel.own, ['a', 'b', 'c']);
    });

    it('counts no payload bytes for them, but waits out a debt of bytes records ran up', async () => {
      const pacing = new Pacing({ maxMessagesPerSecond: undefined, maxBytesPerSecond: 1000 });
      const channel = new FakeChannel();
      await pacing.sendOwn(channel.channel, ['a', 'b', 'c', 'd'], targetOf);
      assert.deepEqual(channel.own, ['a', 'b', 'c', 'd']);
      pacing.charge(new FakeInput().input, 300);
      const done = pacing.sendOwn(channel.channel, ['e'], targetOf);
      advance(199);
      await settled();
      assert.deepEqual(channel.own, ['a', 'b', 'c', 'd']);
      advance(1);
      await done;
      assert.deepEqual(channel.own, ['a', 'b', 'c', 'd', 'e']);
    });

    it('stops sending when pacing stops during a wait', async () => {
      const pacing = new Pacing({ maxMessagesPerSecond: 10, maxBytesPerSecond: undefined });
      const channel = new FakeChannel();
      const done = pacing.sendOwn(channel.channel, ['a', 'b', 'c'], targetOf);
      await settled();
      pacing.stop();
      advance(1000);
      await done;
      assert.deepEqual(channel.own, ['a']);
    });

    it('stops sending when pacing stops while waiting for room', async () => {
      const pacing = new Pacing(NO_LIMIT);
      const channel = new FakeChannel();
      channel.hasRoom = false;
      const done = pacing.sendOwn(channel.channel, ['a', 'b'], targetOf);
      pacing.stop();
      channel.room();
      await done;
      assert.deepEqual(channel.own, []);
    });
  });
});
