/**
 * How long to wait before each reconnection attempt. Exponential, so a broker that is down is not hammered, and
 * jittered, so that many clients cut off at the same moment do not all come back at the same moment.
 */
interface BackoffPolicy {
  /** The ceiling of the first delay. */
  readonly initialMs: number;
  /** No delay is longer than this. */
  readonly maxMs: number;
}

export const RECONNECT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 30_000 };

/**
 * The delay before attempt `attempt` (0 for the first after a loss): a ceiling that doubles per attempt up to
 * `maxMs`, of which half is always waited and the other half drawn at random ("equal jitter": spread, but never a
 * burst of immediate retries).
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy = RECONNECT_BACKOFF,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
