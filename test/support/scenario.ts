/** A small sync used by connection tests: three records of one stream and a state, checked on the broker side. */
import assert from 'node:assert/strict';
import { type RunResult, runWrite } from './connector.js';
import { assertDelivered } from './expect.js';
import { catalogOf, recordLine, streamStateLine } from './messages.js';
import type { Delivery, Subscriber } from './subscriber.js';

const STREAM = { name: 'readings', namespace: 'plant' };

/** Runs `write` with `config` (topic_pattern set to `<prefix>/{namespace}/{stream}`) and checks what `subscriber` saw. */
export async function syncThreeRecords(
  config: Record<string, unknown>,
  subscriber: Subscriber,
  prefix: string,
): Promise<{ result: RunResult; deliveries: Delivery[] }> {
  const data = [1, 2, 3].map((i) => `{"sensor":${i},"value":${i}.25,"id":${9007199254740993n + BigInt(i)}}`);
  const input = [
    ...data.map((d, i) => recordLine(STREAM, d, 1_700_000_000_000 + i)),
    streamStateLine(STREAM, 'c3'),
  ].join('\n');
  const before = subscriber.messages.length;
  const result = await runWrite(
    { ...config, topic_pattern: `${prefix}/{namespace}/{stream}` },
    catalogOf([STREAM]),
    input,
  );
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
  const deliveries = (await subscriber.waitFor(before + 3)).slice(before);
  assertDelivered(
    deliveries,
    data.map((dataJson) => ({ topic: `${prefix}/plant/readings`, stream: 'readings', dataJson })),
  );
  assert.equal((result.states()[0]?.destinationStats as { recordCount: number }).recordCount, 3);
  return { result, deliveries };
}
