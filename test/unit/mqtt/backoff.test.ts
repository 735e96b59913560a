import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, RECONNECT_BACKOFF } from '../../../src/mqtt/backoff.js';

describe('backoffDelay', () => {
  it('doubles its ceiling per attempt up to the maximum', () => {
    const highest = (attempt: number): number => backoffDelay(attempt, RECONNECT_BACKOFF, () => 1);
    assert.deepEqual([0, 1, 2, 3].map(highest), [250, 500, 1000, 2000]);
    assert.equal(highest(7), 30_000);
    assert.equal(highest(1000), 30_000, 'no overflow for long outages');
  });

  it('waits at least half the ceiling and spreads the rest at random', () => {
    assert.equal(
      backoffDelay(2, RECONNECT_BACKOFF, () => 0),
      500,
    );
    const delays = new Set(Array.from({ length: 200 }, () => backoffDelay(4)));
    for (const delay of delays) assert.ok(delay >= 2000 && delay <= 4000, `${delay}`);
    assert.ok(delays.size > 50, 'jittered: clients cut off together come back apart');
  });
});
