import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Credential,
  type CredentialSource,
  SharedCredential,
  renewAt,
} from '../../../src/credentials/credential.js';

const T0 = 1_700_000_000_000;
const lasting = (ms: number, issuedAt = T0) => ({ issuedAt, expiresAt: issuedAt + ms });

describe('renewAt', () => {
  it('never renews a credential that does not expire', () => {
    assert.equal(renewAt({ issuedAt: T0, expiresAt: undefined }, T0 + 1e12), undefined);
  });

  // Each row: lifetime, and how long after issue the renewal is due.
  const rows: [string, number, number][] = [
    ['a day: 20 % before the end', 86_400_000, 69_120_000],
    ['an hour: 20 % (12 min) before the end', 3_600_000, 2_880_000],
    ['ten minutes: 20 % is 2 min', 600_000, 480_000],
    ['four minutes: 60 s, as 20 % would be less', 240_000, 180_000],
    ['two minutes: 60 s, which is half', 120_000, 60_000],
    ['a minute: half of it, not 60 s (that would be at once)', 60_000, 30_000],
    ['4 s: after 2 s, with 2 s to spare', 4_000, 2_000],
    ['3 s (the shortest SAS lifetime): after 1.5 s', 3_000, 1_500],
  ];
  for (const [name, lifetime, after] of rows) {
    it(name, () => {
      assert.equal(renewAt(lasting(lifetime), T0), T0 + after);
    });
  }

  it('is never in the past: a credential past its time is due now', () => {
    assert.equal(renewAt(lasting(4_000), T0 + 3_000), T0 + 3_000);
    assert.equal(renewAt(lasting(4_000), T0 + 60_000), T0 + 60_000);
    assert.equal(renewAt({ issuedAt: T0, expiresAt: T0 - 1 }, T0), T0);
  });

  it('replaces a short token a bounded number of times: twice per lifetime at most', () => {
    // A fake clock that jumps to each renewal: over 40 s of 4 s tokens, 20 renewals, not a loop.
    let now = T0;
    let renewals = 0;
    while (now < T0 + 40_000) {
      const due = renewAt(lasting(4_000, now), now) as number;
      assert.ok(due > now, 'a renewal is never due the moment a credential is made');
      now = due;
      renewals++;
    }
    assert.equal(renewals, 20);
  });
});

/** A source that counts what it makes and hands out credentials of a fixed lifetime from the fake clock. */
function countingSource(clock: { now: number }, lifetimeMs: number | undefined) {
  let made = 0;
  let release: (() => void) | undefined;
  let hold = false;
  const source: CredentialSource & { made(): number; holdNext(): void; releaseHeld(): void } = {
    issue: async () => {
      made++;
      if (hold) {
        hold = false;
        await new Promise<void>((resolve) => (release = resolve));
      }
      const credential: Credential = {
        password: `token-${made}`,
        issuedAt: clock.now,
        expiresAt: lifetimeMs === undefined ? undefined : clock.now + lifetimeMs,
      };
      return credential;
    },
    made: () => made,
    holdNext: () => (hold = true),
    releaseHeld: () => release?.(),
  };
  return source;
}

describe('SharedCredential', () => {
  it('hands out the same credential until it is due, then a new one', async () => {
    const clock = { now: T0 };
    const source = countingSource(clock, 3_600_000);
    const shared = new SharedCredential(source, () => clock.now);
    assert.equal((await shared.issue()).password, 'token-1');
    clock.now = T0 + 2_879_999;
    assert.equal((await shared.issue()).password, 'token-1');
    clock.now = T0 + 2_880_000;
    assert.equal((await shared.issue()).password, 'token-2');
    assert.equal(source.made(), 2);
  });

  it('keeps a credential that never expires', async () => {
    const clock = { now: T0 };
    const source = countingSource(clock, undefined);
    const shared = new SharedCredential(source, () => clock.now);
    await shared.issue();
    clock.now += 1e10;
    assert.equal((await shared.issue()).password, 'token-1');
  });

  it('makes one credential for callers that ask while it is being made', async () => {
    const clock = { now: T0 };
    const source = countingSource(clock, 60_000);
    const shared = new SharedCredential(source, () => clock.now);
    source.holdNext();
    const asked = [shared.issue(), shared.issue(), shared.renew()];
    source.releaseHeld();
    const got = await Promise.all(asked);
    assert.deepEqual(
      got.map((credential) => credential.password),
      ['token-1', 'token-1', 'token-1'],
    );
    assert.equal(source.made(), 1);
  });

  it('renews on request even when the current one is not yet due', async () => {
    const clock = { now: T0 };
    const source = countingSource(clock, 3_600_000);
    const shared = new SharedCredential(source, () => clock.now);
    await shared.issue();
    assert.equal((await shared.renew()).password, 'token-2');
    assert.equal((await shared.issue()).password, 'token-2');
  });

  it('does not keep a failure: the next call asks again', async () => {
    let calls = 0;
    const shared = new SharedCredential(
      {
        issue: () => {
          calls++;
          return calls === 1
            ? Promise.reject(new Error('provider away'))
            : Promise.resolve({ password: 'late', issuedAt: T0, expiresAt: undefined });
        },
      },
      () => T0,
    );
    await assert.rejects(shared.issue(), /provider away/);
    assert.equal((await shared.issue()).password, 'late');
    assert.equal(calls, 2);
  });
});
