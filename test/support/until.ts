/**
 * Waiting on events with a deadline instead of sleeping: a condition is checked at once and again on each event, so a
 * test goes on the moment the thing happened and fails with a description when it did not happen in time.
 */
import type { EventEmitter } from 'node:events';

/**
 * Resolves with `condition()`'s value once it is not undefined, checked now and after each `event` of `emitter`;
 * rejects after `timeoutMs` with `describe()`, which says what was seen instead.
 */
export function until<T>(
  emitter: EventEmitter,
  event: string,
  condition: () => T | undefined,
  timeoutMs: number,
  describe: () => string,
): Promise<T> {
  const now = condition();
  if (now !== undefined) return Promise.resolve(now);
  return new Promise<T>((resolve, reject) => {
    const check = () => {
      const value = condition();
      if (value === undefined) return;
      clearTimeout(timer);
      emitter.off(event, check);
      resolve(value);
    };
    const timer = setTimeout(() => {
      emitter.off(event, check);
      reject(new Error(`not within ${timeoutMs} ms: ${describe()}`));
    }, timeoutMs);
    emitter.on(event, check);
  });
}
