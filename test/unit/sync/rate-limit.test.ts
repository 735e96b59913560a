import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimit, rateLimit } from '../../../src/sync/rate-limit.js';

/** Sends as fast as the limit allows for `seconds` of simulated time; returns each message's send time in ms. */
function sendAsAllowed(
  limit: RateLimit,
  clock: { now: number },
  seconds: number,
  sizeOf: (n: number) => number,
): number[] {
  const times: number[] = [];
  for (let n = 0; clock.now < seconds * 1000; n++) {
    times.push(clock.now);
    // Each message takes a little work; when told to wait, a sync waits at least as long (timers fire up to 1 ms late).
    const wait = limit.spend(sizeOf(n));
    clock.now += 0.005 + (wait > 0 ? wait + (n % 3) / 2 : 0);
  }
  return times;
}

/** The largest sum over any window of `windowMs` of the values sent at `times`. */
function busiestWindow(times: readonly number[], values: readonly number[], windowMs: number): number {
  let best = 0;
  let sum = 0;
  for (let start = 0, end = 0; end < times.length; end++) {
    sum += values[end] as number;
    while ((times[end] as number) - (times[start] as number) >= windowMs) sum -= values[start++] as number;
    best = Math.max(best, sum);
  }
  return best;
}

describe('RateLimit', () => {
  it('holds a message rate within 1% over any ten seconds, and reaches it', () => {
    for (const perSecond of [1, 7, 100, 500, 20_000]) {
      const clock = { now: 0 };
      const limit = new RateLimit(perSecond, undefined, () => clock.now);
      const times = sendAsAllowed(limit, clock, 60, () => 100);
      const ones = times.map(() => 1);
      assert.ok(
        busiestWindow(times, ones, 10_000) <= perSecond * 10 * 1.01 + 1,
        `${perSecond}/s: ${busiestWindow(times, ones, 10_000)} in 10 s`,
      );
      assert.ok(times.length >= perSecond * 60 * 0.97, `${perSecond}/s: only ${times.length} in 60 s`);
    }
  });

  it("holds a byte rate with messages of any size, a message larger than a second's worth included", () => {
    const clock = { now: 0 };
    const perSecond = 100_000;
    const limit = new RateLimit(undefined, perSecond, () => clock.now);
    const sizes = (n: number): number => (n % 50 === 0 ? 250_000 : 100 + ((n * 7919) % 5000));
    const times = sendAsAllowed(limit, clock, 120, sizes);
    const bytes = times.map((_, n) => sizes(n));
    assert.ok(
      busiestWindow(times, bytes, 10_000) <= perSecond * 10 * 1.01 + 250_000,
      String(busiestWindow(times, bytes, 10_000)),
    );
    const total = bytes.reduce((a, b) => a + b, 0);
    assert.ok(total >= perSecond * 120 * 0.95, `${total} bytes in 120 s`);
  });

  it('holds both limits at once: whichever is reached first', () => {
    const clock = { now: 0 };
    const limit = new RateLimit(100, 10_000, () => clock.now);
    const small = sendAsAllowed(limit, clock, 30, () => 10);
    assert.ok(
      busiestWindow(
        small,
        small.map(() => 1),
        10_000,
      ) <= 1011,
    );
    const clock2 = { now: 0 };
    const limit2 = new RateLimit(100, 10_000, () => clock2.now);
    const large = sendAsAllowed(limit2, clock2, 30, () => 1000);
    assert.ok(
      busiestWindow(
        large,
        large.map(() => 1),
        10_000,
      ) <= 102,
      'ten 1,000-byte messages a second at most',
    );
  });

  it('is absent when no limit is set, so the unlimited path pays nothing', () => {
    assert.equal(rateLimit({ maxMessagesPerSecond: undefined, maxBytesPerSecond: undefined }), undefined);
    assert.ok(rateLimit({ maxMessagesPerSecond: 5, maxBytesPerSecond: undefined }) instanceof RateLimit);
  });
  it('asks for no wait at all, never a negative one, while every limit still has credit', () => {
    const clock = { now: 0 };
    const limit = new RateLimit(100, 10_000, () => clock.now);
    assert.equal(limit.spend(10), 0);
    assert.equal(limit.spend(10), 0);
    clock.now += 1000;
    assert.equal(limit.spend(500), 0);
  });
});
